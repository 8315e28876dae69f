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


def _ordered(names: dict | list) -> list[str]:
    return [str(names[k]) for k in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


def check_classes(dataset: dict, names: dict | list) -> None:
    """Fail with `DataError` unless the model's classes are the dataset's (resolved by `resolve_dataset`): the same
    count, and the same names in the same order, since a class id means the class at that position.

    A model built from a YAML has placeholder names ('0', '1', ...): only its class count is checked.
    """
    model, data = _ordered(names), _ordered(dataset["names"])
    if len(data) != len(model):
        raise DataError(f"the dataset has {len(data)} classes but the model has {len(model)}")
    if model == [str(i) for i in range(len(model))] or model == data:
        return
    if sorted(model) == sorted(data):
        raise DataError(
            f"the dataset has the model's classes in another order: model {', '.join(model)}; dataset "
            f"{', '.join(data)}. Convert the dataset again with --names {','.join(model)}"
        )
    raise DataError(f"the dataset's classes ({', '.join(data)}) are not the model's ({', '.join(model)})")


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
