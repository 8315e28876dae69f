"""Timing on a runtime for the latency model: single convs, measured once per machine and cached on disk.

`pruning.latency` models a network's latency as the sum of its convs' and asks a `LayerTimer` what a conv shape
costs. The timers live here because they need the runtime. `OnnxruntimeTimer` builds a one-conv ONNX graph
(Conv, then Sigmoid and Mul for SiLU, which onnxruntime fuses as the exported model's convs are fused) for each
shape and times it with the same session options as `bench`. The figure is the kernels' own time from
onnxruntime's profiler, without the layout reorders (NCHW to NCHWc and back) that only a lone conv needs: in the
whole network a block-aligned conv reads and writes the blocked layout directly, and timing the reorders made
aligned widths look slower than unaligned ones at 20x20. `TorchTimer` times the same shapes as PyTorch modules
on a torch runtime (`deploy.runtimes`: the CPU, or a CUDA GPU in FP16). Every figure is cached in
`cache_dir()/latency/<runtime>-<machine>.json`, keyed by the shape (channels, kernel, stride and input size, so
one file serves every imgsz): the first prune of a model at a new size times its shapes (seconds), later ones read
them.

The latency model ranks and predicts; the end-to-end latency of an exported candidate, timed interleaved with the
original by `bench`, is what confirms a latency target (`app.prune_run`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from yolo_prune.atomic import write_json
from yolo_prune.cache import cache_dir
from yolo_prune.checks import check_threads
from yolo_prune.deploy.runtimes import DEFAULT_RUNTIME, get_runtime
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.cost import ConvShape

LOGGER = logging.getLogger("yolo_prune")

# Per shape: at least 5 timed runs, more until 10 ms were spent. Timing a shape again varied as much with 7 runs and
# 25 ms (a median of 6% on 1 thread, 15-20% on 2, on the AVX2 EPYC of docs/benchmarks.md section 10) at 1.5x the cost.
MIN_RUNS, MAX_RUNS, MIN_MS = 5, 15, 10.0
# Part of the cache key: a change to how shapes are timed must not read figures timed the old way.
TIMING_VERSION = 2  # 2: kernel time from the profiler, reorders left out (1 timed the whole session run)
# The probe conv: 64 inputs (a whole number of any block) and an odd output width, which every block pads apart.
PROBE_CHANNELS = 17
SAVE_EVERY = 100  # shapes timed between cache writes, so an interrupted prune keeps most of what it measured


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class _CachedTimer:
    """What every timer shares: a table of milliseconds per conv shape, read from and merged into its cache file.

    A subclass sets `runtime` and `machine` (the runtime, its settings and this machine's hardware: the cache key)
    before calling `_open`, and implements `_time(shape)`.
    """

    runtime: str
    machine: str
    block: int | None = None  # the runtime's channel block, where it reports one (see `OnnxruntimeTimer.block`)

    def _open(self, cache: Path | None) -> None:
        digest = hashlib.sha256(f"{self.machine}, timing v{TIMING_VERSION}".encode()).hexdigest()[:12]
        self.path = (cache or cache_dir()) / "latency" / f"{self.runtime}-{digest}.json"
        self._ms: dict[str, float] = self._read()
        self.timed = 0  # shapes this timer measured (not read from the cache)

    def _read(self) -> dict[str, float]:
        if not self.path.exists():
            return {}
        try:
            return dict(json.loads(self.path.read_text())["ms"])
        except (OSError, ValueError, KeyError, TypeError):
            LOGGER.warning(f"warning: ignoring an unreadable latency cache {self.path}")
            return {}

    def _save(self) -> None:
        """Merge what this timer measured into the cache file (another prune may have added to it meanwhile)."""
        try:
            write_json(
                self.path, {"runtime": self.runtime, "machine": self.machine, "ms": {**self._read(), **self._ms}}
            )
        except OSError as e:  # a read-only cache costs the next prune its timings, not this prune its result
            LOGGER.warning(f"warning: cannot write the latency cache {self.path}: {e}")

    def __call__(self, shapes: Sequence[ConvShape]) -> list[float]:
        missing = {s.key: s for s in shapes if s.key not in self._ms}
        if missing:
            start = time.perf_counter()
            for n, (key, shape) in enumerate(missing.items(), 1):
                self._ms[key] = self._time(shape)
                if n % SAVE_EVERY == 0:
                    self._save()
            self.timed += len(missing)
            LOGGER.info(f"  timed {len(missing)} conv shape(s) in {time.perf_counter() - start:.1f} s")
            self._save()
        return [self._ms[s.key] for s in shapes]

    def _time(self, s: ConvShape) -> float:
        raise NotImplementedError


class OnnxruntimeTimer(_CachedTimer):
    """Times conv shapes on onnxruntime's CPU provider with `threads` intra-op threads (None: its default)."""

    runtime = DEFAULT_RUNTIME

    def __init__(self, threads: int | None = None, cache: Path | None = None):
        import onnxruntime as ort

        check_threads(threads)
        self.threads = threads
        self.machine = (
            f"{_cpu_name()}, {os.cpu_count()} cpus, onnxruntime {ort.__version__}, threads {threads or 'default'}"
        )
        self._open(cache)

    @functools.cached_property
    def block(self) -> int | None:
        """The channel block of onnxruntime's NCHWc conv kernels on this CPU, as its graph optimizer reports it.

        onnxruntime rewrites a conv for its blocked layout with the weights padded to whole blocks: a
        `PROBE_CHANNELS`-wide conv's padded output width names the block (20: 4, 24: 8, 32: 16). Read from the
        optimized graph, it is exact, where learning it from timings is not: two cold timings of yolov8n's convs on
        this idle CPU agreed with blocks of 16 in 55% and 73% of cases, on either side of `learn_block`'s 60%, and
        the prune that fell back to free widths ran 1.32x instead of 1.75x at 640 on 2 threads (docs/benchmarks.md
        section 10). None where no NCHWc rewrite happens (e.g. CPUs without AVX2); the latency model then learns
        the block from timings.
        """
        padded = padded_width(ConvShape(64, PROBE_CHANNELS, 3, 1, 1, 1, 1, 16, 16, True))
        if padded is None:
            return None
        block = next((b for b in (4, 8, 16, 32, 64) if -(-PROBE_CHANNELS // b) * b == padded), None)
        LOGGER.info(f"  onnxruntime pads conv channels to blocks of {block} on this CPU")
        return block

    def _time(self, s: ConvShape) -> float:
        import onnxruntime as ort

        from yolo_prune.deploy.bench import session_options

        with tempfile.TemporaryDirectory(prefix="yolo-prune-latency-") as tmp:
            options = session_options(self.threads)
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "profile")
            session = ort.InferenceSession(
                _conv_graph(s).SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            feed = {"x": np.random.default_rng(0).random((1, s.cin, s.h, s.w), dtype=np.float32)}
            for _ in range(2):
                session.run(None, feed)
            wall: list[float] = []
            while len(wall) < MIN_RUNS or (len(wall) < MAX_RUNS and sum(wall) < MIN_MS):
                t0 = time.perf_counter_ns()
                session.run(None, feed)
                wall.append((time.perf_counter_ns() - t0) / 1e6)
            events = json.loads(Path(session.end_profiling()).read_text())
        # the kernels' time; the whole run's if the profile holds none (a runtime that names its events otherwise)
        return _kernel_ms(events, len(wall)) or float(np.median(wall))


def _kernel_ms(events: list[dict], runs: int) -> float:
    """Median per-run kernel time (ms) of the last `runs` runs in an onnxruntime profile, reorders left out."""
    per_run: list[float] = []
    current = 0.0
    for e in events:  # a run's kernel events come first, then its `model_run` event
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            if not e.get("args", {}).get("op_name", "").startswith("Reorder"):
                current += e["dur"] / 1000.0
        elif e.get("cat") == "Session" and e.get("name") == "model_run":
            per_run.append(current)
            current = 0.0
    return float(np.median(per_run[-runs:])) if per_run else 0.0


def padded_width(s: ConvShape) -> int | None:
    """The output width onnxruntime's graph optimizer pads the conv `s` to for its blocked (NCHWc) kernels, read
    from the optimized graph's weights; None when it leaves the conv in the plain layout."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="yolo-prune-block-") as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        options.log_severity_level = 3  # its warning that the file is hardware-specific is the point here
        ort.InferenceSession(_conv_graph(s).SerializeToString(), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    if not any(n.domain == "com.microsoft.nchwc" and n.op_type == "Conv" for n in graph.node):
        return None
    return max((t.dims[0] for t in graph.initializer if len(t.dims) == 4), default=s.cout)


def _conv_graph(s: ConvShape):
    """A one-conv ONNX model of shape `s` with random weights (plus SiLU as Sigmoid and Mul when `s.act`)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.random((s.cout, s.cin // s.groups, s.k, s.k), dtype=np.float32), "W")
    bias = numpy_helper.from_array(rng.random(s.cout, dtype=np.float32), "B")
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "W", "B"],
            ["y"],
            kernel_shape=[s.k, s.k],
            strides=[s.stride, s.stride],
            pads=[s.pad] * 4,
            group=s.groups,
            dilations=[s.dilation, s.dilation],
        )
    ]
    out = "y"
    if s.act:
        nodes += [helper.make_node("Sigmoid", ["y"], ["g"]), helper.make_node("Mul", ["y", "g"], ["z"])]
        out = "z"
    ho, wo = s.out_hw
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, s.cin, s.h, s.w])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, s.cout, ho, wo])],
        [weight, bias],
    )
    # The oldest IR version opset 17 allows, not the installed onnx's newest: onnx 1.23 writes IR 14, which
    # onnxruntime 1.30 refuses ("max supported IR version: 13"; seen on the lent GPU machine, 2026-12-04).
    opsets = [helper.make_opsetid("", 17)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))


class TorchTimer(_CachedTimer):
    """Times conv shapes as PyTorch modules (Conv2d, then SiLU when the shape has it) on a torch runtime
    (`runtimes.RUNTIMES`: the CPU with `threads` threads, or a CUDA GPU in FP16 with cuDNN's autotuner on), on
    inputs of `batch` images: a GPU at batch 1 spends most of a small conv's time launching it, so a prune for a GPU
    server times the batch it will serve.

    Each shape is timed with the device synchronized around every run, so the figure is the kernels' time plus
    PyTorch's per-call overhead, which a deployed PyTorch model pays as well.
    """

    def __init__(self, runtime: str, threads: int | None = None, cache: Path | None = None, batch: int = 1):
        import torch

        self.spec = get_runtime(runtime, threads, batch)
        if not self.spec.uses_torch:
            raise ConfigError(f"TorchTimer times torch runtimes, not '{runtime}'")
        self.runtime, self.threads, self.batch = runtime, threads, batch
        hardware = (
            torch.cuda.get_device_name() if self.spec.device == "cuda" else f"{_cpu_name()}, {os.cpu_count()} cpus"
        )
        precision = "fp16" if self.spec.half else "fp32"
        settings = f"{precision}, threads {threads or 'default'}, batch {batch}"
        self.machine = f"{hardware}, torch {torch.__version__}, {settings}"
        self._open(cache)

    def _time(self, s: ConvShape) -> float:
        from torch import nn

        conv = nn.Conv2d(s.cin, s.cout, s.k, s.stride, s.pad, s.dilation, s.groups, bias=True)
        module = self.spec.prepare(nn.Sequential(conv, nn.SiLU()) if s.act else conv)
        x = self.spec.tensor((self.batch, s.cin, s.h, s.w))
        wall: list[float] = []
        with self.spec.timing(self.threads):
            for _ in range(3):  # warm-up; on a GPU, cuDNN's autotuner picks the kernel here
                module(x)
            self.spec.synchronize()
            while len(wall) < MIN_RUNS or (len(wall) < MAX_RUNS and sum(wall) < MIN_MS):
                t0 = time.perf_counter_ns()
                module(x)
                self.spec.synchronize()
                wall.append((time.perf_counter_ns() - t0) / 1e6)
        return float(np.median(wall))


def get_timer(
    runtime: str, threads: int | None = None, batch: int = 1, batch_option: str = "--batch"
) -> OnnxruntimeTimer | TorchTimer:
    """The layer timer for `runtime` (a name in `runtimes.RUNTIMES`) at `batch` images per call (set by
    `batch_option`, for the message), checked to be usable on this machine."""
    if get_runtime(runtime, threads, batch, batch_option).uses_torch:
        return TorchTimer(runtime, threads, batch=batch)
    return OnnxruntimeTimer(threads=threads)
