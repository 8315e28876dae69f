"""Every detection model YAML that Ultralytics ships prunes to 50% of its MACs and reloads in plain Ultralytics.

The YAMLs are read from the installed package, so a new Ultralytics release is checked the day it is installed:
the smallest scale of each, leaving out other tasks (-cls, -seg, -pose, -obb, -depth, -sem) and the detectors of
another family (RT-DETR, YOLO-World, YOLOE).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.load import load_model
from yolo_prune.pruning.prune import prune
from yolo_prune.pruning.structure import TESTED_BLOCKS

IMGSZ = 128  # a multiple of 64, for the P6 models
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "architectures.py"


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("architectures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shipped_yamls = _benchmark_module().shipped_yamls
YAMLS = shipped_yamls()


def test_the_enumeration_finds_every_family():
    assert len(YAMLS) >= 19
    for name in ("yolov3.yaml", "yolov5n-p6.yaml", "yolov8n-p6.yaml", "yolov9t.yaml", "yolov10n.yaml", "yolo12n.yaml"):
        assert name in YAMLS
    assert "yolov9s.yaml" not in YAMLS and not any("seg" in n or "rtdetr" in n for n in YAMLS)
    tasks = {task: shipped_yamls(task) for task in ("segment", "pose", "obb")}
    assert {"yolov8n-seg.yaml", "yolo11n-seg.yaml", "yolo26n-seg.yaml"} <= set(tasks["segment"])
    assert {"yolo11n-pose.yaml", "yolo26n-pose.yaml"} <= set(tasks["pose"]) and "yolo11n-obb.yaml" in tasks["obb"]


@pytest.fixture(scope="module")
def pruned_files(tmp_path_factory) -> dict[str, tuple[Path, tuple]]:
    """Each model pruned to 50% MACs and saved, with the shape of its original's output."""
    root = tmp_path_factory.mktemp("architectures")
    files = {}
    for name in YAMLS:
        torch.manual_seed(0)
        model = load_model(name)
        pruned, result = prune(model, PruneConfig(target_macs=0.5, imgsz=IMGSZ))
        with torch.no_grad():
            shape = tuple(model(torch.rand(1, 3, IMGSZ, IMGSZ))[0].shape)
        files[name] = (save_checkpoint(pruned, root / f"{Path(name).stem}.pt"), shape, result.macs_fraction)
        blocks.update(type(layer).__name__ for layer in pruned.model)
    return files


blocks: set[str] = set()  # top-level block types of the pruned models, filled by `pruned_files`


@pytest.mark.parametrize("name", YAMLS)
def test_prunes_to_half_the_macs(pruned_files, name):
    _, _, fraction = pruned_files[name]
    assert fraction == pytest.approx(0.5, abs=0.03)


def test_all_reload_in_plain_ultralytics(pruned_files):
    """A fresh process in which yolo_prune cannot be imported loads every file and runs it."""
    listing = {name: str(path) for name, (path, _, _) in pruned_files.items()}
    code = f"""
import json, sys
sys.modules["yolo_prune"] = None
import torch
from ultralytics import YOLO
shapes = {{}}
for name, path in json.loads({json.dumps(json.dumps(listing))}).items():
    model = YOLO(path).model.float().eval()
    with torch.no_grad():
        shapes[name] = list(model(torch.rand(1, 3, {IMGSZ}, {IMGSZ}))[0].shape)
print(json.dumps(shapes))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    shapes = json.loads(out.stdout.strip().splitlines()[-1])
    assert {name: tuple(s) for name, s in shapes.items()} == {name: s for name, (_, s, _) in pruned_files.items()}


def test_every_block_of_the_shipped_models_is_listed_as_tested(pruned_files):
    assert blocks and blocks <= TESTED_BLOCKS, sorted(blocks - TESTED_BLOCKS)


@pytest.mark.parametrize(
    "name", [n if n == "yolov10n.yaml" else pytest.param(n, marks=pytest.mark.slow) for n in YAMLS]
)
def test_the_default_latency_allocation_prunes_every_shipped_yaml(name):
    """The data-free default (`latency`, the head last) on every shipped detector, as `prune MODEL --target-macs 0.5`
    runs it, with a stand-in conv timer (blocks of 8) instead of onnxruntime's."""
    from conftest import PaddedTimer

    torch.manual_seed(0)
    model = load_model(name)
    config = PruneConfig(target_macs=0.5, imgsz=IMGSZ, allocation="latency", round_to=8)
    small, result = prune(model, config, timer=PaddedTimer(8))
    assert abs(result.macs_fraction - 0.5) < 0.03 and result.allocation == "latency"
    with torch.no_grad():
        out = small.eval()(torch.rand(1, 3, IMGSZ, IMGSZ))[0]
    # boxes + classes per anchor; YOLO26 and YOLOv10 end to end: (B, 300, 6)
    assert out.shape[1] == 4 + len(small.names) or out.shape[-1] == 6
