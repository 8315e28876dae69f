"""The target search: find the value of one pruning variable whose pruned model lands on a target cost.

The cost is a number that falls as the variable grows: MACs for `--target-macs`, the latency model's milliseconds
for `--target-speedup`. Each trial prunes a fresh copy at one value and measures it; the next value is interpolated
from the trials that bracket the target (or extrapolated while none is below it), until one lands within the
tolerance.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

LOGGER = logging.getLogger("yolo_prune")
MAX_TRIALS = 10


@dataclass
class SearchResult:
    """The trial closest to the target, its cost, and every trial in order."""

    model: nn.Module
    cost: float
    value: float
    trials: list[dict] = field(default_factory=list)


def next_value(
    trials: list[tuple[float, float]], target: float, current: float, cap: float, linear: bool = False
) -> float:
    """Interpolate the search variable expected to land on `target` from the trials so far.

    For a channel ratio, MACs (and roughly milliseconds) shrink with the square of the kept width, so the
    interpolation runs on sqrt(cost). For a budget (`linear`), the cost shrinks roughly linearly with it.
    """
    f = (lambda v: float(v)) if linear else math.sqrt
    below = [t for t in trials if t[1] <= target]
    above = [t for t in trials if t[1] > target] + [(0.0, current)]
    lo = max(above, key=lambda t: t[0])  # largest value still above the target
    if not below:
        if linear:  # extrapolate along the line through (0, current) and the best point above
            slope = (1.0 - lo[1] / current) / lo[0] if lo[0] > 0 else 1.0
            guess = (1.0 - target / current) / max(slope, 1e-3)
        else:  # extrapolate from the best point above through (ratio 1, no cost)
            guess = 1.0 - (1.0 - lo[0]) * math.sqrt(target / lo[1])
        return min(guess, cap)
    hi = min(below, key=lambda t: t[0])  # smallest value already below
    s_lo, s_hi, s_t = f(lo[1]), f(hi[1]), f(target)
    if s_lo == s_hi:
        return (lo[0] + hi[0]) / 2
    guess = lo[0] + (hi[0] - lo[0]) * (s_lo - s_t) / (s_lo - s_hi)
    # Keep strictly inside the bracket so the search always makes progress.
    margin = 0.05 * (hi[0] - lo[0])
    return min(max(guess, lo[0] + margin), hi[0] - margin)


def search(
    candidate_for: Callable[[float], nn.Module],
    evaluate: Callable[[nn.Module], tuple[float, dict]],
    *,
    target: float,
    current: float,
    cap: float,
    linear: bool,
    tolerance: float,
    variable: str,
    known: Sequence[tuple[float, float]] = (),
) -> SearchResult:
    """Try values of the variable until a candidate's cost is within `tolerance` (absolute) of `target`.

    `evaluate` returns a candidate's cost and what its trial record shows (e.g. MACs and their fraction). `known`
    are (value, cost) points an earlier search of the same candidates measured (a speed round aiming again): they
    place the first trial, and are not candidates. Returns the closest candidate found (within `MAX_TRIALS`); the
    caller decides whether it is close enough.
    """
    best: SearchResult | None = None
    tried: list[tuple[float, float]] = []
    trials: list[dict] = []
    for _ in range(MAX_TRIALS):
        value = next_value([*known, *tried], target, current, cap, linear=linear)
        if any(abs(value - v) < 1e-4 for v, _ in tried):
            break  # the search cannot move any more (e.g. channel rounding makes the cost a step function)
        candidate = candidate_for(value)
        cost, shown = evaluate(candidate)
        tried.append((value, cost))
        trials.append({"value": round(value, 5), **shown})
        LOGGER.info(
            f"  trial {len(trials)}: {variable} {value:.4f} -> "
            + ", ".join(f"{k} {v:.4g}" for k, v in shown.items() if isinstance(v, float))
        )
        if best is None or abs(cost - target) < abs(best.cost - target):
            best = SearchResult(candidate, cost, value)
        if abs(cost - target) <= tolerance:
            break
    if best is None:  # cannot happen: the first trial always runs, `tried` starts empty
        raise RuntimeError("the target search ran no trial")
    best.trials = trials
    return best
