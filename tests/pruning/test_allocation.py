"""Allocation: the budget goes to the least sensitive groups, sensitivity allocation reaches its target, bad options."""

from __future__ import annotations

import pytest
import torch
from conftest import head_sum, random_v8n

from yolo_prune import PruneConfig, prune
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.allocation import create_allocation
from yolo_prune.pruning.budget import allocate
from yolo_prune.pruning.cost import conv_widths
from yolo_prune.pruning.sensitivity import scan
from yolo_prune.pruning.surgery import make_prunable

IMGSZ = 64


def test_allocate_spends_budget_on_the_least_sensitive_groups():
    table = {
        "ratios": [0.5],
        "groups": [
            {"group": "fragile", "macs_share": 0.3, "drop": {"0.5": 1.0}},
            {"group": "robust", "macs_share": 0.3, "drop": {"0.5": 0.01}},
            {"group": "medium", "macs_share": 0.3, "drop": {"0.5": 0.2}},
        ],
    }
    assert allocate(table, 0.15) == {"fragile": 0.0, "robust": 0.5, "medium": 0.0}
    # the last upgrade is taken in part: 0.05 of the 0.15 that halving "medium" would save
    assert allocate(table, 0.2) == pytest.approx({"fragile": 0.0, "robust": 0.5, "medium": 0.5 / 3})
    assert allocate(table, 0.2 + 0.15) == pytest.approx({"fragile": 0.5 / 3, "robust": 0.5, "medium": 0.5})


def test_sensitivity_allocation_reaches_target_and_records_ratios():
    model = random_v8n()
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    table = scan(model, head_sum(x), imgsz=IMGSZ)
    config = PruneConfig(target_macs=0.5, allocation="sensitivity", sensitivity="table.json", imgsz=IMGSZ)
    pruned, result = prune(model, config, allocation=create_allocation("sensitivity", table))
    assert 0.47 <= result.macs_fraction <= 0.53
    chosen = result.extra["group_ratios"]
    assert set(chosen) == {g["group"] for g in table["groups"]}
    # groups the allocation left alone keep every channel; the others lose about their share
    make_prunable(model)
    before, after = conv_widths(model), conv_widths(pruned)
    untouched = [n for n, r in chosen.items() if r == 0]
    assert untouched and all(after[n] == before[n] for n in untouched)
    for name, r in chosen.items():
        if r > 0:
            assert after[name] == pytest.approx(before[name] * (1 - min(r, 0.9)), abs=1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_macs": 0.5, "allocation": "magic"}, "unknown --allocation 'magic'; choose one of: uniform, global"),
        ({"ratio": 0.3, "allocation": "sensitivity", "data": "d.yaml"}, "--allocation sensitivity needs --target"),
        ({"target_macs": 0.5, "allocation": "sensitivity"}, "--allocation sensitivity needs --sensitivity FILE"),
    ],
)
def test_bad_allocation_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PruneConfig(**kwargs)


def test_sensitivity_round_to_rounds_kept_widths_up_and_reaches_the_target():
    """--round-to with the sensitivity allocation keeps every pruned group's width a multiple of N and never below
    the scan's share (torch-pruning's round_to would round it down, taking channels from the sensitive groups)."""
    model = random_v8n()
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    table = scan(model, head_sum(x), imgsz=IMGSZ)
    config = PruneConfig(target_macs=0.5, allocation="sensitivity", sensitivity="t.json", round_to=8, imgsz=IMGSZ)
    allocation = create_allocation("sensitivity", table, round_to=8)
    assert allocation.rounds_widths and allocation.details(0.3)["rounded_up_to"] == 8
    pruned, result = prune(model, config, allocation=allocation)
    assert 0.47 <= result.macs_fraction <= 0.53
    make_prunable(model)
    before, after = conv_widths(model), conv_widths(pruned)
    shares = result.extra["group_ratios"]  # the scan's shares before rounding
    changed = [n for n in shares if after[n] != before[n]]
    assert changed and all(after[n] % 8 == 0 for n in changed)
    assert all(after[n] >= int(before[n] * (1 - min(shares[n], 0.9))) for n in changed)
