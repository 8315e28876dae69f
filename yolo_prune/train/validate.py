"""Validate a model's mAP on a dataset split with Ultralytics' validator for its task.

Works for PyTorch checkpoints, in-memory modules and exported ONNX files alike (Ultralytics' AutoBackend runs them).
Box mAP is reported for every task (for OBB it is the oriented-box mAP); segmentation adds mask mAP (`mask_map50`,
`mask_map50_95`) and pose adds keypoint mAP (`pose_map50`, `pose_map50_95`).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from torch import nn

from yolo_prune.checks import check_at_least, check_imgsz
from yolo_prune.pruning.load import load_model, task_of
from yolo_prune.train.device import check_device


def validate(
    model: nn.Module | str | Path,
    data: str | Path,
    *,
    split: str = "val",
    imgsz: int = 640,
    batch: int = 16,
    device: str | None = None,
    names: dict | None = None,
    task: str | None = None,
) -> dict:
    """mAP50, mAP50-95 and a per-class table of `model` on `data`'s `split`.

    `names` (the model's class names, when known) is compared with the dataset's, so that a model evaluated on the
    wrong dataset fails clearly instead of reporting a meaningless number. `device` None is Ultralytics' choice.
    `task` defaults to the module's, or what an exported file's metadata says.
    """
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.models.yolo.obb import OBBValidator
    from ultralytics.models.yolo.pose import PoseValidator
    from ultralytics.models.yolo.segment import SegmentationValidator

    from yolo_prune.data.datasets import check_classes, check_split, resolve_dataset

    check_imgsz(imgsz)
    check_at_least("--batch", batch, 1)
    check_device(device)
    validators = {
        "detect": DetectionValidator,
        "segment": SegmentationValidator,
        "pose": PoseValidator,
        "obb": OBBValidator,
    }
    dataset = resolve_dataset(data, splits=(split,), chosen=split)
    kpt_shape = None
    if isinstance(model, (str, Path)) and Path(model).suffix.lower() == ".pt":
        loaded = load_model(model)  # a checkpoint names its classes and task itself
        names, task, kpt_shape = dict(loaded.names), task_of(loaded), getattr(loaded, "kpt_shape", None)
    elif isinstance(model, nn.Module):
        names, task, kpt_shape = dict(model.names), task_of(model), getattr(model, "kpt_shape", None)
    elif task is None:
        task = _exported_task(Path(model))
    if names is not None:
        check_classes(dataset, names, kpt_shape)
    check_split(dataset, split, task=task)  # bad images and labels: one warning, or one line when none is usable
    with tempfile.TemporaryDirectory(prefix="yolo_prune_val_") as tmp:
        args = {
            "data": str(data),
            "split": split,
            "imgsz": imgsz,
            "batch": batch,
            "device": device,
            "plots": False,
            "verbose": False,
            "save_json": False,
            "project": tmp,
            "name": "val",
            "workers": 0,
            "task": task,
        }
        validator = validators[task](args=args)
        # Ultralytics fuses Conv+BN of a module it validates, in place: hand it a copy.
        validator(model=copy.deepcopy(model) if isinstance(model, nn.Module) else str(model))
    metrics = validator.metrics
    box = metrics.box
    counts = metrics.nt_per_class if metrics.nt_per_class is not None else []
    per_class = []
    for i, cls in enumerate(box.ap_class_index):
        p, r, ap50, ap = box.class_result(i)
        per_class.append(
            {
                "class": int(cls),
                "name": dataset["names"][int(cls)],
                "instances": int(counts[int(cls)]) if len(counts) else None,
                "precision": float(p),
                "recall": float(r),
                "map50": float(ap50),
                "map50_95": float(ap),
            }
        )
    extra = {}
    for key, name in (("seg", "mask"), ("pose", "pose")):
        if hasattr(metrics, key):
            extra[f"{name}_map50"], extra[f"{name}_map50_95"] = (
                float(getattr(metrics, key).map50),
                float(getattr(metrics, key).map),
            )
    return {
        "split": split,
        "imgsz": imgsz,
        "task": task,
        **extra,
        "map50": float(box.map50),
        "map50_95": float(box.map),
        "precision": float(box.mp),
        "recall": float(box.mr),
        "per_class": per_class,
    }


def _exported_task(path: Path) -> str:
    """The task an exported model was made for: the `task` entry of Ultralytics' metadata (ONNX), else detect."""
    if path.suffix.lower() == ".onnx" and path.is_file():
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return props.get("task", "detect")
    return "detect"
