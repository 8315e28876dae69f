"""OpenVINO on the CPU (`openvino-cpu`): Ultralytics' OpenVINO export (an IR folder), run in float32.

The layer timer compiles the same one-conv ONNX graph the onnxruntime timer builds (OpenVINO reads ONNX directly)
and takes the kernels' time from OpenVINO's own per-node profile, leaving out the layout reorders that only a lone
conv needs (OpenVINO runs convs channels-last on AVX-512; in the whole network neighbouring convs share that
layout). OpenVINO reports no channel block in its graph, so the latency model learns it from the timings.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from yolo_prune.checks import check_threads
from yolo_prune.deploy.runtimes.exported import ExportedRuntime
from yolo_prune.deploy.timer_cache import CachedTimer, cpu_machine

if TYPE_CHECKING:
    from yolo_prune.pruning.cost import ConvShape

_NOT_KERNELS = {"Reorder", "Parameter", "Result", "Input", "Output"}
# OpenVINO's first runs of a compiled conv are slow and its figures vary more than onnxruntime's: after 2 warm-up
# runs a 40->64 3x3 conv at 80x80 timed anywhere from 1.3 to 2.4 ms; after 10, and over 20 runs, within 5%.
WARMUP, RUNS = 10, 20


class OpenvinoCPU(ExportedRuntime):
    name, format, label, package = "openvino-cpu", "openvino", "OpenVINO", "openvino"

    def layer_timer(self, threads: int | None = None, batch: int = 1, cache: Path | None = None) -> OpenvinoTimer:
        self.check(threads, batch, "--batch")
        return OpenvinoTimer(threads, cache)


RUNTIMES = (OpenvinoCPU(),)


class OpenvinoTimer(CachedTimer):
    """Times conv shapes on OpenVINO's CPU plugin in float32 with `threads` inference threads."""

    runtime = "openvino-cpu"

    def __init__(self, threads: int | None = None, cache: Path | None = None):
        import openvino as ov

        check_threads(threads)
        self.threads, self.core = threads, ov.Core()
        self.machine = (
            f"{cpu_machine()}, openvino {ov.__version__}, threads {threads or 'default'}, {WARMUP}+{RUNS} runs"
        )
        self._open(cache)

    def _time(self, s: ConvShape) -> float:
        from yolo_prune.deploy.runtimes.onnx_runtime import conv_graph

        config = {"INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        with tempfile.TemporaryDirectory(prefix="yolo-prune-latency-") as tmp:
            path = Path(tmp) / "conv.onnx"
            path.write_bytes(conv_graph(s).SerializeToString())
            request = self.core.compile_model(self.core.read_model(str(path)), "CPU", config).create_infer_request()
        x = np.random.default_rng(0).random((1, s.cin, s.h, s.w), dtype=np.float32)
        for _ in range(WARMUP):
            request.infer({0: x})
        kernels: list[float] = []
        wall: list[float] = []
        while len(wall) < RUNS:
            t0 = time.perf_counter_ns()
            request.infer({0: x})
            wall.append((time.perf_counter_ns() - t0) / 1e6)
            kernels.append(
                sum(
                    p.real_time.total_seconds() * 1e3
                    for p in request.profiling_info
                    if p.node_type not in _NOT_KERNELS and p.status.name == "EXECUTED"
                )
            )
        return float(np.median(kernels)) or float(np.median(wall))
