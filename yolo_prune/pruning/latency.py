"""The latency model: what each conv of a network costs on one runtime, and which widths that runtime runs fast.

A network's latency is modelled as the sum of its conv layers' latencies (each conv with its activation, timed alone
at its own input size), as in NetAdapt's layer lookup table (Yang et al., ECCV 2018) and HALP's latency-aware
allocation (Shen et al., NeurIPS 2022). Timing is not done here: a `LayerTimer` (each runtime of the deployment
layer has one, `deploy.runtimes`) is passed in and answers "milliseconds for these conv shapes", caching what it
measured. The conv shapes themselves are `cost.conv_shapes`.

`width_table` is what the `latency` allocation (`allocation.py`) spends its budget with. It times every prunable
dependency group's convs at candidate widths. The runtime's **channel block** is what the timer reports
(`LayerTimer.block`: onnxruntime's NCHWc convs pad channels to blocks of 16 on AVX-512, 8 on AVX2, and its
optimized graph shows it), and then only its multiples are timed; else it is learned from curves timed at 4, 8, 12,
16, then every 8 channels: the largest block whose multiples run at least as fast as the widths between them in
most groups (`learn_block`; noisy: single convs of a few microseconds time differently from one run to the next).
Nothing is hard-coded. Each group's options are then the multiples of that block (so a width is never left between
two of them), each with the milliseconds it saves and the L2 importance it loses (torch-pruning's group magnitude,
normalised by the group's mean so that importance compares across groups, as in global pruning).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from typing import Protocol

import torch
import torch_pruning as tp
from torch import nn

from yolo_prune.pruning.cost import ConvShape, conv_shapes
from yolo_prune.pruning.structure import build_groups

LOGGER = logging.getLogger("yolo_prune")

BLOCKS = (4, 8, 16)  # channel blocks `learn_block` considers (16 floats: one AVX-512 register; 8: AVX2, FP16 cores)
SLACK = 0.03  # a width "runs as fast" as another when it is at most 3% slower (timing noise of single convs)
AGREEMENT = 0.6  # the share of in-between widths a block's multiples must match or beat


class LayerTimer(Protocol):
    """Times single convs on one runtime. `runtime` names it (and, with `machine`, its cache)."""

    runtime: str
    block: int | None  # the channel block the runtime reports for its convs; None: learn it from the timings

    def __call__(self, shapes: Sequence[ConvShape]) -> list[float]:
        """Milliseconds per inference of each shape, batch 1."""


def predict_ms(model: nn.Module, imgsz: int, timer: LayerTimer) -> float:
    """The model's conv latency in milliseconds: the sum of its convs' timed latencies."""
    shapes = list(conv_shapes(model, imgsz).values())
    return float(sum(timer(shapes)))


def candidate_widths(channels: int, min_width: int, block: int | None) -> list[int]:
    """Widths to time for a group of `channels`: the multiples of `block` when it is known (`--round-to` or the
    runtime's), else 4, 8, 12, 16, then every multiple of 8 (to learn it); from `min_width` up, and the full width."""
    if block:
        widths = range(block, channels, block)
    else:
        widths = [*range(4, 16, 4), *range(16, channels, 8)]
    return sorted({w for w in widths if min_width <= w < channels} | {channels})


def learn_block(curves: Sequence[dict[int, float]]) -> int:
    """The runtime's channel block from measured width -> ms curves: the largest of `BLOCKS` such that, for at
    least `AGREEMENT` of the widths that are not its multiples, the next wider multiple runs as fast (within
    `SLACK`). 1 when no block qualifies (every width as good as any other)."""
    best = 1
    for block in BLOCKS:
        matched = total = 0
        for times in curves:
            for w, t in times.items():
                if w % block == 0:
                    continue
                wider = [u for u in times if u > w and u % block == 0]
                if not wider:
                    continue
                total += 1
                matched += times[min(wider)] <= t * (1 + SLACK)
        if total and matched / total >= AGREEMENT:
            best = block
    return best


def coarser_blocks(table: dict) -> list[int]:
    """Blocks coarser than the table's that are worth measuring end to end: 2 and 4 times it, up to half the median
    group's channels (a coarser block would leave most groups two widths to choose from).

    The block a runtime pads to is not always the width it runs fastest: MLAS's AVX2 convs pad to 8 channels but
    work on several blocks per pass, and pruned yolov8n-bccd at 50% MACs ran 1.77x with blocks of 8, 1.80x with 16
    and 1.83x with 32 (640, 2 threads, docs/benchmarks.md section 10), which single-conv timings do not show.
    """
    channels = sorted(g["channels"] for g in table["groups"])
    if not channels:
        return []
    limit = channels[len(channels) // 2] // 2
    return [table["block"] * m for m in (2, 4) if table["block"] * m <= limit]


def _options(timed: list[dict], channels: int, block: int) -> list[dict]:
    """The group's widths (full width, then the multiples of `block` below it, narrowest last) with the ms and MACs
    each saves (ms made non-decreasing: a narrower width never saves less) and the importance it loses. `timed`: the
    group's timed widths, [{"width", "ms", "macs", "drop"}]."""
    by_width = {t["width"]: t for t in timed}
    widths = [channels, *sorted((w for w in by_width if w % block == 0 and w < channels), reverse=True)]
    full = by_width[channels]
    options, saved = [], 0.0
    for w in widths:
        saved = max(saved, full["ms"] - by_width[w]["ms"])
        options.append(
            {
                "width": w,
                "ratio": 1.0 - w / channels,
                "saved_ms": saved,
                "saved_macs": full["macs"] - by_width[w]["macs"],
                "drop": by_width[w]["drop"],
            }
        )
    return options


def _touched_convs(DG: tp.DependencyGraph, group, names: dict[nn.Module, str]) -> dict[str, tuple[str, float]]:
    """Convs whose width the group sets: name -> ("out" or "in", share of the group's channels they carry)."""
    channels = len(group[0].idxs)
    touched: dict[str, tuple[str, float]] = {}
    for dep, idxs in group:
        m = dep.target.module
        if not isinstance(m, nn.Conv2d) or m not in names:
            continue
        if DG.is_out_channel_pruning_fn(dep.handler):
            kind = "out"
        elif DG.is_in_channel_pruning_fn(dep.handler) and m.groups == 1:
            kind = "in"
        else:
            continue  # a depthwise conv's input follows its output
        previous = touched.get(names[m])
        share = len(idxs) / channels + (previous[1] if previous and previous[0] == kind else 0.0)
        touched[names[m]] = (kind, share)
    return touched


def width_table(
    model: nn.Module,
    imgsz: int,
    timer: LayerTimer,
    *,
    max_layer_ratio: float = 0.9,
    round_to: int | None = None,
) -> dict:
    """Time every prunable group of `model` at its candidate widths; return each group's block-aligned widths with
    what they save and lose.

    Returns {"runtime", "imgsz", "total_ms" and "total_macs" (all convs), "block" and "block_from" (`round_to` when
    given, else what the timer reports, else learned from the timings), "round_to", "seconds", "groups": [{"group",
    "channels", "head" (a group of the model's last module), "timed": [{"width", "ms", "macs", "drop"}, ...] (every
    width timed), "options": [{"width", "ratio", "saved_ms", "saved_macs", "drop"}, ...] (full width first)}]}.
    Each group is timed with every other group at full width; savings are taken as additive, as the MACs are by the
    sensitivity allocation. `model` is not modified.
    """
    from yolo_prune.pruning.surgery import make_prunable

    start = time.perf_counter()
    work = copy.deepcopy(model).float().eval()
    make_prunable(work)
    shapes = conv_shapes(work, imgsz)
    DG, groups = build_groups(work, imgsz)
    names = {m: n for n, m in work.named_modules()}
    head = f"model.{len(work.model) - 1}."  # the Detect (Segment, Pose, OBB) head: Ultralytics' last module
    importance = tp.importance.GroupMagnitudeImportance(p=2)

    reported = getattr(timer, "block", None)
    # With the block known, only its multiples can be chosen: the widths between them are not worth timing.
    timed_block = round_to or reported
    plans = []  # (group name, channels, sorted importance, {width: [shapes]})
    wanted: dict[str, ConvShape] = {s.key: s for s in shapes.values()}
    for info, group in groups:
        scores = importance(group)
        if scores is None or len(scores) != info.channels:
            continue
        # Convs the exported model never runs cost nothing there (`cost.as_deployed`: the YOLO26 head branch the
        # model does not run; YOLO26-seg's training-only semantic branch).
        touched = {conv: use for conv, use in _touched_convs(DG, group, names).items() if conv in shapes}
        if not touched:
            continue
        min_width = max(1, info.channels - int(info.channels * max_layer_ratio))
        per_width: dict[int, list[ConvShape]] = {}
        for width in candidate_widths(info.channels, min_width, timed_block):
            removed = info.channels - width
            variants = []
            for conv, (kind, share) in touched.items():
                s = shapes[conv]
                cut = round(removed * share)
                if kind == "in":
                    variants.append(s.with_widths(s.cin - cut, s.cout))
                elif s.groups > 1:  # depthwise: its input channels go with its outputs
                    variants.append(s.with_widths(s.cin - cut, s.cout - cut))
                else:
                    variants.append(s.with_widths(s.cin, s.cout - cut))
            per_width[width] = variants
            wanted.update({v.key: v for v in variants})
        plans.append((info.name, info.channels, torch.sort(scores.float()).values.tolist(), per_width))

    keys = list(wanted)
    LOGGER.info(f"latency model: {len(keys)} conv shapes on {timer.runtime} (timing those not in the cache)")
    ms = dict(zip(keys, timer([wanted[k] for k in keys])))
    curves = [{w: sum(ms[v.key] for v in variants) for w, variants in per_width.items()} for *_, per_width in plans]
    block = timed_block or learn_block(curves)
    block_from = "round_to" if round_to else "runtime" if reported else "timings"
    rows = []
    for (name, channels, scores, per_width), times in zip(plans, curves):
        timed = [
            {
                "width": w,
                "ms": times[w],
                "macs": sum(v.macs for v in variants),
                "drop": float(sum(scores[: channels - w])),
            }
            for w, variants in per_width.items()
        ]
        options = _options(timed, channels, block)
        rows.append(
            {"group": name, "channels": channels, "head": name.startswith(head), "timed": timed, "options": options}
        )
    return {
        "runtime": timer.runtime,
        "imgsz": imgsz,
        "total_ms": float(sum(ms[s.key] for s in shapes.values())),
        "total_macs": sum(s.macs for s in shapes.values()),
        "block": block,
        "block_from": block_from,
        "round_to": round_to,
        "seconds": time.perf_counter() - start,
        "groups": rows,
    }


def at_block(table: dict, block: int) -> dict:
    """`table` with every group's options in multiples of `block`, a multiple of the table's: those widths were
    timed already, so nothing is timed or traced again (the block probe's coarser tables)."""
    if block % table["block"]:
        raise ValueError(f"block {block} is not a multiple of the table's block {table['block']}")
    groups = [{**g, "options": _options(g["timed"], g["channels"], block)} for g in table["groups"]]
    return {**table, "block": block, "block_from": "round_to", "round_to": block, "groups": groups}
