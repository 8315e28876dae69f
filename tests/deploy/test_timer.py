"""The layer timers: real timings of one-conv graphs (onnxruntime) and modules (PyTorch), cached on disk per machine
and runtime, and their bad inputs."""

from __future__ import annotations

import json
import platform

import pytest
import torch

from yolo_prune.deploy.runtimes import RUNTIMES, get_runtime
from yolo_prune.deploy.runtimes.onnx_runtime import OnnxruntimeTimer, _kernel_ms, conv_graph, padded_width
from yolo_prune.deploy.runtimes.torch_runtime import TorchTimer
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.cost import ConvShape


def get_timer(runtime: str, threads: int | None = None, batch: int = 1, batch_option: str = "--batch"):
    """The layer timer of a runtime checked for this machine, as a prune run asks for it."""
    return get_runtime(runtime, threads, batch, batch_option).layer_timer(threads, batch)


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
    with pytest.raises(ConfigError, match="unknown --runtime 'tensorrt'; choose one of: onnxruntime-cpu, mnn-cpu, "):
        get_runtime("tensorrt")
    with pytest.raises(ConfigError, match="unknown --runtime"):
        get_timer("tensorrt")
    with pytest.raises(ConfigError, match="--threads must be at least 1"):
        OnnxruntimeTimer(threads=0)
    with pytest.raises(ConfigError, match="--threads must be at least 1"):
        get_timer("torch-cpu", threads=0)


def test_torch_timer_measures_and_caches_apart_from_onnxruntime(tmp_path):
    small = ConvShape(16, 16, 3, 1, 1, 1, 1, 32, 32, True)
    big = ConvShape(64, 64, 3, 1, 1, 1, 1, 32, 32, True)
    depthwise = ConvShape(32, 32, 3, 2, 1, 32, 1, 16, 16, False)
    threads = torch.get_num_threads()
    timer = TorchTimer(RUNTIMES["torch-cpu"], threads=1, cache=tmp_path)
    ms_small, ms_big, ms_dw = timer([small, big, depthwise])
    assert 0 < ms_small < ms_big and ms_dw > 0
    assert torch.get_num_threads() == threads  # PyTorch's own setting is restored after timing
    assert timer.timed == 3 and timer.path.name.startswith("torch-cpu-")
    assert "fp32, threads 1" in json.loads(timer.path.read_text())["machine"]
    again = TorchTimer(RUNTIMES["torch-cpu"], threads=1, cache=tmp_path)
    assert again([big]) == [ms_big] and again.timed == 0
    assert OnnxruntimeTimer(threads=1, cache=tmp_path).path != timer.path
    assert isinstance(get_timer("torch-cpu", 1), TorchTimer) and isinstance(
        get_timer("onnxruntime-cpu"), OnnxruntimeTimer
    )


def test_torch_timer_times_the_batch_it_is_given_and_caches_it_apart(tmp_path):
    shape = ConvShape(32, 32, 3, 1, 1, 1, 1, 32, 32, True)
    one = TorchTimer(RUNTIMES["torch-cpu"], threads=1, cache=tmp_path)
    eight = TorchTimer(RUNTIMES["torch-cpu"], threads=1, batch=8, cache=tmp_path)
    assert eight.path != one.path and "batch 8" in eight.machine and "batch 1" in one.machine
    (ms_one,), (ms_eight,) = one([shape]), eight([shape])
    assert ms_eight > 2 * ms_one  # eight images cost more than one (on any CPU; 8x the work)
    with pytest.raises(ConfigError, match="^onnxruntime-cpu times the exported graph at batch 1; --latency-batch 8 "):
        get_timer("onnxruntime-cpu", batch=8, batch_option="--latency-batch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_the_cuda_runtime_without_a_gpu_is_one_clear_error():
    with pytest.raises(ConfigError, match="^--runtime torch-cuda-fp16 needs a CUDA GPU, and PyTorch sees none"):
        get_timer("torch-cuda-fp16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_timer_on_cuda_fp16(tmp_path):
    shapes = [ConvShape(16, 16, 3, 1, 1, 1, 1, 80, 80, True), ConvShape(256, 256, 3, 1, 1, 1, 1, 80, 80, True)]
    timer = TorchTimer(RUNTIMES["torch-cuda-fp16"], cache=tmp_path)
    small, big = timer(shapes)
    assert 0 < small < big
    assert "fp16" in json.loads(timer.path.read_text())["machine"]
    with pytest.raises(ConfigError, match="--threads sets CPU threads; --runtime torch-cuda-fp16 runs on the GPU"):
        get_runtime("torch-cuda-fp16", threads=2)


def test_the_one_conv_graphs_carry_the_oldest_ir_version_their_opset_allows():
    # onnx 1.23 writes IR 14 by default, which onnxruntime 1.30 refuses; opset 17 needs no more than IR 8
    assert conv_graph(ConvShape(16, 16, 3, 1, 1, 1, 1, 8, 8, True)).ir_version == 8


def test_onnxruntime_reports_its_channel_block():
    block = OnnxruntimeTimer(threads=1).block
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert block in (8, 16)  # AVX2 or AVX-512: NCHWc blocks of 8 or 16 floats
        small = ConvShape(64, block, 3, 1, 1, 1, 1, 16, 16, True)
        padded = ConvShape(64, block + 1, 3, 1, 1, 1, 1, 16, 16, True)
        assert padded_width(padded) == 2 * block and padded_width(small) == block
    else:
        assert block in (None, 4, 8, 16, 32, 64)
