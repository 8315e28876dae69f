"""Validate a detector's mAP on a dataset split with Ultralytics' `DetectionValidator`.

Works for PyTorch checkpoints, in-memory modules and exported ONNX files alike (Ultralytics' AutoBackend runs them).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from torch import nn


def validate(
    model: nn.Module | str | Path,
    data: str | Path,
    *,
    split: str = "val",
    imgsz: int = 640,
    batch: int = 16,
    device: str | None = None,
    names: dict | None = None,
) -> dict:
    """mAP50, mAP50-95 and a per-class table of `model` on `data`'s `split`.

    `names` (the model's class names, when known) is compared with the dataset's, so that a model evaluated on the
    wrong dataset fails clearly instead of reporting a meaningless number. `device` None is Ultralytics' choice.
    """
    from ultralytics.models.yolo.detect import DetectionValidator

    from yolo_prune.data.datasets import check_classes, check_split, resolve_dataset

    dataset = resolve_dataset(data, splits=(split,))
    if isinstance(model, nn.Module):
        names = dict(model.names)
    if names is not None:
        check_classes(dataset, names)
    check_split(dataset, split)  # bad images and labels: one warning, or one line when none is usable
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
        }
        validator = DetectionValidator(args=args)
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
    return {
        "split": split,
        "imgsz": imgsz,
        "map50": float(box.map50),
        "map50_95": float(box.map),
        "precision": float(box.mp),
        "recall": float(box.mr),
        "per_class": per_class,
    }
