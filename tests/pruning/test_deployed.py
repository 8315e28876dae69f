"""Costs of the network that ships: of YOLO26's two head branches, the one the model does not run (one-to-one by
default, one-to-many with `end2end`), which the exporter removes, is not counted, not scanned, not timed and not cut
by the allocations that spend a MACs or latency budget."""

from __future__ import annotations

import copy

import pytest
import torch
import torch_pruning as tp
from conftest import PaddedTimer, head_sum
from ultralytics.nn.tasks import DetectionModel

from yolo_prune import PruneConfig, prune
from yolo_prune.pruning.allocation import create_allocation
from yolo_prune.pruning.cost import as_deployed, conv_shapes, conv_widths, measure
from yolo_prune.pruning.latency import width_table
from yolo_prune.pruning.sensitivity import scan

IMGSZ = 64
ONE2ONE = ("model.23.one2one_cv2.", "model.23.one2one_cv3.")  # yolo26n's NMS-free branch
ONE2MANY = ("model.23.cv2.", "model.23.cv3.")  # read with NMS: Ultralytics' default


def _yolo26n(end2end: bool = False) -> DetectionModel:
    torch.manual_seed(0)
    model = DetectionModel("yolo26n.yaml", nc=2, verbose=False).eval()
    model.end2end = end2end
    return model


def _not_run(name: str, end2end: bool = False) -> bool:
    return name.startswith(ONE2MANY if end2end else ONE2ONE)


@pytest.mark.parametrize("end2end", [False, True])
def test_costs_are_those_of_the_exported_network(end2end):
    model = _yolo26n(end2end)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    fused = copy.deepcopy(model)
    fused.model[-1].fuse()  # what Ultralytics' exporter does to the head
    unfused_macs, _ = tp.utils.count_ops_and_params(model, x)
    fused_macs, fused_params = tp.utils.count_ops_and_params(fused, x)

    cost = measure(model, IMGSZ)
    assert (cost.macs, cost.params) == (int(fused_macs), int(fused_params))
    assert cost.macs < 0.95 * unfused_macs  # the branch is a real share of the head
    head = model.model[-1]
    assert head.cv2 is not None and head.one2one_cv2 is not None  # the model itself keeps both for training

    shapes = conv_shapes(model, IMGSZ)
    assert shapes and not any(_not_run(n, end2end) for n in shapes)
    assert any(_not_run(n, not end2end) for n in shapes)
    assert {n for n in conv_widths(model) if not _not_run(n, end2end)} == set(shapes)

    v8 = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    assert as_deployed(v8) is v8  # one branch: nothing to remove, nothing copied


def test_the_branch_not_run_is_neither_scanned_nor_timed_nor_cut():
    model = _yolo26n()
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    table = scan(model, head_sum(x), ratios=(0.5,), imgsz=IMGSZ)
    names = [g["group"] for g in table["groups"]]
    assert not any(_not_run(n) for n in names)
    assert any(n.startswith("model.23.cv3.") for n in names)
    assert all(g["macs_share"] > 0 for g in table["groups"])
    assert table["total_macs"] == measure(model, IMGSZ).macs

    widths = width_table(model, IMGSZ, PaddedTimer())
    assert widths["groups"] and not any(_not_run(g["group"]) for g in widths["groups"])

    before = conv_widths(model)  # the latency allocation only chooses among the width table's groups, above
    config = PruneConfig(target_macs=0.6, imgsz=IMGSZ, tolerance=0.03)
    pruned, result = prune(model, config, allocation=create_allocation("sensitivity", table))
    after = conv_widths(pruned)
    assert result.macs_fraction <= 0.63
    cut = {n for n in before if after[n] != before[n]}
    assert any(n.startswith(ONE2MANY) for n in cut)  # the shipped head is pruned ...
    # ... while the other branch keeps its own widths: only its depthwise convs, whose outputs are the neck's
    # channels they read, follow the neck's cut
    convs = dict(pruned.named_modules())
    inner = {n for n in cut if _not_run(n) and convs[n].groups == 1}
    assert not inner, sorted(inner)
