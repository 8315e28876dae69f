"""The block rewrites are lossless and leave no chunked blocks behind."""

from __future__ import annotations

import pytest
import torch
from ultralytics.nn.modules.block import C2, C2PSA, C3, PSA, C2f, C3f, RepNCSPELAN4
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.pruning.structure import head_outputs
from yolo_prune.pruning.surgery import REWRITES, make_prunable


def _chunked_blocks(model: torch.nn.Module) -> dict[str, int]:
    """How many blocks of each kind that a rule rewrites the model holds (counted on the model, before surgery)."""

    def count(cls: type) -> int:  # the class and its subclasses that keep its forward
        return sum(isinstance(m, cls) and type(m).forward is cls.forward for m in model.modules())

    rules = {"c2f_to_c3f": C2f, "elan_to_c3f": RepNCSPELAN4, "c2_to_c3": C2, "c2psa_to_c3": C2PSA, "psa_to_c3": PSA}
    return {rule: count(cls) for rule, cls in rules.items()}


@pytest.mark.parametrize(
    "yaml, rewritten",
    [
        ("yolov8n.yaml", {"c2f_to_c3f": 8}),
        ("yolo11n.yaml", {"c2f_to_c3f": 8, "c2psa_to_c3": 1}),
        ("yolo26n.yaml", {"c2f_to_c3f": 8, "c2psa_to_c3": 1}),
        ("yolov8n-p2.yaml", {"c2f_to_c3f": 10}),
        ("yolov8n-p6.yaml", {"c2f_to_c3f": 5, "c2_to_c3": 6}),
        ("yolov9t.yaml", {"elan_to_c3f": 8}),  # 7 RepNCSPELAN4 and 1 ELAN1
        ("yolov10n.yaml", {"c2f_to_c3f": 8, "psa_to_c3": 1}),
    ],
)
def test_rewrite_is_lossless(yaml, rewritten):
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
    expected = {rule: 0 for rule in REWRITES} | rewritten
    assert _chunked_blocks(model) == expected
    with torch.no_grad():
        before = head_outputs(model, x)
    result = make_prunable(model)
    with torch.no_grad():
        after = head_outputs(model, x)

    assert result.counts == expected
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(_chunked_blocks(model).values()) == 0
    assert sum(type(m) is C3f for m in model.modules()) == expected["c2f_to_c3f"] + expected["elan_to_c3f"]
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
