"""Allocation: the budget goes to the least sensitive groups, sensitivity allocation reaches its target, bad options."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import PaddedTimer, head_sum, random_v8n

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
    assert allocation.rounds_widths and allocation.details(0.3)["block"] == 8
    pruned, result = prune(model, config, allocation=allocation)
    assert 0.47 <= result.macs_fraction <= 0.53
    make_prunable(model)
    before, after = conv_widths(model), conv_widths(pruned)
    shares = result.extra["group_ratios"]  # the scan's shares before rounding
    changed = [n for n in shares if after[n] != before[n]]
    assert changed and all(after[n] % 8 == 0 for n in changed)
    assert all(after[n] >= int(before[n] * (1 - min(shares[n], 0.9))) for n in changed)


def test_allocate_goes_beyond_the_scan_only_once_every_group_is_at_its_largest_ratio():
    table = {
        "ratios": [0.25, 0.5, 0.75],
        "groups": [
            {"group": "steep", "macs_share": 0.5, "drop": {"0.25": 0.1, "0.5": 0.2, "0.75": 0.6}},
            {"group": "flat", "macs_share": 0.5, "drop": {"0.25": 0.1, "0.5": 0.2, "0.75": 0.3}},
        ],
    }
    # within the scan the extension changes nothing, even where a group's last segment is flatter than another's
    for budget in (0.2, 0.45, 0.7):
        assert allocate(table, budget, max_ratio=0.9) == allocate(table, budget)
    assert allocate(table, 0.7) == pytest.approx({"steep": 0.65, "flat": 0.75})
    # past every group's largest scanned ratio: without it the allocation stops there
    assert allocate(table, 0.8) == {"steep": 0.75, "flat": 0.75}
    # with it, the flatter last segment goes on first (0.8 - 0.75 saved = 0.1 of ratio at half the MACs)
    assert allocate(table, 0.8, max_ratio=0.9) == pytest.approx({"steep": 0.75, "flat": 0.85})
    assert allocate(table, 1.0, max_ratio=0.9) == {"steep": 0.9, "flat": 0.9}


def test_with_a_timer_the_sensitivity_allocation_comes_in_the_runtimes_blocks():
    """A prune run that times its runtime tries the scan's shares rounded up to the runtime's block and the coarser
    ones (`probe_blocks` keeps the fastest per MAC); --round-to, or no timer, gives the one asked for."""
    from yolo_prune.pruning.speed import candidate_allocations

    class Reporting(PaddedTimer):
        block = 8

    model = random_v8n()
    table = scan(model, head_sum(torch.rand(1, 3, IMGSZ, IMGSZ)), imgsz=IMGSZ)
    config = PruneConfig(target_macs=0.5, allocation="sensitivity", sensitivity="t.json", imgsz=IMGSZ)
    tried = candidate_allocations(model, config, Reporting(16), table)
    assert [a.round_to for a in tried] == [8, 16, 32]  # v8n's median group: 64 channels
    assert all(a.rounds_widths and a.max_ratio == config.max_layer_ratio for a in tried)
    (given,) = candidate_allocations(model, replace(config, round_to=4), Reporting(16), table)
    assert given.round_to == 4
    (untimed,) = candidate_allocations(model, config, None, table)
    assert untimed.round_to is None and not untimed.rounds_widths
    pruned, result = prune(model, config, allocation=tried[1])
    make_prunable(model)
    before, after = conv_widths(model), conv_widths(pruned)
    assert all(after[n] % 16 == 0 for n in result.extra["group_ratios"] if after[n] != before[n])
    assert result.extra["block"] == 16


def test_the_sensitivity_search_may_go_as_far_as_every_group_at_its_largest_ratio():
    """The groups' MACs shares overlap, so the budget that puts every group at its largest ratio is above 1: a
    search capped at 1 could not reach a target that rounded-up widths need."""
    model = random_v8n()
    table = scan(model, head_sum(torch.rand(1, 3, IMGSZ, IMGSZ)), imgsz=IMGSZ)
    total = sum(g["macs_share"] for g in table["groups"])
    assert total > 1.2
    within = create_allocation("sensitivity", table)
    beyond = create_allocation("sensitivity", table, round_to=16, max_ratio=0.9)
    assert within.limit(0.9) == pytest.approx(total * 0.75) and beyond.limit(0.9) == pytest.approx(total * 0.9)
    everything = allocate(table, beyond.limit(0.9), max_ratio=0.9)
    assert everything == pytest.approx({g["group"]: 0.9 for g in table["groups"]})
    config = PruneConfig(target_macs=0.3, allocation="sensitivity", sensitivity="t.json", imgsz=IMGSZ)
    _, result = prune(model, config, allocation=beyond)
    assert result.macs_fraction == pytest.approx(0.3, abs=0.03)
