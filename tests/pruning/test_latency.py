"""The latency model: conv shapes, the learned channel block, block-aligned widths, the greedy choice, and prunes to
a latency-model target. A fake timer whose cost pads channels to blocks of 16 (as onnxruntime's NCHWc convs do on
AVX-512) stands in for a runtime, so the expected widths are known."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from conftest import PaddedTimer, random_v8n

from yolo_prune import PruneConfig, prune
from yolo_prune.errors import ConfigError, TargetUnreachableError
from yolo_prune.pruning.budget import choose_widths
from yolo_prune.pruning.cost import ConvShape, conv_shapes, conv_widths
from yolo_prune.pruning.latency import at_block, candidate_widths, coarser_blocks, learn_block, predict_ms, width_table
from yolo_prune.pruning.surgery import make_prunable

IMGSZ = 64


def test_conv_shapes_reads_every_conv_with_its_input_size_and_activation():
    model = random_v8n()
    make_prunable(model)
    shapes = conv_shapes(model, IMGSZ)
    assert set(shapes) == set(conv_widths(model))
    first = shapes["model.0.conv"]
    assert (first.cin, first.cout, first.k, first.stride, first.h, first.w, first.act) == (3, 16, 3, 2, 64, 64, True)
    assert shapes["model.22.dfl.conv"].act is False  # a bare conv: no SiLU after it
    assert first.key != shapes["model.1.conv"].key


def test_learn_block_finds_the_padding_of_the_curves():
    def curve(block: int, widths=range(4, 129, 4)) -> dict[int, float]:
        return {w: float(math.ceil(w / block)) for w in widths}

    assert learn_block([curve(16), curve(16, range(8, 65, 8))]) == 16
    assert learn_block([curve(8)]) == 8
    assert learn_block([{w: float(w) for w in range(4, 129, 4)}]) == 1  # every channel costs: no block


def test_candidate_widths_follow_round_to_and_the_layer_floor():
    assert candidate_widths(64, 7, None) == [8, 12, 16, 24, 32, 40, 48, 56, 64]
    assert candidate_widths(64, 7, 16) == [16, 32, 48, 64]
    assert candidate_widths(40, 4, 16) == [16, 32, 40]  # the full width stays an option


def test_width_table_offers_the_learned_block_and_choose_widths_is_greedy_and_nested():
    timer = PaddedTimer(16)
    table = width_table(random_v8n(), IMGSZ, timer)
    assert (table["block"], table["block_from"]) == (16, "timings")
    for group in table["groups"]:
        widths = [o["width"] for o in group["options"]]
        assert widths[0] == group["channels"]
        assert all(w % 16 == 0 for w in widths[1:]), group
        saved = [o["saved_ms"] for o in group["options"]]
        assert saved == sorted(saved)  # narrower never saves less
    small, large = choose_widths(table, 0.2), choose_widths(table, 0.5)
    assert all(large[g] <= small[g] for g in small)  # a larger budget never keeps what a smaller one removed
    assert choose_widths(table, 0.0) == {g["group"]: g["channels"] for g in table["groups"]}


def test_choose_widths_takes_the_cheapest_importance_per_millisecond():
    table = {
        "total_ms": 10.0,
        "groups": [
            {"group": "a", "channels": 32, "options": [
                {"width": 32, "saved_ms": 0.0, "drop": 0.0}, {"width": 16, "saved_ms": 1.0, "drop": 5.0}]},
            {"group": "b", "channels": 32, "options": [
                {"width": 32, "saved_ms": 0.0, "drop": 0.0}, {"width": 16, "saved_ms": 1.0, "drop": 1.0}]},
        ],
    }  # fmt: skip
    assert choose_widths(table, 0.25) == {"a": 32, "b": 16}  # a quarter of the 0.2 on offer: b's step first
    assert choose_widths(table, 0.75) == {"a": 16, "b": 16}
    assert choose_widths(table, 1.0) == {"a": 16, "b": 16}  # 1: everything the table offers


def test_latency_allocation_prunes_to_block_multiples_and_reaches_macs_target():
    model = random_v8n()
    timer = PaddedTimer(16)
    pruned, result = prune(model, PruneConfig(target_macs=0.5, allocation="latency", imgsz=IMGSZ), timer=timer)
    assert result.macs_fraction == pytest.approx(0.5, abs=0.03)
    before, after = result.widths_before, conv_widths(pruned)
    changed = {name: w for name, w in after.items() if w != before[name]}
    assert changed, "nothing was pruned"
    assert all(w % 16 == 0 for w in changed.values()), changed
    model_info = result.to_dict()["latency_model"]
    assert model_info["runtime"] == "fake-padded"
    assert model_info["predicted_speedup"] > 1.5


def test_round_to_replaces_the_learned_block():
    table = width_table(random_v8n(), IMGSZ, PaddedTimer(16), round_to=8)
    assert (table["block"], table["block_from"]) == (8, "round_to")
    assert any(o["width"] % 16 for g in table["groups"] for o in g["options"][1:])


def test_a_block_the_runtime_reports_wins_over_noisy_timings():
    class Reporting(PaddedTimer):
        block = 8  # what the runtime says; the timings below pad to 16

    reporting, learning = Reporting(16), PaddedTimer(16)
    table = width_table(random_v8n(), IMGSZ, reporting)
    assert (table["block"], table["block_from"]) == (8, "runtime")
    width_table(random_v8n(), IMGSZ, learning)
    assert len(reporting.seen) < len(learning.seen)  # widths between the blocks are not timed
    assert not {s.cout for s in reporting.seen} & {4, 12}  # (every conv here is at least 16 wide)
    assert all(o["width"] % 8 == 0 for g in table["groups"] for o in g["options"][1:])
    assert any(o["width"] % 16 for g in table["groups"] for o in g["options"][1:])
    assert width_table(random_v8n(), IMGSZ, Reporting(16), round_to=4)["block"] == 4  # --round-to still decides


def test_coarser_blocks_double_the_block_up_to_half_the_median_group():
    def table(block, channels):
        return {"block": block, "groups": [{"channels": c} for c in channels]}

    assert coarser_blocks(table(8, [16, 32, 64, 64, 128, 256])) == [16, 32]  # median 64: blocks up to 32
    assert coarser_blocks(table(16, [16, 32, 64, 64, 128, 256])) == [32]
    assert coarser_blocks(table(16, [16, 16, 32])) == []  # median 16: the block is already half of it
    assert coarser_blocks(table(8, [])) == []
    v8n = width_table(random_v8n(), IMGSZ, PaddedTimer(16))
    assert v8n["block"] == 16 and coarser_blocks(v8n) == [32]


def test_a_coarser_table_from_the_timed_widths_equals_one_timed_at_that_block():
    class Reporting(PaddedTimer):
        block = 8

    fine = width_table(random_v8n(), IMGSZ, Reporting(16))
    derived = at_block(fine, 16)  # from the timed widths: it has no timer
    timed = width_table(random_v8n(), IMGSZ, Reporting(16), round_to=16)
    assert (derived["block"], derived["block_from"]) == (16, "round_to")
    assert [g["options"] for g in derived["groups"]] == [g["options"] for g in timed["groups"]]
    assert any(o["width"] % 16 for g in fine["groups"] for o in g["options"][1:])
    with pytest.raises(ValueError, match="not a multiple"):
        at_block(fine, 12)


def test_target_speedup_lands_on_the_latency_model():
    model = random_v8n()
    timer = PaddedTimer(16)
    config = PruneConfig(target_speedup=1.6, allocation="latency", imgsz=IMGSZ)
    pruned, result = prune(model, config, timer=timer)
    predicted = predict_ms(model, IMGSZ, timer) / predict_ms(pruned, IMGSZ, timer)
    assert predicted == pytest.approx(1.6, rel=0.03)
    assert result.to_dict()["latency_model"]["predicted_speedup"] == pytest.approx(predicted, rel=0.01)
    # uniform allocation can be searched to a speedup as well
    _, uniform = prune(model, PruneConfig(target_speedup=1.6, allocation="uniform", imgsz=IMGSZ), timer=timer)
    assert uniform.to_dict()["latency_model"]["predicted_speedup"] == pytest.approx(1.6, rel=0.03)


def test_a_prune_that_is_measured_afterwards_keeps_the_closest_aim():
    # In blocks of 64 this model's predicted speedups step from 1.28x to beyond 1.5x: a 1.36x target misses by 6%.
    model, timer = random_v8n(), PaddedTimer(16)
    config = PruneConfig(target_speedup=1.36, allocation="latency", imgsz=IMGSZ, round_to=64)
    with pytest.raises(TargetUnreachableError, match=r"could not reach a predicted 1.36x speedup .* closest was 1.28x"):
        prune(model, config, timer=timer)
    _, result = prune(model, config, timer=timer, aim_only=True)  # a prune run measures it and aims again
    assert result.to_dict()["latency_model"]["predicted_speedup"] == pytest.approx(1.284, abs=0.005)
    with pytest.raises(TargetUnreachableError, match=r"could not reach a predicted 1.50x speedup .* closest was 1.28x"):
        prune(model, replace(config, target_speedup=1.5), timer=timer, aim_only=True)  # 17% off: beyond AIM_SLACK


def test_latency_bad_inputs():
    model = random_v8n()
    with pytest.raises(ConfigError, match="needs a latency timer"):
        prune(model, PruneConfig(target_speedup=2.0, imgsz=IMGSZ))
    with pytest.raises(ConfigError, match="needs a latency timer"):
        prune(model, PruneConfig(target_macs=0.5, allocation="latency", imgsz=IMGSZ))
    with pytest.raises(ConfigError, match="must be above 1"):
        PruneConfig(target_speedup=0.8)
    with pytest.raises(ConfigError, match="exactly one of"):
        PruneConfig(target_speedup=2.0, target_macs=0.5)
    with pytest.raises(TargetUnreachableError, match=r"could not reach a predicted 40.00x speedup on fake-padded"):
        prune(model, PruneConfig(target_speedup=40.0, allocation="latency", imgsz=IMGSZ), timer=PaddedTimer(16))


def test_depthwise_convs_keep_valid_shapes():
    from yolo_prune import load_model

    model = load_model("yolo11n.yaml")  # its head has depthwise convs, which lose inputs with their outputs
    timer = PaddedTimer(16)  # refuses a shape whose channels its groups do not divide
    width_table(model, IMGSZ, timer)
    make_prunable(model)
    original = {s.groups for s in conv_shapes(model, IMGSZ).values() if s.groups > 1}
    assert original, "yolo11n's head should have depthwise convs"
    assert {s.groups for s in timer.seen if s.groups > 1} - original, "no narrower depthwise conv was timed"


def test_conv_shape_keeps_depthwise_groups():
    dw = ConvShape(32, 32, 3, 1, 1, 32, 1, 8, 8, True)
    assert dw.with_widths(16, 16).groups == 16
    assert ConvShape(32, 64, 1, 1, 0, 1, 1, 8, 8, False).with_widths(16, 48).groups == 1


def test_choose_widths_weighs_loss_per_millisecond_or_per_channel():
    def option(width: int, saved_ms: float, drop: float) -> dict:
        return {"width": width, "saved_ms": saved_ms, "drop": drop}

    table = {
        "total_ms": 10.0,
        "groups": [
            {"group": "slow", "channels": 32, "options": [option(32, 0.0, 0.0), option(16, 3.0, 5.0)]},
            {"group": "cheap", "channels": 32, "options": [option(32, 0.0, 0.0), option(16, 0.1, 1.0)]},
        ],
    }
    # one step's worth of budget: per millisecond (a scanned loss), the step that saves 3 ms for a loss of 5 ...
    assert choose_widths(table, 0.5, per="ms") == {"slow": 16, "cheap": 32}
    # ... per channel (L2 importance, no data), the step that loses the least per channel
    assert choose_widths(table, 0.01, per="channel") == {"slow": 32, "cheap": 16}


def test_without_data_the_heads_groups_are_cut_last():
    def group(name: str, drop: float, head: bool) -> dict:
        options = [{"width": 32, "saved_ms": 0.0, "drop": 0.0}, {"width": 16, "saved_ms": 1.0, "drop": drop}]
        return {"group": name, "channels": 32, "head": head, "options": options}

    table = {"total_ms": 10.0, "groups": [group("head", 0.1, True), group("neck", 5.0, False), group("p5", 9.0, False)]}
    # the head's channels look cheapest, yet every other group goes first ...
    assert choose_widths(table, 0.3, per="channel") == {"head": 32, "neck": 16, "p5": 32}
    assert choose_widths(table, 0.6, per="channel") == {"head": 32, "neck": 16, "p5": 16}
    assert choose_widths(table, 1.0, per="channel") == {"head": 16, "neck": 16, "p5": 16}  # ... then the head
    # a scanned loss (per ms) knows what the head is worth: the cheapest step first, wherever it is
    assert choose_widths(table, 0.3, per="ms") == {"head": 16, "neck": 32, "p5": 32}


def test_the_width_table_marks_the_heads_groups():
    table = width_table(random_v8n(), IMGSZ, PaddedTimer(16))
    heads = {g["group"] for g in table["groups"] if g["head"]}
    assert heads and all(name.startswith("model.22.") for name in heads)  # yolov8n's Detect is module 22
    assert len(heads) < len(table["groups"])


def test_with_data_the_latency_allocation_weighs_the_scanned_drop():
    from yolo_prune.pruning.allocation import create_allocation, with_scanned_drops

    widths = {
        "total_ms": 10.0,
        "groups": [
            {"group": "a", "channels": 64, "options": [
                {"width": 64, "ratio": 0.0, "saved_ms": 0.0, "drop": 0.0},
                {"width": 48, "ratio": 0.25, "saved_ms": 1.0, "drop": 9.0},
                {"width": 16, "ratio": 0.75, "saved_ms": 3.0, "drop": 40.0}]},
            {"group": "unscanned", "channels": 32, "options": [
                {"width": 32, "ratio": 0.0, "saved_ms": 0.0, "drop": 0.0},
                {"width": 16, "ratio": 0.5, "saved_ms": 1.0, "drop": 3.0}]},
        ],
    }  # fmt: skip
    table = {"ratios": [0.5, 1.0], "groups": [{"group": "a", "drop": {"0.5": 0.2, "1.0": -1.0}}]}
    scanned = with_scanned_drops(widths, table)
    drops = [o["drop"] for o in scanned["groups"][0]["options"]]
    assert drops == pytest.approx([0.0, 0.1, 0.1])  # 0.25: half of 0.2; 0.75: halfway from 0.2 to max(-1, 0)
    assert scanned["groups"][1] == widths["groups"][1]  # a group the scan does not name keeps its L2 drop
    assert widths["groups"][0]["options"][1]["drop"] == 9.0  # the input table is not modified
    with_scan, without = create_allocation("latency", table, widths), create_allocation("latency", None, widths)
    assert (with_scan.details(0.5)["loss"], with_scan.per) == ("sensitivity scan", "ms")
    assert (without.details(0.5)["loss"], without.per) == ("L2 importance", "channel")
