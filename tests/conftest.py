"""What several test files share: offline Ultralytics, a tiny synthetic YOLO dataset, the shared trained weights when
present, small random-init models, and the checkpoints and ONNX files the deploy tests export.

The tests mirror the package (tests/pruning/, tests/data/, tests/train/, tests/deploy/, tests/app/, plus
tests/benchmarks/). The folders are not packages, so every test file needs a name of its own across all of them. This
is the only conftest.py: tests import its helpers as `from conftest import ...` (pytest puts this folder on the path),
and a second conftest.py in a subfolder would take the module name `conftest` from this one.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

os.environ["YOLO_OFFLINE"] = "1"  # never try the network from tests
os.environ["YOLO_PRUNE_CACHE"] = tempfile.mkdtemp(prefix="yolo-prune-test-cache-")  # not the user's cache
os.environ.setdefault("YOLO_VERBOSE", "False")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from ultralytics.cfg import DEFAULT_CFG_DICT  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

from yolo_prune import PruneConfig, load_model, prune, save_checkpoint  # noqa: E402
from yolo_prune.deploy import export as export_module  # noqa: E402
from yolo_prune.deploy.export import export_onnx  # noqa: E402
from yolo_prune.deploy.parity import default_images, letterbox  # noqa: E402
from yolo_prune.pruning.structure import head_outputs  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IMGSZ = 64  # the input size of the small models below (and of the deploy tests)


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


class PaddedTimer:
    """Milliseconds proportional to the MACs of the conv with both channel counts padded up to `block`."""

    runtime = "fake-padded"

    def __init__(self, block: int = 16):
        self.padding = block  # not `block`: a timer with `block` reports it, and this one leaves it to be learned
        self.calls = 0
        self.seen: set = set()  # every shape asked for

    def __call__(self, shapes):
        self.calls += 1
        self.seen.update(shapes)
        for s in shapes:  # what a runtime would refuse
            assert s.cin % s.groups == 0 and s.cout % s.groups == 0 and min(s.cin, s.cout) >= 1, s

        def pad(c: int) -> int:
            return math.ceil(c / self.padding) * self.padding

        return [
            1e-6 * pad(s.cin) * pad(s.cout) * s.k * s.k * s.h * s.w / (s.stride**2 * max(s.groups, 1)) + 1e-3
            for s in shapes
        ]


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


@pytest.fixture(scope="module")
def two_class_model(tmp_path_factory) -> Path:
    """A random-init yolov8n with the tiny dataset's two classes, saved as a checkpoint."""
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    model.names = {0: "box", 1: "disc"}
    model.args = dict(DEFAULT_CFG_DICT)
    return save_checkpoint(model, tmp_path_factory.mktemp("model") / "v8n-2cls.pt")


# Pruning: a random-init model whose masked channels matter, and a scalar of its head outputs.


def random_v8n() -> DetectionModel:
    """A seeded random-init yolov8n with two classes and non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False).eval()
    for m in model.modules():  # non-trivial BN statistics so that masked channels matter
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.bias.data.uniform_(-0.3, 0.3)
    return model


def head_sum(x):
    return lambda m: float(sum(o.detach().abs().mean() for o in head_outputs(m, x)))


# Deploy: lively random-init checkpoints (pruned or not), their ONNX export, and a broken exporter.


def lively(model: nn.Module, imgsz: int = IMGSZ) -> nn.Module:
    """Give a random-init model the BatchNorm statistics of real images, so that its outputs depend on the input.

    Straight from its YAML, a model's activations shrink layer after layer and its output hardly depends on the
    image, which would make any parity check pass. Normalized on the bus and zidane images (and their mirror
    images), every conv's output has unit variance, as in a trained network. (Random BatchNorm scales and shifts on
    top of that make a network so badly conditioned that float32 itself is only accurate to ~3e-5 in score; see
    `export.DEFAULT_TOLERANCE`.)
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over the calibration batch
    x = torch.from_numpy(np.concatenate([letterbox(p, imgsz) for p in default_images()]))
    model.train()
    with torch.no_grad():
        model(torch.cat([x, x.flip(-1)]))
    for bn in bns:
        bn.momentum = 0.03
    return model.eval()


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """`weights(yaml, pruned=True)`: a lively random-init checkpoint, pruned to 50% MACs at IMGSZ (cached)."""
    root = tmp_path_factory.mktemp("weights")
    cache: dict[tuple[str, bool], Path] = {}

    def make(yaml: str, pruned: bool = True) -> Path:
        if (yaml, pruned) not in cache:
            torch.manual_seed(0)  # the random init
            model = lively(load_model(yaml))
            if pruned:
                model, _ = prune(model, PruneConfig(target_macs=0.5, imgsz=IMGSZ))
            path = root / f"{Path(yaml).stem}-{'pruned' if pruned else 'full'}" / "model.pt"
            cache[(yaml, pruned)] = save_checkpoint(model, path)
        return cache[(yaml, pruned)]

    return make


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _corrupt_first_conv(path: Path) -> None:
    model = onnx.load(str(path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weight = next(t for t in model.graph.initializer if t.name == conv.input[1])
    values = onnx.numpy_helper.to_array(weight) * 1.5
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(model, str(path))


@pytest.fixture
def corrupting_exporter(monkeypatch):
    """Make every export come out with a wrong first-conv weight, as a broken exporter would."""
    real = export_module._run_exporter

    def run_and_corrupt(*args, **kwargs):
        path = real(*args, **kwargs)
        _corrupt_first_conv(path)
        return path

    monkeypatch.setattr(export_module, "_run_exporter", run_and_corrupt)


@pytest.fixture(scope="session")
def fp32_onnx(tmp_path_factory, weights) -> Path:
    return export_onnx(weights("yolov8n.yaml"), out=tmp_path_factory.mktemp("fp32") / "v8.onnx", imgsz=IMGSZ).file
