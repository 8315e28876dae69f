"""The block rewrites are lossless and leave no chunked blocks behind."""

from __future__ import annotations

import pytest
import torch
from ultralytics.nn.modules.block import C2PSA, C3, C2f, C3f
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.pruning.structure import head_outputs
from yolo_prune.pruning.surgery import make_prunable


@pytest.mark.parametrize(
    "yaml, c2f, c2psa",
    [("yolov8n.yaml", 8, 0), ("yolo11n.yaml", 8, 1), ("yolo26n.yaml", 8, 1), ("yolov8n-p2.yaml", 10, 0)],
)
def test_rewrite_is_lossless(yaml, c2f, c2psa):
    torch.manual_seed(0)
    model = DetectionModel(yaml, nc=3, verbose=False).eval()
    # Non-trivial BatchNorm statistics, so a wrongly sliced BN would show.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.rand(2, 3, 64, 64)
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        before = head_outputs(model, x)
    result = make_prunable(model)
    with torch.no_grad():
        after = head_outputs(model, x)

    assert result.counts == {"c2f_to_c3f": c2f, "c2psa_to_c3": c2psa}
    assert sum(p.numel() for p in model.parameters()) == params
    assert not any(isinstance(m, (C2f, C2PSA)) for m in model.modules())
    assert sum(isinstance(m, C3f) for m in model.modules()) == c2f
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_rewrite_is_idempotent():
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    assert make_prunable(model).total == 8
    assert make_prunable(model).total == 0


def test_rewrite_keeps_layer_bookkeeping():
    model = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    old = [(m.i, m.f, m.type) for m in model.model]
    make_prunable(model)
    assert [(m.i, m.f, m.type) for m in model.model] == old
    assert isinstance(model.model[10], C3) and model.model[10].yolo_prune_source == "C2PSA"
