"""The target search (pruning/search.py) on a known cost curve: it lands, and points of an earlier search shorten it."""

from __future__ import annotations

import pytest

from yolo_prune.pruning.search import search


def _search(target: float, known=()):
    """Search a budget whose cost falls as 100 - 80 v^1.5 (bent, so the linear interpolation needs several trials)."""
    built = []

    def candidate_for(value: float):
        built.append(value)
        return value  # the "model" is its value

    def evaluate(value: float):
        cost = 100.0 - 80.0 * value**1.5
        return cost, {"cost": cost}

    found = search(
        candidate_for, evaluate, target=target, current=100.0, cap=1.0, linear=True, tolerance=0.2, variable="v",
        known=known,
    )  # fmt: skip
    return found, built


def test_a_search_lands_within_the_tolerance_and_every_trial_is_a_candidate():
    found, built = _search(50.0)
    assert found.cost == pytest.approx(50.0, abs=0.2)
    assert [t["value"] for t in found.trials] == [round(v, 5) for v in built]
    assert len(built) >= 3  # the curve is bent: the first guesses miss


def test_points_of_an_earlier_search_place_the_first_trial():
    earlier, _ = _search(55.0)
    known = [(t["value"], t["cost"]) for t in earlier.trials]
    cold, cold_built = _search(50.0)
    warm, warm_built = _search(50.0, known)
    assert warm.cost == pytest.approx(50.0, abs=0.2)
    assert len(warm_built) < len(cold_built)
    assert warm.model in warm_built  # the result is a candidate of this search, never a known point


def test_a_known_point_on_the_target_still_ends_in_a_candidate_built_here():
    value = 0.5
    cost = 100.0 - 80.0 * value**1.5
    found, built = _search(cost, known=[(value, cost)])
    assert found.model in built and found.cost == pytest.approx(cost, abs=0.2)
    assert len(built) <= 2  # the known point brackets the target from the first trial
