"""Prunes measured end to end: which channel block a runtime runs fastest, and a speedup target met as measured.

The latency model (`latency.py`) ranks widths and predicts; what confirms a prune is the pruned model timed against
its original on the runtime it is for. Timing is injected, as `LayerTimer` is for the latency model: a `ModelTimer`
times modules interleaved with the original (the deployment layer's `bench.AgainstOriginal` does it for a real
runtime; tests pass fakes). `prune_measured` is the entry point:

- with several allocations (the latency allocation at the runtime's channel block and coarser ones), each is
  pruned to the same target and all are timed together; the fastest per MAC is kept (`probe_blocks`);
- a speedup target is then met in rounds: the aim of the latency model is corrected by what each candidate measures
  until one lands within `SPEEDUP_AIM` of the goal (`meet_speedup`, `next_aim`);
- a check timed while the machine was busy is timed again (`SteadyTimer`).

Why each constant has its value is told in docs/benchmarks.md section 10.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Protocol

from torch import nn

from yolo_prune.errors import TargetUnreachableError
from yolo_prune.pruning.allocation import Allocation, create_allocation, get_allocation
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.latency import LayerTimer, at_block, coarser_blocks, width_table
from yolo_prune.pruning.prune import PruneResult, prune

LOGGER = logging.getLogger("yolo_prune")

SPEEDUP_AIM = 0.025  # a speedup target is retried until the measured speedup is within 2.5% (the promise is 5%)
SPEEDUP_TOLERANCE = 0.05
SPEEDUP_ROUNDS = 4
BLOCK_MARGIN = 0.02  # a finer channel block is kept only when it measures >2% faster per MAC (one check's noise)
BUSY_MARGIN = 0.10  # a check whose original ran >10% slower than in the prune's fastest check ran on a busy machine
BUSY_RETRIES = 2
BUSY_PAUSE_S = 2.0


class Timing(Protocol):
    """One model's figures in one end-to-end check."""

    median_ms: float
    speedup: float  # the original's median over this one's


class ModelTimer(Protocol):
    """Times modules end to end, interleaved with the original it was made for."""

    def __call__(self, models: Sequence[nn.Module]) -> Sequence[Timing]:
        """The original's timing, then each model's, all from one interleaved check."""


@dataclass(frozen=True)
class Timers:
    """What a measured prune times with: the latency model's conv timer, and `against(original)`, a context that
    gives a `ModelTimer` for that original (and cleans up the files it made)."""

    layers: LayerTimer
    against: Callable[[nn.Module], AbstractContextManager[ModelTimer]]


@dataclass
class Candidate:
    """A pruned model and its latest end-to-end figures."""

    pruned: nn.Module
    result: PruneResult
    aimed: float = 0.0  # the speedup the latency model aimed at
    measured: float = 0.0
    original_ms: float = 0.0
    pruned_ms: float = 0.0

    def timed(self, original: Timing, row: Timing) -> None:
        self.measured, self.original_ms, self.pruned_ms = row.speedup, original.median_ms, row.median_ms

    def figures(self) -> dict:
        return {
            "aimed": self.aimed,
            "measured": self.measured,
            "original_ms": self.original_ms,
            "pruned_ms": self.pruned_ms,
        }


# prune one allocation to the config's target, starting the search from earlier trials
Pruner = Callable[[Allocation, PruneConfig, Sequence[dict]], tuple[nn.Module, PruneResult]]


class SteadyTimer:
    """A `ModelTimer` that times a check again when its original ran more than `BUSY_MARGIN` slower than in the
    fastest check so far (a busy machine squeezes the speedups too), up to `BUSY_RETRIES` times after `pause_s`,
    keeping the attempt whose original ran fastest; it warns when the machine stays busy."""

    def __init__(self, timer: ModelTimer, pause_s: float = BUSY_PAUSE_S, sleep: Callable[[float], None] = time.sleep):
        self.timer, self.pause_s, self.sleep = timer, pause_s, sleep
        self.fastest_ms: float | None = None  # the original's fastest median in the checks so far

    def _busy(self, rows: Sequence[Timing]) -> bool:
        return self.fastest_ms is not None and rows[0].median_ms > self.fastest_ms * (1 + BUSY_MARGIN)

    def __call__(self, models: Sequence[nn.Module]) -> Sequence[Timing]:
        rows = self.timer(models)
        for _ in range(BUSY_RETRIES):
            if not self._busy(rows):
                break
            LOGGER.info(
                f"  the original ran {rows[0].median_ms:.2f} ms against {self.fastest_ms:.2f} ms in an earlier check: "
                "the machine is busy, timing again"
            )
            self.sleep(self.pause_s)
            rows = min(rows, self.timer(models), key=lambda r: r[0].median_ms)
        if self._busy(rows):
            LOGGER.warning(
                f"the machine stayed busy: the original ran {rows[0].median_ms:.2f} ms against {self.fastest_ms:.2f} "
                "ms in an earlier check, and this check's speedups may read low; prune on an idle machine"
            )
        first = rows[0].median_ms
        self.fastest_ms = first if self.fastest_ms is None else min(self.fastest_ms, first)
        return rows


def candidate_allocations(
    model: nn.Module, config: PruneConfig, layers: LayerTimer | None, table: dict | None = None
) -> list[Allocation]:
    """The allocations to try for one prune. One that picks widths times the model it prunes (cached per shape), and
    without `round_to` comes in the runtime's block and the coarser ones `probe_blocks` measures; so does one that is
    rounded to the runtime's blocks (`Allocation.in_runtime_blocks`) when there is a timer and no `round_to`."""
    name, kind = config.allocation, get_allocation(config.allocation)
    in_blocks = layers is not None and kind.blocks_from_runtime(config.round_to)
    if not (kind.needs_widths or in_blocks):
        return [create_allocation(name, table, round_to=config.round_to, max_ratio=config.max_layer_ratio)]
    timed = width_table(model, config.imgsz, layers, max_layer_ratio=config.max_layer_ratio, round_to=config.round_to)
    if not kind.needs_widths:  # the width table tells the runtime's block; the allocation rounds up to it
        blocks = [timed["block"], *coarser_blocks(timed)]
        return [create_allocation(name, table, round_to=b, max_ratio=config.max_layer_ratio) for b in blocks]
    tables = [timed]
    if config.round_to is None:
        tables += [at_block(timed, block) for block in coarser_blocks(timed)]
    return [create_allocation(name, table, widths) for widths in tables]


def prune_measured(
    model: nn.Module,
    config: PruneConfig,
    allocations: Sequence[Allocation],
    *,
    timers: Timers | None,
    base_macs: int,
    gradient_batches: Callable[[], Iterable[dict]] | None = None,
) -> tuple[nn.Module, PruneResult]:
    """Prune `model` (`pruning.prune`) with the best of `allocations`, measured end to end when there is more than
    one, and to `config.target_speedup` as measured when one is set."""
    layers = timers.layers if timers is not None else None

    def run(allocation: Allocation, step_config: PruneConfig, earlier: Sequence[dict] = ()):
        return prune(
            model,
            step_config,
            allocation=allocation,
            base_macs=base_macs,
            gradient_batches=gradient_batches,
            timer=layers,
            earlier=earlier,
            aim_only=config.target_speedup is not None,  # measured end to end below, and aimed again
        )

    if config.target_speedup is None and len(allocations) == 1:
        return run(allocations[0], config)
    with timers.against(model) as timer:
        time_them = SteadyTimer(timer)
        first, probe, allocation = None, None, allocations[0]
        if len(allocations) > 1:
            allocation, first, probe = probe_blocks(allocations, run, config, time_them)
        if config.target_speedup is None:
            pruned, result = first.pruned, first.result
        else:
            # A coarse block's narrowest widths are whole blocks: where its speed rounds cannot reach the target, the
            # finer blocks are tried, nearest first (yolo11s-bccd's blocks of 64 stopped at 2.29x for a 2.85x target).
            finer = list(reversed(allocations[: allocations.index(allocation)]))
            for k, tried in enumerate([allocation, *finer]):
                try:
                    pruned, result = meet_speedup(run, tried, config, time_them, first if k == 0 else None)
                    break
                except TargetUnreachableError as e:
                    if k == len(finer):
                        raise
                    LOGGER.info(f"  {e}; trying the next finer block")
            if probe is not None and k:
                probe.update(chosen=result.extra.get("block"), reached_in_finer_block=True)
    if probe is not None:
        result.extra.update(block_from="measured end to end", block_probe=probe)
    return pruned, result


def probe_blocks(
    allocations: Sequence[Allocation], run: Pruner, config: PruneConfig, time_them: ModelTimer
) -> tuple[Allocation, Candidate, dict]:
    """Prune with each allocation (finest block first) to the same target, time them all interleaved with the
    original, and keep the fastest per MAC kept; a finer block must beat a coarser one by `BLOCK_MARGIN`. For a
    speedup target too: candidates aimed at the same predicted latency keep different MACs, and the speed rounds
    that follow move the kept one to the target. Returns the allocation, its timed candidate and the probe's record."""
    tried: list[tuple[Allocation, Candidate]] = []
    errors = []
    for allocation in allocations:
        try:
            tried.append((allocation, Candidate(*run(allocation, config, ()), aimed=config.target_speedup or 0.0)))
        except TargetUnreachableError as e:
            errors.append(e)  # a block too coarse for the target
    if not tried:
        raise errors[0]
    rows = time_them([c.pruned for _, c in tried])
    for (_, candidate), row in zip(tried, rows[1:]):
        candidate.timed(rows[0], row)

    def merit(k: int) -> float:
        return tried[k][1].measured * tried[k][1].result.macs_fraction

    best = len(tried) - 1  # the coarsest block; a finer one must win by the margin
    for k in reversed(range(best)):
        if merit(k) > merit(best) * (1 + BLOCK_MARGIN):
            best = k
    probe = {
        "chosen": tried[best][1].result.extra.get("block"),
        "blocks": [
            {"block": c.result.extra.get("block"), "macs_fraction": c.result.macs_fraction, "measured": c.measured}
            for _, c in tried
        ],
    }
    LOGGER.info(
        "  channel blocks measured end to end: "
        + ", ".join(f"{b['block']}: {b['measured']:.2f}x at {b['macs_fraction']:.1%} MACs" for b in probe["blocks"])
        + f"; keeping {probe['chosen']}"
    )
    return tried[best][0], tried[best][1], probe


def meet_speedup(
    run: Pruner, allocation: Allocation, config: PruneConfig, time_them: ModelTimer, first: Candidate | None = None
) -> tuple[nn.Module, PruneResult]:
    """Correct the latency model's aim by the speedup the candidate measures against the original until they agree.
    `first` is a candidate already pruned at the target and timed.

    Each round times its candidate together with the earlier candidates nearest the goal (one on each side): on a
    shared CPU the same pair measured 1.73-2.03x in five benches, so figures from different rounds do not compare,
    while models timed in one bench do. The pick and the next aim use each candidate's latest figure.
    """
    goal, aim, rounds = config.target_speedup, config.target_speedup, []
    candidates: list[Candidate] = []
    for n in range(SPEEDUP_ROUNDS):
        if n == 0 and first is not None:
            new, again = first, []
        else:
            # the latency model's search for the new aim starts from what the earlier rounds' searches measured
            earlier = [t for c in candidates for t in c.result.trials]
            try:
                new = Candidate(*run(allocation, replace(config, target_speedup=aim), earlier), aimed=aim)
            except TargetUnreachableError:
                if not candidates:
                    raise
                break  # the corrected aim is beyond the latency model's reach: judge the rounds so far
            again = neighbours(candidates, goal)
            rows = time_them([c.pruned for c in again] + [new.pruned])
            for candidate, row in zip([*again, new], rows[1:]):
                candidate.timed(rows[0], row)
        candidates.append(new)
        rounds.append(new.figures())
        if again:
            rounds[-1]["retimed"] = {f"{c.aimed:.3f}": c.measured for c in again}
        LOGGER.info(
            f"  measured {new.measured:.2f}x end to end on {config.runtime} (latency model aimed {aim:.2f}x)"
            + "".join(f"; aimed {c.aimed:.2f}x again: {c.measured:.2f}x" for c in again)
        )
        best = min(candidates, key=lambda c: abs(c.measured - goal))
        if abs(best.measured / goal - 1) <= SPEEDUP_AIM:
            break
        aim = next_aim([c.figures() for c in candidates], goal)
        if aim <= 1.0:
            break
    result = best.result  # `best`: the closest after the last round that was timed
    result.extra["speedup"] = {
        "target": goal,
        "runtime": config.runtime,
        "batch": config.latency_batch,
        **best.figures(),
        "rounds": rounds,
    }
    if abs(best.measured / goal - 1) > SPEEDUP_TOLERANCE:
        # free widths the user chose (--round-to 1, uniform, global); not the block of 1 a runtime's timings gave
        free = not allocation.rounds_widths and not allocation.blocks_from_runtime(config.round_to)
        hint = (
            "; widths in the runtime's channel blocks (the default allocations, without --round-to) follow the "
            "latency model"
            if free
            else ""
        )
        per_batch = f" at batch {config.latency_batch}" if config.latency_batch > 1 else ""
        raise TargetUnreachableError(
            f"could not reach {goal:.2f}x on {config.runtime}{per_batch}: the closest measured was "
            f"{best.measured:.2f}x{hint}"
        )
    return best.pruned, result


def neighbours(candidates: Sequence, goal: float, measured: Callable = operator.attrgetter("measured")) -> list:
    """The candidates measured nearest the goal below it and at or above it (latest figures), to time again.
    `measured` reads a candidate's speedup (`Candidate`s by default; `next_aim` passes round records)."""
    below = [c for c in candidates if measured(c) < goal]
    above = [c for c in candidates if measured(c) >= goal]
    return [min(side, key=lambda c: abs(measured(c) - goal)) for side in (below, above) if side]


def next_aim(rounds: list[dict], goal: float) -> float:
    """The latency model's next aim for a speedup `goal`, from the rounds so far ({"aimed", "measured"}).

    After one round the aim is scaled by how far the measurement missed. After two, the measured speedup is taken as
    a power of the aimed one through the two rounds nearest the goal (one on each side when there are): the measured
    speedup can move faster than the aim (1.6 times as much for yolov8n-bccd at 640 on 2 threads), so plain scaling
    overshoots back and forth. The slope is kept within [0.5, 3]: two rounds' noise can say anything.
    """
    last = rounds[-1]
    if len(rounds) < 2:
        return last["aimed"] * goal / last["measured"]
    pair = neighbours(rounds, goal, operator.itemgetter("measured"))
    if len(pair) < 2:
        pair = sorted(rounds, key=lambda r: abs(math.log(r["measured"] / goal)))[:2]
    (a0, m0), (a1, m1) = ((r["aimed"], r["measured"]) for r in pair)
    if abs(math.log(a1 / a0)) < 1e-6:
        return a0 * goal / m0
    slope = min(max(math.log(m1 / m0) / math.log(a1 / a0), 0.5), 3.0)
    return a0 * (goal / m0) ** (1 / slope)
