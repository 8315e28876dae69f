"""Save a pruned model as an ordinary Ultralytics checkpoint, with yolo_prune's metadata beside it.

The file has the keys Ultralytics' `load_checkpoint` reads (`model`, `train_args`, ...), so `ultralytics.YOLO(path)`
loads it for val, predict and export. Weights are stored in FP32 (Ultralytics stores FP16): a pruned model is a
starting point for fine-tuning, and rounding it first would lose information for nothing.
The rewritten blocks are stock Ultralytics blocks (see `surgery`), so the file unpickles without yolo_prune.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch_pruning as tp
import ultralytics
from torch import nn

from yolo_prune._version import __version__
from yolo_prune.atomic import atomic_path

METADATA_KEY = "yolo_prune"


def versions() -> dict[str, str]:
    return {
        "yolo_prune": __version__,
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "torch_pruning": tp.__version__,
    }


def save_checkpoint(model: nn.Module, path: str | Path, metadata: dict | None = None) -> Path:
    """Write `model` to `path` atomically as an Ultralytics checkpoint; `metadata` goes under the `yolo_prune` key."""
    path = Path(path)
    module = copy.deepcopy(model).float().eval().cpu()
    for attr in ("criterion", "pt_path"):
        if hasattr(module, attr):
            setattr(module, attr, None)
    ckpt = {
        "date": datetime.now(timezone.utc).isoformat(),
        "version": ultralytics.__version__,
        "epoch": -1,
        "best_fitness": None,
        "model": module,
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": dict(getattr(model, "args", {}) or {}),
        METADATA_KEY: {**(metadata or {}), "versions": versions()},
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def read_metadata(path: str | Path) -> dict:
    """yolo_prune's metadata of a checkpoint (empty for a checkpoint that yolo_prune did not write)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return ckpt.get(METADATA_KEY, {}) if isinstance(ckpt, dict) else {}
