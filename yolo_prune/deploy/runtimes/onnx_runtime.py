"""onnxruntime on the CPU (`onnxruntime-cpu`, the default): exported ONNX graphs, timed as deployed.

A checkpoint is exported with `export.export_onnx` (parity-checked) before it is timed, so a PyTorch checkpoint and
its pruned or INT8 versions are compared in the same runtime. The layer timer builds a one-conv ONNX graph (Conv,
then Sigmoid and Mul for SiLU, which onnxruntime fuses as the exported model's convs are fused) for each shape and
times it with the same session options as `bench`. The figure is the kernels' own time from onnxruntime's profiler,
without the layout reorders (NCHW to NCHWc and back) that only a lone conv needs: in the whole network a
block-aligned conv reads and writes the blocked layout directly (docs/benchmarks.md section 10).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import tempfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from yolo_prune.checks import check_threads
from yolo_prune.deploy.onnx_cost import onnx_cost
from yolo_prune.deploy.ort_session import open_session, session_options
from yolo_prune.deploy.runtimes.base import DEFAULT_RUNTIME, Loaded, Runtime, checkpoint_cost, export_for_timing
from yolo_prune.deploy.timer_cache import CachedTimer, cpu_machine, wall_ms
from yolo_prune.errors import ConfigError

if TYPE_CHECKING:  # listing the runtimes must not load torch
    from yolo_prune.pruning.cost import ConvShape

LOGGER = logging.getLogger("yolo_prune")

_QUANTIZED_OPS = {"QuantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}
# The probe conv: 64 inputs (a whole number of any block) and an odd output width, which every block pads apart.
PROBE_CHANNELS = 17


class OnnxruntimeCPU(Runtime):
    name = DEFAULT_RUNTIME
    suffixes = (".pt", ".onnx")
    timed = "exported ONNX"

    def describe(self, threads: int | None) -> str:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__} CPU, {threads or 'default'} intra-op threads"

    def load(
        self, paths: Sequence[Path], imgsz: int, threads: int | None, batch: int, tmp: Path, fast_dfl: bool = True
    ) -> list[Loaded]:
        """Sessions of the ONNX files, checkpoints exported first (`fast_dfl`: how, see `export.export_format`)."""
        files, costs = [], []
        for i, path in enumerate(paths):
            if path.suffix.lower() == ".pt":
                files.append(export_for_timing(path, "onnx", tmp / f"{i}-{path.stem}.onnx", imgsz, fast_dfl))
                costs.append(checkpoint_cost(path, imgsz))
            else:
                files.append(path)
                costs.append(onnx_cost(path, imgsz))
        # Two sessions per model, the second set opened in reverse order, each taking every other call: in one
        # process a session opened earlier runs slower (the first model, the original in every bench, 6-8%
        # slower than the same file opened last), and the mirrored pair gives every model the same mean position
        # (docs/benchmarks.md section 27).
        first = [_session(f, imgsz, threads) for f in files]
        second = [_session(f, imgsz, threads) for f in reversed(files)][::-1]
        x = np.random.default_rng(0).random((1, 3, *_hw(first[0])), dtype=np.float32)
        return [
            Loaded(_alternating(pair, x), f.stat().st_size, _precision(f), cost)
            for pair, f, cost in zip(zip(first, second), files, costs)
        ]

    def deployable(self, weights: Path, imgsz: int) -> Path:
        from yolo_prune.deploy.export import export_onnx

        return Path(export_onnx(weights, imgsz=imgsz).file)

    def layer_timer(self, threads: int | None = None, batch: int = 1, cache: Path | None = None) -> OnnxruntimeTimer:
        self.check(threads, batch, "--batch")
        return OnnxruntimeTimer(threads, cache)


RUNTIMES = (OnnxruntimeCPU(),)


class OnnxruntimeTimer(CachedTimer):
    """Times conv shapes on onnxruntime's CPU provider with `threads` intra-op threads (None: its default)."""

    runtime = DEFAULT_RUNTIME

    def __init__(self, threads: int | None = None, cache: Path | None = None):
        import onnxruntime as ort

        check_threads(threads)
        self.threads = threads
        self.machine = f"{cpu_machine()}, onnxruntime {ort.__version__}, threads {threads or 'default'}"
        self._open(cache)

    @functools.cached_property
    def block(self) -> int | None:
        """The channel block of onnxruntime's NCHWc conv kernels on this CPU, as its graph optimizer reports it.

        onnxruntime rewrites a conv for its blocked layout with the weights padded to whole blocks: a
        `PROBE_CHANNELS`-wide conv's padded output width names the block (20: 4, 24: 8, 32: 16). Read from the
        optimized graph it is exact, where learning it from timings is not (docs/benchmarks.md section 10). None
        where no NCHWc rewrite happens (e.g. CPUs without AVX2); the latency model then learns the block from
        timings.
        """
        from yolo_prune.pruning.cost import ConvShape

        padded = padded_width(ConvShape(64, PROBE_CHANNELS, 3, 1, 1, 1, 1, 16, 16, True))
        if padded is None:
            return None
        block = next((b for b in (4, 8, 16, 32, 64) if -(-PROBE_CHANNELS // b) * b == padded), None)
        LOGGER.info(f"  onnxruntime pads conv channels to blocks of {block} on this CPU")
        return block

    def _time(self, s: ConvShape) -> float:
        with tempfile.TemporaryDirectory(prefix="yolo-prune-latency-") as tmp:
            options = session_options(self.threads)
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "profile")
            session = open_session(conv_graph(s).SerializeToString(), options)
            feed = {"x": np.random.default_rng(0).random((1, s.cin, s.h, s.w), dtype=np.float32)}
            for _ in range(2):
                session.run(None, feed)
            wall = wall_ms(lambda: session.run(None, feed))
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
        open_session(conv_graph(s).SerializeToString(), options)
        graph = onnx.load(options.optimized_model_filepath).graph
    if not any(n.domain == "com.microsoft.nchwc" and n.op_type == "Conv" for n in graph.node):
        return None
    return max((t.dims[0] for t in graph.initializer if len(t.dims) == 4), default=s.cout)


def conv_graph(s: ConvShape):
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


def _session(path: Path, imgsz: int, threads: int | None):
    session = open_session(path, session_options(threads))
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or any(isinstance(d, int) and d != want for d, want in zip(shape[2:], (imgsz, imgsz))):
        raise ConfigError(f"{path} takes input {shape}, not {imgsz}x{imgsz}; export it at --imgsz {imgsz}")
    return session


def _alternating(sessions, x: np.ndarray):
    """One inference on `x` per call, the sessions taking turns."""
    runs = itertools.cycle([partial(s.run, None, {s.get_inputs()[0].name: x}) for s in sessions])
    return lambda: next(runs)()


def _hw(session) -> tuple[int, int]:
    shape = session.get_inputs()[0].shape
    return shape[2] if isinstance(shape[2], int) else 640, shape[3] if isinstance(shape[3], int) else 640


def _precision(path: Path) -> str:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return "int8" if any(n.op_type in _QUANTIZED_OPS for n in graph.node) else "fp32"
