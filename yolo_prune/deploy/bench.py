"""Latency of models side by side, measured so that their ratio holds on a noisy, shared machine.

Every model runs on one runtime (`deploy.runtimes`) in this one process, all with the same settings: by default an
onnxruntime CPU session per model; on a torch runtime (`torch-cpu`, `torch-cuda-fp16`) the checkpoint's fused
module, with the device synchronized after every call. Timing is interleaved: each round runs one inference of
every model (the starting model rotates from round to round), so a burst of load from elsewhere slows all models
alike instead of whichever happened to be timed then. The figures are the median and 90th percentile over the
rounds after warm-up, and the speedup is the ratio of medians to the first model's.

On onnxruntime, `.pt` checkpoints are first exported to a temporary ONNX file with `export.export_onnx`
(parity-checked), so a PyTorch checkpoint and its pruned or INT8 versions are compared in the same runtime.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from yolo_prune.checks import check_imgsz, check_model_file
from yolo_prune.deploy.runtimes import DEFAULT_RUNTIME, Runtime, get_runtime
from yolo_prune.errors import ConfigError, ExportError, ModelLoadError

LOGGER = logging.getLogger("yolo_prune")

_QUANTIZED_OPS = {"QuantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}


@dataclass
class BenchRow:
    """One model's latency and cost. `onnx_bytes` is the size of the ONNX file that was timed (what would be
    deployed); None on a torch runtime, which times the checkpoint's module. Milliseconds are per call."""

    model: str
    onnx_bytes: int | None
    source_bytes: int
    precision: str  # fp32, int8 (an INT8 ONNX file) or fp16 (a torch runtime in half precision)
    macs: int | None
    params: int | None
    cost_source: str  # how macs/params were counted
    median_ms: float
    p90_ms: float
    mean_ms: float
    speedup: float  # first model's median / this median
    runs: int

    def to_dict(self) -> dict:
        return dict(vars(self))


def bench(
    models: Sequence[str | Path],
    *,
    imgsz: int = 640,
    runs: int = 50,
    warmup: int = 10,
    threads: int | None = None,
    fast_dfl: bool = True,
    runtime: str = DEFAULT_RUNTIME,
    batch: int = 1,
) -> list[BenchRow]:
    """Time `models` interleaved on `runtime` (`runtimes.RUNTIMES`); one row per model, in order.

    On onnxruntime (the default) `models` are .pt or .onnx files, .pt exported first, at batch 1 (the exported
    graph's). On a torch runtime they are .pt checkpoints, run as fused PyTorch modules at any `batch`; a row's
    milliseconds are per call (the whole batch). `threads` sets the CPU's intra-op threads (default: the
    runtime's). `fast_dfl` is how .pt files are exported (see `export.export_format`).
    """
    paths = [Path(m) for m in models]
    spec = get_runtime(runtime, threads, batch)
    _check_args(paths, imgsz, runs, warmup, spec)
    if spec.uses_torch:
        return _bench_torch(paths, imgsz, runs, warmup, threads, spec, batch)
    with tempfile.TemporaryDirectory(prefix="yolo-prune-bench-") as tmp:
        onnx_files, costs = [], []
        for i, path in enumerate(paths):
            if path.suffix.lower() == ".pt":
                onnx_files.append(_export(path, Path(tmp) / f"{i}-{path.stem}.onnx", imgsz, fast_dfl))
                costs.append(_torch_cost(path, imgsz))
            else:
                onnx_files.append(path)
                costs.append(onnx_cost(path, imgsz))
        sessions = [_session(f, imgsz, threads) for f in onnx_files]
        x = np.random.default_rng(0).random((1, 3, *_hw(sessions[0])), dtype=np.float32)
        calls = [partial(s.run, None, {s.get_inputs()[0].name: x}) for s in sessions]
        LOGGER.info(f"timing {len(paths)} model(s): {warmup} warm-up + {runs} interleaved rounds at imgsz {imgsz}")
        times = _interleaved(calls, runs, warmup)
        files = [(f.stat().st_size, _precision(f)) for f in onnx_files]
    return _rows(paths, files, costs, times)


def _bench_torch(
    paths: list[Path], imgsz: int, runs: int, warmup: int, threads: int | None, spec: Runtime, batch: int
) -> list[BenchRow]:
    """Time checkpoints as fused PyTorch modules on a torch runtime, synchronizing the device after every call."""
    from yolo_prune.pruning.cost import measure
    from yolo_prune.pruning.load import load_model

    modules, costs = [], []
    for path in paths:
        model = load_model(path)
        cost = measure(model, imgsz)
        costs.append((cost.macs, cost.params, "pytorch"))
        modules.append(spec.prepare(model.fuse(verbose=False)))  # BatchNorm folded, as Ultralytics predicts
    x = spec.tensor((batch, 3, imgsz, imgsz))
    LOGGER.info(
        f"timing {len(paths)} model(s) on {spec.name}: {warmup} warm-up + {runs} interleaved rounds at imgsz {imgsz}, "
        f"batch {batch}"
    )
    with spec.timing(threads):
        times = _interleaved([partial(m, x) for m in modules], runs, warmup, spec.synchronize)
    precision = "fp16" if spec.half else "fp32"
    return _rows(paths, [(None, precision)] * len(paths), costs, times)


def _rows(
    paths: list[Path], files: list[tuple[int | None, str]], costs: list[tuple], times: list[list[float]]
) -> list[BenchRow]:
    """One `BenchRow` per model: `files` holds each timed file's size (None for a PyTorch module) and precision."""
    base = float(np.median(times[0]))
    rows = []
    for path, (size, precision), (macs, params, how), t in zip(paths, files, costs, times):
        median = float(np.median(t))
        rows.append(
            BenchRow(
                model=str(path),
                onnx_bytes=size,
                source_bytes=path.stat().st_size,
                precision=precision,
                macs=macs,
                params=params,
                cost_source=how,
                median_ms=median,
                p90_ms=float(np.percentile(t, 90)),
                mean_ms=float(np.mean(t)),
                speedup=base / median,
                runs=len(t),
            )
        )
    return rows


def _check_args(paths: list[Path], imgsz: int, runs: int, warmup: int, spec: Runtime) -> None:
    if not paths:
        raise ConfigError("give at least one model to bench")
    for path in paths:
        check_model_file(path, (".pt",) if spec.uses_torch else (".pt", ".onnx"))
    check_imgsz(imgsz)
    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}")
    if warmup < 0:
        raise ConfigError(f"--warmup must be 0 or more, got {warmup}")


def _export(weights: Path, out: Path, imgsz: int, fast_dfl: bool = True) -> Path:
    from yolo_prune.deploy.export import export_onnx

    LOGGER.info(f"exporting {weights} to ONNX for timing")
    try:
        return export_onnx(weights, out=out, imgsz=imgsz, fast_dfl=fast_dfl).file
    except ExportError as e:  # the temporary file it names goes with the temporary folder
        message = str(e).replace(f"; the file is kept at {out}", "; `yolo-prune export` keeps the file to inspect")
        raise ExportError(f"cannot bench {weights}: {message}") from e


def _torch_cost(weights: Path, imgsz: int) -> tuple[int, int, str]:
    from yolo_prune.pruning.cost import measure
    from yolo_prune.pruning.load import load_model

    cost = measure(load_model(weights), imgsz)
    return cost.macs, cost.params, "pytorch"


def session_options(threads: int | None):
    """onnxruntime CPU session options for timing: `threads` intra-op threads (None: onnxruntime's default), threads
    that spin within a run and stop after it. The latency model (`deploy.latency`) times its layers with the same
    options."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # onnxruntime's threads spin while they wait for work (its default, as deployed): without it every parallel op
    # waits for sleeping threads to wake. After a run they stop, or an idle session's threads would steal the cores
    # from the next model's run in the same round (measured in docs/benchmarks.md, section 10).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return options


def _session(path: Path, imgsz: int, threads: int | None):
    import onnxruntime as ort

    options = session_options(threads)
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types: a corrupt or unsupported file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"cannot load {path} in onnxruntime: {first}") from e
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or any(isinstance(d, int) and d != want for d, want in zip(shape[2:], (imgsz, imgsz))):
        raise ConfigError(f"{path} takes input {shape}, not {imgsz}x{imgsz}; export it at --imgsz {imgsz}")
    return session


def _interleaved(
    calls: list[Callable[[], object]], runs: int, warmup: int, synchronize: Callable[[], None] = lambda: None
) -> list[list[float]]:
    """Milliseconds per call, per model: one call of each model per round, rotating who goes first. `synchronize`
    waits for the device after each call (a GPU runs asynchronously)."""
    times: list[list[float]] = [[] for _ in calls]
    n = len(calls)
    for r in range(warmup + runs):
        for k in range(n):
            i = (r + k) % n
            start = time.perf_counter_ns()
            calls[i]()
            synchronize()
            if r >= warmup:
                times[i].append((time.perf_counter_ns() - start) / 1e6)
    return times


def _hw(session) -> tuple[int, int]:
    shape = session.get_inputs()[0].shape
    return shape[2] if isinstance(shape[2], int) else 640, shape[3] if isinstance(shape[3], int) else 640


def _precision(path: Path) -> str:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return "int8" if any(n.op_type in _QUANTIZED_OPS for n in graph.node) else "fp32"


def onnx_cost(path: str | Path, imgsz: int) -> tuple[int | None, int | None, str]:
    """MACs and parameters of the Conv/ConvInteger/QLinearConv/MatMul/Gemm nodes of an ONNX graph at `imgsz`.

    Shapes come from ONNX shape inference with the input fixed to (1, 3, imgsz, imgsz); weights behind a
    DequantizeLinear (QDQ INT8 files) are followed to their initializers. BatchNorm is folded into the convs in an
    exported graph, and the DFL's fixed conv is counted (in a `--stock-dfl` export; the default export computes it as
    a weighted sum, see `head.fast_dfl`), so the figures differ slightly from the PyTorch count of the same model.
    Returns (None, None, reason) when some shape cannot be inferred.
    """
    import onnx

    model = onnx.load(str(path))
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 3, imgsz, imgsz)):
        if not dim.dim_value:
            dim.dim_value = value  # replaces a symbolic (dynamic) dimension
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as e:  # an invalid graph: no count rather than no benchmark
        return None, None, f"onnx shape inference failed ({type(e).__name__})"
    graph = inferred.graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*graph.value_info, *graph.input, *graph.output)
    }
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    # Weights are initializers, or initializers behind a DequantizeLinear; attention's MatMuls multiply activations.
    constants = {t.name for t in graph.initializer}
    constants |= {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in constants}
    macs = params = 0
    for node in graph.node:
        spec = _WEIGHTED_OPS.get(node.op_type)
        if spec is None:
            continue
        x_in, w_in, b_in = spec
        out, w = shapes.get(node.output[0]), shapes.get(node.input[w_in])
        if not out or not w or 0 in out or 0 in w:
            return None, None, f"shape of {node.name or node.op_type} unknown after shape inference"
        if node.op_type in ("MatMul", "MatMulInteger", "Gemm"):
            a = shapes.get(node.input[x_in]) or []
            transposed = any(at.name == "transA" and at.i for at in node.attribute)
            if not a or 0 in a:
                return None, None, f"shape of {node.name or node.op_type} unknown after shape inference"
            k = a[-2] if transposed else a[-1]
        else:
            k = math.prod(w[1:])  # (C_out, C_in / groups, kh, kw): MACs per output element
        macs += math.prod(out) * k
        if node.input[w_in] not in constants:
            continue
        params += math.prod(w)
        if b_in is not None and len(node.input) > b_in and node.input[b_in]:
            params += math.prod(shapes.get(node.input[b_in]) or [0])
    return macs, params, "onnx graph"


# op type -> (data input index, weight input index, bias input index or None)
_WEIGHTED_OPS: dict[str, tuple[int, int, int | None]] = {
    "Conv": (0, 1, 2),
    "ConvInteger": (0, 1, None),
    "QLinearConv": (0, 3, 8),
    "MatMul": (0, 1, None),
    "MatMulInteger": (0, 1, None),
    "Gemm": (0, 1, 2),
}
