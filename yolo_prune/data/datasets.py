"""Resolve and check detection datasets (Ultralytics data YAMLs) and load batches from them.

Ultralytics' own `check_det_dataset`, `build_yolo_dataset` and `build_dataloader` do the work; this module makes sure
that a missing or malformed dataset is a one-line `DataError` rather than a download attempt or a traceback.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

from yolo_prune.errors import DataError


def resolve_dataset(data: str | Path, splits: tuple[str, ...] = ("train", "val")) -> dict:
    """Parse and check a dataset YAML; return Ultralytics' resolved data dict.

    Fails with `DataError` when the file, a needed split's folder or the class names are missing. Never downloads.
    """
    from ultralytics.data.utils import check_det_dataset

    path = Path(data)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise DataError(f"{data}: expected a dataset .yaml file")
    if not path.is_file():
        raise DataError(f"dataset file not found: {data}")
    try:
        resolved = check_det_dataset(str(path), autodownload=False)
    except (FileNotFoundError, SyntaxError, KeyError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{data}: {first.replace('❌', '').strip()}") from e
    except Exception as e:  # YAML parser errors and the like
        raise DataError(f"{data}: cannot read dataset YAML ({type(e).__name__})") from e
    for split in splits:
        entry = resolved.get(split)
        entries = entry if isinstance(entry, list) else [entry]
        if not entry or not all(Path(p).exists() for p in entries):
            raise DataError(f"{data}: the '{split}' split is missing ({entry})")
    return resolved


def check_classes(dataset: dict, names: dict | list) -> None:
    """Fail with `DataError` when a model's class count differs from the dataset's (resolved by `resolve_dataset`)."""
    if dataset["nc"] != len(names):
        raise DataError(f"the dataset has {dataset['nc']} classes but the model has {len(names)}")


def loader(data: dict, split: str, imgsz: int, batch: int, *, augment: bool = False, workers: int = 0):
    """An Ultralytics dataloader over one split (letterboxed, no augmentation unless `augment`)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset

    cfg = get_cfg(overrides={"imgsz": imgsz, "task": "detect", "plots": False})
    dataset = build_yolo_dataset(cfg, data[split], batch, data, mode="train" if augment else "val")
    if len(dataset) == 0:
        raise DataError(f"the '{split}' split has no images")
    return build_dataloader(dataset, batch, workers, shuffle=augment, device="cpu")


def batches(data: dict, split: str, imgsz: int, batch: int, count: int) -> Iterator[dict]:
    """The first `count` batches of a split, in order (for loss gradients and calibration)."""
    yield from itertools.islice(iter(loader(data, split, imgsz, batch)), count)
