"""The target search: find the value of one pruning variable whose pruned model lands on a MACs target.

Each trial prunes a fresh copy at one value and measures it; the next value is interpolated from the trials that
bracket the target (or extrapolated while none is below it), until one lands within the tolerance.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from yolo_prune.pruning.cost import ModelCost

LOGGER = logging.getLogger("yolo_prune")
MAX_TRIALS = 10


@dataclass
class SearchResult:
    """The trial closest to the target, and every trial in order."""

    model: nn.Module
    cost: ModelCost
    value: float
    trials: list[dict] = field(default_factory=list)


def next_value(
    trials: list[tuple[float, int]], target: int, current_macs: int, cap: float, linear: bool = False
) -> float:
    """Interpolate the search variable expected to land on `target` MACs from the trials so far.

    For a channel ratio, MACs shrink roughly with the square of the kept width, so the interpolation runs on
    sqrt(MACs). For a MACs budget (`linear`), MACs shrink roughly linearly with it.
    """
    f = (lambda v: float(v)) if linear else math.sqrt
    below = [t for t in trials if t[1] <= target]
    above = [t for t in trials if t[1] > target] + [(0.0, current_macs)]
    lo = max(above, key=lambda t: t[0])  # largest value still above the target
    if not below:
        if linear:  # extrapolate along the line through (0, current) and the best point above
            slope = (1.0 - lo[1] / current_macs) / lo[0] if lo[0] > 0 else 1.0
            guess = (1.0 - target / current_macs) / max(slope, 1e-3)
        else:  # extrapolate from the best point above through (ratio 1, 0 MACs)
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
    measure: Callable[[nn.Module], ModelCost],
    *,
    target: int,
    current_macs: int,
    base_macs: int,
    cap: float,
    linear: bool,
    tolerance: float,
    variable: str,
) -> SearchResult:
    """Try values of the variable until a candidate is within `tolerance * base_macs` of `target` MACs.

    Returns the closest candidate found (within `MAX_TRIALS`); the caller decides whether it is close enough.
    """
    best: SearchResult | None = None
    points: list[tuple[float, int]] = []
    trials: list[dict] = []
    for _ in range(MAX_TRIALS):
        value = next_value(points, target, current_macs, cap, linear=linear)
        if any(abs(value - v) < 1e-4 for v, _ in points):
            break  # the search cannot move any more (e.g. channel rounding makes MACs a step function)
        candidate = candidate_for(value)
        cost = measure(candidate)
        points.append((value, cost.macs))
        trials.append({"value": round(value, 5), "macs": cost.macs, "macs_fraction": cost.macs / base_macs})
        LOGGER.info(f"  trial {len(trials)}: {variable} {value:.4f} -> {cost.macs / base_macs:.2%} of base MACs")
        if best is None or abs(cost.macs - target) < abs(best.cost.macs - target):
            best = SearchResult(candidate, cost, value)
        if abs(cost.macs - target) <= tolerance * base_macs:
            break
    if best is None:  # cannot happen: the first trial always runs, `points` starts empty
        raise RuntimeError("the target search ran no trial")
    best.trials = trials
    return best
