"""Load a YOLO model (detect, segment, pose or OBB) from an Ultralytics checkpoint, an official name or a model YAML.

Loading goes through `ultralytics.YOLO`, so official names such as `yolov8n.pt` are downloaded when the machine is
online, exactly as Ultralytics does it. Everything that can go wrong is turned into a one-line `YoloPruneError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from ultralytics.nn.modules.head import OBB, OBB26, Detect, Pose, Pose26, Segment, Segment26, v10Detect
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel

from yolo_prune.checks import check_model_file
from yolo_prune.errors import ModelLoadError, UnsupportedModelError, first_line

SUPPORTED = (
    "YOLO detect, segment, pose and OBB models (YOLOv3 to YOLOv10, YOLO11, YOLO12, YOLO26 and custom YAMLs of their "
    "blocks)"
)
# Model class -> the heads yolo_prune prunes in it. Segment, Pose and OBB are Detect with extra output branches;
# World, YOLOE and RT-DETR models subclass DetectionModel too, with heads of another kind.
HEADS = {
    DetectionModel: (Detect, v10Detect),
    SegmentationModel: (Segment, Segment26),
    PoseModel: (Pose, Pose26),
    OBBModel: (OBB, OBB26),
}
TASKS = {DetectionModel: "detect", SegmentationModel: "segment", PoseModel: "pose", OBBModel: "obb"}


def task_of(model) -> str:
    """Ultralytics' task name of a loaded model: detect, segment, pose or obb."""
    try:
        return TASKS[type(model)]
    except KeyError:
        raise UnsupportedModelError(f"a {type(model).__name__}; yolo_prune prunes {SUPPORTED}") from None


def _is_official_asset(name: str) -> bool:
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return name in GITHUB_ASSETS_NAMES


def check_source(source: str | Path) -> None:
    """A model file that exists; or an official name that Ultralytics downloads (.pt) or ships (.yaml). What
    `load_model` checks first, for runs that check their input before they load anything."""
    path = Path(source)
    source = str(source)
    suffix = path.suffix.lower()
    official = suffix in (".yaml", ".yml") or (str(source) == path.name and _is_official_asset(path.name))
    if path.exists() or suffix not in (".pt", ".yaml", ".yml") or not official:
        check_model_file(path, (".pt", ".yaml", ".yml"))


def load_model(
    source: str | Path, *, names: dict[int, str] | None = None, kpt_shape: list[int] | None = None
) -> DetectionModel:
    """Return the model in `source` as an FP32 `DetectionModel` (or its segment, pose or OBB subclass) in eval mode
    on the CPU.

    `source` is a checkpoint path, an official Ultralytics name (downloaded when online) or a model YAML (built with
    random weights; `names` then sets its classes and `kpt_shape` a pose model's keypoints, e.g. a dataset's). The
    model keeps `names`, `stride`, `yaml` and `args`, so Ultralytics can use it as before.
    """
    from ultralytics import YOLO

    source = str(source)
    check_source(source)
    try:
        wrapper = YOLO(source)
    except NotImplementedError as e:  # Ultralytics' answer for RT-DETR YAMLs
        raise UnsupportedModelError(
            f"{source}: unsupported model ({first_line(e)}); yolo_prune prunes {SUPPORTED}"
        ) from e
    except (FileNotFoundError, ConnectionError) as e:
        raise ModelLoadError(f"cannot load {source}: {first_line(e)}") from e
    except (TypeError, RuntimeError, EOFError, ValueError, KeyError, AttributeError, OSError) as e:
        raise ModelLoadError(f"cannot read {source}: not a valid Ultralytics model ({first_line(e)})") from e
    except Exception as e:  # pickle and YAML errors of many kinds: a corrupt file is still a one-line error
        raise ModelLoadError(f"cannot read {source}: {type(e).__name__}: {first_line(e)}") from e

    model = wrapper.model
    head = model.model[-1] if isinstance(model, DetectionModel) else None
    if type(head) not in HEADS.get(type(model), ()):
        kind = type(head).__name__ if head is not None else type(model).__name__
        raise UnsupportedModelError(f"{source} holds a {kind}; yolo_prune prunes {SUPPORTED}")
    other_kpts = kpt_shape is not None and list(getattr(model, "kpt_shape", kpt_shape)) != list(kpt_shape)
    if names is not None and source.endswith((".yaml", ".yml")) and (dict(model.names) != dict(names) or other_kpts):
        args = getattr(model, "args", {})
        extra = {"data_kpt_shape": tuple(kpt_shape)} if isinstance(model, PoseModel) and kpt_shape else {}
        model = type(model)(model.yaml, nc=len(names), verbose=False, **extra)
        model.names, model.args = dict(names), args
    if not isinstance(getattr(model, "args", None), dict):
        model.args = dict(vars(model.args)) if hasattr(model, "args") else {}
    model.args = dict(model.args)
    model.pt_path = os.fspath(source) if source.endswith(".pt") else None
    return model.float().eval().to(torch.device("cpu"))
