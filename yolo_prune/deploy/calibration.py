"""Which images calibrate an INT8 export: the train split of the user's dataset (never the split `val` measures,
never a download), spread evenly, unreadable ones left out. Shared by `quantize` (onnxruntime) and `export` (the
exporter's INT8 formats and LiteRT's float-head recipe)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from yolo_prune.data.datasets import resolve_dataset
from yolo_prune.errors import ConfigError, DataError

LOGGER = logging.getLogger("yolo_prune")


def calibration_files(
    data: str | Path | None = None, images: Sequence[str | Path] | str | Path | None = None, calib: int = 100
) -> list[Path]:
    """`calib` image files spread evenly over the train split of the dataset YAML `data`, or over `images`.

    Evenly spread rather than the first `calib`: datasets are often ordered by source or scene.
    """
    if calib < 1:
        raise ConfigError(f"--calib must be at least 1, got {calib}")
    if (data is None) == (images is None):
        raise ConfigError("INT8 calibration needs exactly one of --data (a dataset YAML) or images")
    if data is not None:
        files = train_images(data)
    else:
        files = _images([Path(images)] if isinstance(images, (str, Path)) else [Path(p) for p in images])
    step = len(files) / min(calib, len(files))
    chosen = [files[int(i * step)] for i in range(min(calib, len(files)))]
    return _readable(chosen)


def train_images(data: str | Path) -> list[Path]:
    """Every image file of the dataset YAML `data`'s train split, sorted."""
    train = resolve_dataset(data, splits=("train",))["train"]
    return _images([Path(p) for p in (train if isinstance(train, list) else [train])])


def _images(sources: list[Path]) -> list[Path]:
    from ultralytics.data.utils import IMG_FORMATS

    files: list[Path] = []
    for src in sources:
        if src.is_dir():
            files += sorted(p for p in src.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS)
        elif src.is_file() and src.suffix[1:].lower() in IMG_FORMATS:
            files.append(src)
        elif not src.exists():
            raise DataError(f"calibration images not found: {src}")
    if not files:
        raise DataError(f"no calibration images in {', '.join(map(str, sources))}")
    return files


def _readable(files: list[Path]) -> list[Path]:
    """`files` without the images that OpenCV cannot read (what `letterbox` reads with): one warning, or one line
    when none is left."""
    import cv2

    bad = [f for f in files if cv2.imread(str(f)) is None]
    if not bad:
        return files
    why = f"unreadable image ({bad[0]})" if len(bad) == 1 else f"unreadable image ({len(bad)}, e.g. {bad[0]})"
    if len(bad) == len(files):
        raise DataError(f"no usable calibration images: {why}")
    LOGGER.warning(f"skipped {len(bad)} of {len(files)} calibration images: {why}")
    return [f for f in files if f not in bad]
