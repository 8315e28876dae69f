"""The one writer of YOLO label lines and data.yaml files, for every dataset that yolo_prune makes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
Keypoint = tuple[float, float, int]  # x, y in pixels, visibility (0: not labelled, 1: hidden, 2: visible)


def yolo_line(cls: int, xyxy: Box, width: int, height: int) -> str:
    """One YOLO label line: class id, then box centre and size normalised by the image size."""
    x1, y1, x2, y2 = xyxy
    cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
    return f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def polygon_line(cls: int, points: Iterable[tuple[float, float]], width: int, height: int) -> str:
    """A segment (3 points or more) or oriented-box (4 corners) line: class id, then every `x y` normalised."""
    return " ".join([str(cls), *(f"{x / width:.6f} {y / height:.6f}" for x, y in points)])


def pose_line(cls: int, xyxy: Box, keypoints: Iterable[Keypoint], width: int, height: int) -> str:
    """A pose line: the box as in `yolo_line`, then `x y visibility` for each keypoint, `x y` normalised."""
    points = (f"{x / width:.6f} {y / height:.6f} {int(v)}" for x, y, v in keypoints)
    return " ".join([yolo_line(cls, xyxy, width, height), *points])


def write_labels(path: Path, lines: Iterable[str]) -> None:
    """A label file: one line per box, each ending in a newline (an image without boxes gets an empty file)."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def write_data_yaml(
    root: Path, final: Path, splits: Sequence[str], names: Sequence[str], header: str, extra: Mapping | None = None
) -> Path:
    """`root/data.yaml` for a dataset that will live at `final`, with images under `images/<split>`.

    `path:` is absolute, so `--data final/data.yaml` works from any directory. `header` is a comment line. `extra`
    holds further keys written after `names` (e.g. `kpt_shape` and `flip_idx` of a pose dataset), short lists inline.
    """
    data = {"path": str(final), **{s: f"images/{s}" for s in splits}, "names": dict(enumerate(names))}
    text = f"# {header}\n" + yaml.safe_dump(data, sort_keys=False)
    if extra:
        text += yaml.safe_dump(dict(extra), sort_keys=False, default_flow_style=None)
    (root / "data.yaml").write_text(text, encoding="utf-8")
    return root / "data.yaml"
