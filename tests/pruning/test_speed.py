"""The speed search (`pruning.speed`) driven by fake timers: the block probe, the speed rounds and their next aim,
and the busy-machine retry. No runtime, no model: candidates are stand-ins with the figures a check would give."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from yolo_prune.pruning import speed
from yolo_prune.pruning.allocation import create_allocation
from yolo_prune.pruning.config import PruneConfig


def test_the_next_aim_follows_how_the_measured_speedup_moved_with_the_aim():
    rounds = [{"aimed": 2.0, "measured": 2.63}]  # yolov8n-bccd at 640 on 2 threads
    assert speed.next_aim(rounds, 2.0) == pytest.approx(2.0 * 2.0 / 2.63)  # one round: scaled by the miss
    rounds.append({"aimed": 1.52, "measured": 1.70})  # scaling overshot: the speedup moves ~1.6x the aim
    aim = speed.next_aim(rounds, 2.0)
    assert 1.52 < aim < 2.0  # between the two, where scaling by the last miss would give 1.79
    slope = math.log(2.63 / 1.70) / math.log(2.0 / 1.52)
    assert 1.70 * (aim / 1.52) ** slope == pytest.approx(2.0)  # on the line through both rounds
    # noise that says the speedup fell as the aim rose: the slope is held at 0.5 rather than followed backwards
    noisy = [{"aimed": 1.8, "measured": 1.9}, {"aimed": 1.9, "measured": 1.85}]
    assert speed.next_aim(noisy, 2.0) == pytest.approx(1.8 * (2.0 / 1.9) ** 2)


def test_each_speedup_round_times_the_nearest_earlier_candidates_again():
    factors = iter([1.0, 0.8, 0.8, 0.8])  # the machine slows the pruned models by 20% after the first check
    calls, given = [], []

    def run(allocation, config, earlier=()):  # the latency model is 20% pessimistic: a candidate runs 1.2x its aim
        given.append(list(earlier))
        trial = {"value": config.target_speedup}
        return SimpleNamespace(speedup=1.2 * config.target_speedup), SimpleNamespace(extra={}, trials=[trial])

    def time_them(models):
        calls.append([m.speedup for m in models])
        factor = next(factors)
        return [SimpleNamespace(speedup=1.0, median_ms=10.0)] + [
            SimpleNamespace(speedup=m.speedup * factor, median_ms=10.0 / (m.speedup * factor)) for m in models
        ]

    config = PruneConfig(target_speedup=2.0)
    pruned, result = speed.meet_speedup(run, SimpleNamespace(rounds_widths=True), config, time_them)
    assert [len(c) for c in calls] == [1, 2, 2]  # rounds 2 and 3 time an earlier candidate beside the new one
    record = result.extra["speedup"]
    assert record["rounds"][1]["retimed"] == {"2.000": pytest.approx(2.4 * 0.8)}  # the first, slowed as well
    assert record["measured"] == pytest.approx(2.0) and pruned.speedup == pytest.approx(2.5)
    assert record["aimed"] == pytest.approx(2.0 * 2.0 / 1.92)  # aimed from the first's figure in the same check
    # each round's search starts from the trials of the rounds before it
    assert [[t["value"] for t in trials] for trials in given] == [[], [2.0], [2.0, record["rounds"][1]["aimed"]]]


def test_a_speedup_missed_by_more_than_the_tolerance_is_one_error_that_names_the_remedy():
    def run(allocation, config, earlier=()):
        return SimpleNamespace(), SimpleNamespace(extra={}, trials=[])

    def time_them(models):  # fixed costs: every candidate measures 1.5x
        return [SimpleNamespace(speedup=1.0, median_ms=10.0)] + [SimpleNamespace(speedup=1.5, median_ms=6.7)] * len(
            models
        )

    config = PruneConfig(target_speedup=2.0, latency_batch=1)
    with pytest.raises(speed.TargetUnreachableError, match="^could not reach 2.00x on onnxruntime-cpu: the closest me"):
        speed.meet_speedup(run, SimpleNamespace(rounds_widths=True), config, time_them)
    # free widths the user chose: the error says that widths in the runtime's blocks follow the latency model
    with pytest.raises(speed.TargetUnreachableError, match="closest measured was 1.50x; widths in the runtime's"):
        speed.meet_speedup(run, create_allocation("uniform"), config, time_them)
    in_blocks = create_allocation("sensitivity", {"ratios": [0.5], "groups": []}, round_to=16)  # a runtime's block
    with pytest.raises(speed.TargetUnreachableError, match="closest measured was 1.50x$"):
        speed.meet_speedup(run, in_blocks, config, time_them)


def test_a_check_timed_on_a_busy_machine_is_timed_again():
    def fake(models):  # the pruned models run 2x on an idle machine, 1.5x on a busy one
        original = next(originals)
        calls.append(len(models))
        squeeze = 1.0 if original < 11.0 else 0.75
        row = SimpleNamespace(median_ms=original / (2.0 * squeeze), speedup=2.0 * squeeze)
        return [SimpleNamespace(median_ms=original, speedup=1.0)] + [row] * len(models)

    pauses = []
    time_them = speed.SteadyTimer(fake, pause_s=2.0, sleep=pauses.append)
    candidate = object()
    originals, calls = iter([10.0, 14.0, 13.0, 10.5]), []  # idle, then busy twice, then idle again
    assert time_them([candidate])[1].speedup == 2.0 and calls == [1]
    rows = time_them([candidate])
    assert calls == [1, 1, 1, 1] and rows[0].median_ms == 10.5 and rows[1].speedup == 2.0 and pauses == [2.0, 2.0]
    originals, calls = iter([15.0, 12.0, 14.0]), []  # busy through both retries: the least busy attempt is kept
    rows = time_them([candidate])
    assert len(calls) == 3 and rows[0].median_ms == 12.0 and rows[1].speedup == 1.5
    originals, calls = iter([10.9]), []  # within 10% of the fastest check: not timed again
    assert time_them([candidate])[0].median_ms == 10.9 and calls == [1]


def _probe(speedups: list[float], fractions: dict[int, float], config: PruneConfig):
    """`probe_blocks` over fake candidates, one per block with its MACs fraction, measured at `speedups`."""
    candidates = {
        f"allocation-{b}": (f"pruned-{b}", SimpleNamespace(extra={"block": b}, macs_fraction=f))
        for b, f in fractions.items()
    }
    rows = [SimpleNamespace(speedup=s, median_ms=10 / s) for s in (1.0, *speedups)]
    return speed.probe_blocks(list(candidates), lambda a, config, earlier: candidates[a], config, lambda models: rows)


def test_a_finer_block_must_measure_clearly_faster_to_be_kept():
    def probe(speedups):
        return _probe(speedups, dict.fromkeys((8, 16, 32), 0.5), PruneConfig(target_macs=0.5))

    assert probe([1.80, 1.82, 1.83])[0] == "allocation-32"
    assert probe([1.86, 1.85, 1.83])[0] == "allocation-32"  # finer ones within the margin of the coarsest: noise
    assert probe([1.80, 1.88, 1.83])[0] == "allocation-16"
    assert probe([1.90, 1.88, 1.83])[0] == "allocation-16"  # blocks of 8 must beat the kept 16 by the margin too
    allocation, candidate, record = probe([1.90, 1.75, 1.80])
    assert (allocation, candidate.pruned, candidate.measured, record["chosen"]) == ("allocation-8", "pruned-8", 1.9, 8)
    assert candidate.original_ms == 10.0 and record["blocks"][1] == {
        "block": 16,
        "macs_fraction": 0.5,
        "measured": 1.75,
    }


def test_for_a_speed_target_the_probe_keeps_the_fastest_per_mac_not_outright():
    # aimed at the same predicted 2x: blocks of 16 keep far fewer MACs and so run faster (yolov8n-bccd, 640)
    allocation, candidate, record = _probe([1.80, 2.36], {8: 0.487, 16: 0.350}, PruneConfig(target_speedup=2.0))
    assert (allocation, candidate.pruned, candidate.measured, record["chosen"]) == ("allocation-8", "pruned-8", 1.8, 8)
    assert candidate.aimed == 2.0  # the speed rounds start from it, aimed at the target


def test_a_speed_target_a_coarse_block_cannot_reach_is_met_in_the_next_finer_one(monkeypatch):
    """The probe keeps the fastest block per MAC; where that block's narrowest widths cannot reach the target, the
    finer blocks are tried, nearest first, and the record says which block met it."""
    import contextlib

    first = SimpleNamespace()
    monkeypatch.setattr(speed, "probe_blocks", lambda allocs, run, config, t: ("block-64", first, {"chosen": 64}))
    tried = []

    def meet(run, allocation, config, time_them, first_candidate=None):
        tried.append((allocation, first_candidate))
        if allocation in unreachable:
            raise speed.TargetUnreachableError(f"could not reach 2.85x in {allocation}")
        return "pruned", SimpleNamespace(extra={"block": int(allocation.split("-")[1])})

    monkeypatch.setattr(speed, "meet_speedup", meet)
    timers = speed.Timers(layers=None, against=lambda model: contextlib.nullcontext(lambda models: []))
    config = PruneConfig(target_speedup=2.85)
    unreachable = {"block-64"}
    _, result = speed.prune_measured(None, config, ["block-16", "block-32", "block-64"], timers=timers, base_macs=1)
    assert tried == [("block-64", first), ("block-32", None)]
    assert result.extra["block_probe"] == {"chosen": 32, "reached_in_finer_block": True}
    tried.clear()
    unreachable = {"block-16", "block-32", "block-64"}
    with pytest.raises(speed.TargetUnreachableError, match="in block-16$"):
        speed.prune_measured(None, config, ["block-16", "block-32", "block-64"], timers=timers, base_macs=1)
    assert [a for a, _ in tried] == ["block-64", "block-32", "block-16"]
