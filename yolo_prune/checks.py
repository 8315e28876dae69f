"""Input checks that several layers share, each raising a typed `YoloPruneError` with one wording everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from yolo_prune.errors import ConfigError, ModelLoadError

# Ultralytics' detectors downsample by 32 at their coarsest level (P5); P6 models by 64, which their own stride sets.
STRIDE = 32
# Above any size these detectors are trained or deployed at (P6 models: 1280): a slip such as 64000 for 640 would
# otherwise trace, train or time for hours, or run out of memory, before anything is reported.
MAX_IMGSZ = 8192


def check_imgsz(imgsz: int) -> None:
    """Square input sizes must be positive multiples of the largest stride, up to `MAX_IMGSZ`."""
    if imgsz < STRIDE or imgsz % STRIDE or imgsz > MAX_IMGSZ:
        raise ConfigError(
            f"--imgsz must be a positive multiple of {STRIDE} (the largest stride) up to {MAX_IMGSZ}, got {imgsz}"
        )


def check_at_least(option: str, value: int | float, low: int) -> None:
    """A count that the user typed as `option` is `low` or more."""
    if value < low:
        raise ConfigError(f"{option} must be {'0 or more' if low == 0 else f'at least {low}'}, got {value}")


def check_fraction(name: str, value: float | None) -> None:
    """`value` (when given) lies strictly between 0 and 1."""
    if value is not None and not 0.0 < value < 1.0:
        raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {value}")


def check_threads(threads: int | None) -> None:
    """A runtime thread count (when given) is at least 1."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")


def describe_suffixes(suffixes: Sequence[str]) -> str:
    names = {".pt": "a .pt checkpoint", ".onnx": "an .onnx file", ".yaml": "a model .yaml", ".yml": "a model .yaml"}
    kinds = list(dict.fromkeys(names.get(s, f"a {s} file") for s in suffixes))
    return " or ".join(kinds)


def check_model_file(path: str | Path, suffixes: Sequence[str] = (".pt",)) -> Path:
    """An existing, non-empty model file whose suffix is one of `suffixes`; returns it as a `Path`."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ModelLoadError(f"{path}: expected {describe_suffixes(suffixes)}")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a directory, not a model file")
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path} is empty")
    return path
