"""The onnxruntime layer timer: real timings of one-conv graphs, cached on disk per machine, and its bad inputs."""

from __future__ import annotations

import json

import pytest

from yolo_prune.deploy.latency import OnnxruntimeTimer, _kernel_ms, check_runtime, get_timer
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.latency import ConvShape


def test_timer_measures_and_caches(tmp_path):
    small = ConvShape(16, 16, 3, 1, 1, 1, 1, 32, 32, True)
    big = ConvShape(64, 64, 3, 1, 1, 1, 1, 32, 32, True)
    timer = OnnxruntimeTimer(threads=1, cache=tmp_path)
    ms_small, ms_big, again = timer([small, big, small])
    assert 0 < ms_small < ms_big  # 16x the MACs costs more
    assert again == ms_small
    assert timer.timed == 2
    saved = json.loads(timer.path.read_text())
    assert set(saved["ms"]) == {small.key, big.key}
    assert "threads 1" in saved["machine"]
    second = OnnxruntimeTimer(threads=1, cache=tmp_path)
    assert second([big]) == [ms_big]
    assert second.timed == 0  # read from the cache, not timed again
    assert OnnxruntimeTimer(threads=2, cache=tmp_path).path != timer.path  # another thread count, another table


def test_timer_times_depthwise_and_bare_convs(tmp_path):
    timer = OnnxruntimeTimer(threads=1, cache=tmp_path)
    depthwise = ConvShape(32, 32, 3, 2, 1, 32, 1, 16, 16, True)
    bare = ConvShape(16, 4, 1, 1, 0, 1, 1, 16, 16, False)
    assert all(ms > 0 for ms in timer([depthwise, bare]))


def test_kernel_time_leaves_out_reorders():
    def node(op: str, dur: int) -> dict:
        return {"cat": "Node", "name": f"{op}_kernel_time", "dur": dur, "args": {"op_name": op}}

    run = {"cat": "Session", "name": "model_run", "dur": 0}
    events = [node("ReorderInput", 500), node("Conv", 100), node("QuickGelu", 20), run]
    events += [node("ReorderInput", 500), node("Conv", 120), node("QuickGelu", 20), run]
    assert _kernel_ms(events, 2) == pytest.approx(0.13)  # median of 0.12 and 0.14 ms


def test_unknown_runtime_and_bad_threads():
    with pytest.raises(ConfigError, match="unknown runtime 'tensorrt'; choose one of: onnxruntime-cpu"):
        check_runtime("tensorrt")
    with pytest.raises(ConfigError, match="unknown runtime"):
        get_timer("tensorrt")
    with pytest.raises(ConfigError, match="--threads must be at least 1"):
        OnnxruntimeTimer(threads=0)
