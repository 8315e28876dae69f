"""Segment, pose and OBB models prune like detectors: their output formats keep, everything else prunes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.load import load_model, task_of
from yolo_prune.pruning.prune import prune

TASK_YAMLS = {
    "yolov8n-seg.yaml": "segment",
    "yolo11n-seg.yaml": "segment",
    "yolo26n-seg.yaml": "segment",
    "yolo11n-pose.yaml": "pose",
    "yolo26n-pose.yaml": "pose",
    "yolo11n-obb.yaml": "obb",
    "yolo26n-obb.yaml": "obb",
}
IMGSZ = 128


@pytest.fixture(scope="module")
def pruned(tmp_path_factory) -> dict:
    """name -> (original, pruned, result, checkpoint)."""
    root = tmp_path_factory.mktemp("tasks")
    out = {}
    for name in TASK_YAMLS:
        torch.manual_seed(0)
        model = load_model(name)
        small, result = prune(model, PruneConfig(target_macs=0.5, imgsz=IMGSZ))
        out[name] = (model, small, result, save_checkpoint(small, root / name.replace(".yaml", ".pt")))
    return out


@pytest.mark.parametrize("name", TASK_YAMLS)
def test_prunes_to_half_keeping_the_output_format(pruned, name):
    model, small, result, _ = pruned[name]
    assert task_of(small) == TASK_YAMLS[name]
    assert result.macs_fraction == pytest.approx(0.5, abs=0.03)
    head, small_head = model.model[-1], small.model[-1]
    # the extra branches end in convs of the format's width
    last = {"segment": "nm", "pose": "nk", "obb": "ne"}[TASK_YAMLS[name]]
    branch = "cv4_kpts" if hasattr(head, "cv4_kpts") else "cv4"
    for a, b in zip(getattr(head, branch), getattr(small_head, branch)):
        a, b = (a if isinstance(a, torch.nn.Conv2d) else a[-1]), (b if isinstance(b, torch.nn.Conv2d) else b[-1])
        assert a.out_channels == b.out_channels == getattr(head, last)
    if TASK_YAMLS[name] == "segment":
        assert small_head.proto.cv3.conv.out_channels == head.proto.cv3.conv.out_channels == head.nm
        assert small_head.proto.cv1.conv.out_channels < head.proto.cv1.conv.out_channels  # the proto net prunes


@pytest.mark.parametrize("name", TASK_YAMLS)
def test_training_branches_still_fit(pruned, name):
    """Branches that run only in training (YOLO26's keypoint sigmas, its semantic-segmentation map) were pruned
    with what feeds them: a training forward and backward run, and reach every trainable parameter."""
    _, small, _, _ = pruned[name]
    small = small.train()
    out = small(torch.rand(2, 3, IMGSZ, IMGSZ))
    branches = [out["one2many"], out["one2one"]] if "one2many" in out else [out]
    tensors = [t for b in branches for k, v in b.items() if k != "feats" for t in (v if isinstance(v, tuple) else (v,))]
    sum(t.float().mean() for t in tensors).backward()
    # the DFL is fixed; Pose26's flow model only runs in its loss
    skip = (".dfl", ".flow_model.")
    silent = [n for n, p in small.named_parameters() if p.grad is None and not any(s in n for s in skip)]
    assert silent == []
    if "yolo26n-pose" in name:
        assert "kpts_sigma" in branches[0]
    if "yolo26n-seg" in name:
        assert isinstance(branches[0]["proto"], tuple)  # prototypes and the semantic map


def test_all_reload_in_plain_ultralytics(pruned):
    listing = {name: str(path) for name, (_, _, _, path) in pruned.items()}
    code = f"""
import json, sys
sys.modules["yolo_prune"] = None
import torch
from ultralytics import YOLO
shapes = {{}}
for name, path in json.loads({json.dumps(json.dumps(listing))}).items():
    y = YOLO(path).model.float().eval()(torch.rand(1, 3, {IMGSZ}, {IMGSZ}))[0]
    shapes[name] = [list(t.shape) for t in (y if isinstance(y, tuple) else (y,))]
print(json.dumps(shapes))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    shapes = json.loads(out.stdout.strip().splitlines()[-1])
    for name, (model, _, _, _) in pruned.items():
        with torch.no_grad():
            y = model.eval()(torch.rand(1, 3, IMGSZ, IMGSZ))[0]
        assert shapes[name] == [list(t.shape) for t in (y if isinstance(y, tuple) else (y,))], name


@pytest.mark.parametrize(
    "name", [n if n == "yolo26n-seg.yaml" else pytest.param(n, marks=pytest.mark.slow) for n in TASK_YAMLS]
)
def test_the_default_latency_allocation_prunes_every_task_model(name):
    """YOLO26-seg's training-only semantic branch once ended the data-free default in a KeyError: its convs share
    groups with the inference path but never run in the inference forward, so they have no shape to time."""
    from conftest import PaddedTimer

    torch.manual_seed(0)
    model = load_model(name)
    config = PruneConfig(target_macs=0.5, imgsz=64, allocation="latency", round_to=8)
    small, result = prune(model, config, timer=PaddedTimer(8))
    assert abs(result.macs_fraction - 0.5) < 0.03 and result.allocation == "latency"
    assert task_of(small) == TASK_YAMLS[name]
