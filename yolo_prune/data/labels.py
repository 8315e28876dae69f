"""The one writer of YOLO label lines and data.yaml files, for every dataset that yolo_prune makes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


def yolo_line(cls: int, xyxy: Box, width: int, height: int) -> str:
    """One YOLO label line: class id, then box centre and size normalised by the image size."""
    x1, y1, x2, y2 = xyxy
    cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
    return f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def write_labels(path: Path, lines: Iterable[str]) -> None:
    """A label file: one line per box, each ending in a newline (an image without boxes gets an empty file)."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def write_data_yaml(root: Path, final: Path, splits: Sequence[str], names: Sequence[str], header: str) -> Path:
    """`root/data.yaml` for a dataset that will live at `final`, with images under `images/<split>`.

    `path:` is absolute, so `--data final/data.yaml` works from any directory. `header` is a comment line.
    """
    data = {"path": str(final), **{s: f"images/{s}" for s in splits}, "names": dict(enumerate(names))}
    text = f"# {header}\n" + yaml.safe_dump(data, sort_keys=False)
    (root / "data.yaml").write_text(text, encoding="utf-8")
    return root / "data.yaml"
