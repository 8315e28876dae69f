"""Sensitivity analysis: how much the detection loss (or mAP) moves when one dependency group loses channels.

A group is exactly what the pruner removes together (torch-pruning's dependency group, named after its root conv).
Scanning every group at several ratios would need a fresh dependency graph per trial if channels were really
removed. Instead each trial *masks* the channels: it zeroes the input-channel weights of every conv that consumes
them, which is what removal does to the network's function (the producers' outputs are then read by nobody), and
the weights are put back afterwards. The weakest channels by L2 norm are the ones masked, as `l2` pruning would pick.

`budget.allocate()` turns the table into per-group ratios that save a MACs budget with the smallest predicted
drop.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable

import torch
import torch_pruning as tp
from torch import nn

from yolo_prune.checks import check_fraction
from yolo_prune.pruning.cost import measure
from yolo_prune.pruning.structure import build_groups
from yolo_prune.pruning.surgery import make_prunable

LOGGER = logging.getLogger("yolo_prune")


def _consumers(DG: tp.DependencyGraph, group) -> list[nn.Conv2d]:
    """Convs that read the group's channels as inputs (dense convs only; depthwise ones follow their producers)."""
    return [
        dep.target.module
        for dep, _ in group
        if DG.is_in_channel_pruning_fn(dep.handler)
        and isinstance(dep.target.module, nn.Conv2d)
        and dep.target.module.groups == 1
    ]


def _weakest_channels(group, count: int) -> list[int]:
    scores = tp.importance.GroupMagnitudeImportance(p=2)(group)
    return torch.argsort(scores)[:count].tolist()


class _Masked:
    """Context: zero the consumer weights that read the given root channels of a group; restore them on exit."""

    def __init__(self, DG: tp.DependencyGraph, group, root_channels: list[int]):
        self.consumers = set(_consumers(DG, group))
        self.group = group
        self.selected = set(root_channels)
        self.saved: list[tuple[nn.Conv2d, list[int], torch.Tensor]] = []

    def __enter__(self) -> _Masked:
        for item in self.group:
            m = item.dep.target.module
            if m in self.consumers:
                rows = [int(i) for i, root in zip(item.idxs, item.root_idxs) if int(root) in self.selected]
                self.saved.append((m, rows, m.weight.data[:, rows].clone()))
                m.weight.data[:, rows] = 0
        return self

    def __exit__(self, *exc) -> None:
        for m, rows, w in reversed(self.saved):
            m.weight.data[:, rows] = w
        self.saved.clear()


def scan(
    model: nn.Module,
    evaluate: Callable[[nn.Module], float],
    *,
    ratios: tuple[float, ...] = (0.25, 0.5, 0.75),
    imgsz: int = 640,
    higher_is_better: bool = False,
) -> dict:
    """Prune (mask) each group alone at each ratio, measure `evaluate(model)`, restore; return the table.

    `evaluate` returns the loss (lower is better) or mAP (`higher_is_better`). The drop is reported so that a larger
    number always means more damage. `model` is not modified (the scan runs on a copy).
    """
    for r in ratios:
        check_fraction("--ratios", r)
    start = time.perf_counter()
    work = copy.deepcopy(model).float().eval()
    make_prunable(work)
    total_macs = measure(work, imgsz).macs
    DG, groups = build_groups(work, imgsz)
    reference = evaluate(work)
    state = {k: v.clone() for k, v in work.state_dict().items()}
    # A group whose channels the exported model never computes (the YOLO26 head branch the model does not run,
    # `cost.as_deployed`) saves nothing there: it is not scanned, and the allocations leave it whole.
    not_run = [info.name for info, _ in groups if info.macs_per_channel == 0]
    if not_run:
        LOGGER.info(f"  {len(not_run)} groups the exported model does not run, not scanned: {', '.join(not_run)}")
    groups = [(info, group) for info, group in groups if info.macs_per_channel > 0]
    rows = []
    for n, (info, group) in enumerate(groups, 1):
        drops = {}
        for r in ratios:
            count = int(info.channels * r)
            if count < 1:
                drops[str(r)] = 0.0
                continue
            with torch.no_grad(), _Masked(DG, group, _weakest_channels(group, count)):
                value = evaluate(work)
            drops[str(r)] = (reference - value) if higher_is_better else (value - reference)
        rows.append(
            {
                "group": info.name,
                "layers": info.layers,
                "channels": info.channels,
                "macs_share": info.macs_per_channel * info.channels / total_macs,
                "drop": drops,
            }
        )
        LOGGER.info(f"  [{n}/{len(groups)}] {info.name}: " + ", ".join(f"{r}: {d:+.4f}" for r, d in drops.items()))
    restored = all(torch.equal(v, state[k]) for k, v in work.state_dict().items())
    if not restored:  # masking must leave no trace; a failure here is a bug, not bad input
        raise RuntimeError("the sensitivity scan did not restore the model exactly")
    return {
        "reference": reference,
        "higher_is_better": higher_is_better,
        "ratios": list(ratios),
        "imgsz": imgsz,
        "total_macs": total_macs,
        "seconds": time.perf_counter() - start,
        "groups": rows,
    }
