"""Shared fixtures: offline Ultralytics, a tiny synthetic YOLO dataset, the shared trained weights when present."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["YOLO_OFFLINE"] = "1"  # never try the network from tests
os.environ.setdefault("YOLO_VERBOSE", "False")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def shared_weights(name: str) -> Path:
    path = SHARED / "weights" / name
    if not path.is_file():
        pytest.skip(f"{path} not found: the shared trained checkpoints are only on the developers' machines")
    return path


def write_tiny_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64, names=("box", "disc")) -> Path:
    """Images of filled rectangles (class 0) and discs (class 1) with YOLO labels; returns data.yaml."""
    rng = np.random.default_rng(0)
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img = np.full((size, size, 3), 40, np.uint8)
            lines = []
            for _ in range(2):
                cls = int(rng.integers(len(names)))
                w, h = (int(v) for v in rng.integers(size // 6, size // 3, 2))
                x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                color = tuple(int(c) for c in rng.integers(80, 255, 3))
                if cls == 0:
                    cv2.rectangle(img, (x, y), (x + w, y + h), color, -1)
                else:
                    cv2.ellipse(img, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, color, -1)
                lines.append(f"{cls} {(x + w / 2) / size:.6f} {(y + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), img)
            (root / "labels" / split / f"{i}.txt").write_text("\n".join(lines) + "\n")
    data = root / "data.yaml"
    data.write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n"
        + "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
    )
    return data


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))
