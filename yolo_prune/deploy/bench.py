"""Latency of models side by side, measured so that their ratio holds on a noisy, shared machine.

Every model runs on one runtime (`deploy.runtimes`) in this one process, all with the same settings: by default an
onnxruntime CPU session per model (checkpoints exported first, parity-checked); on a torch runtime the checkpoint's
fused module. Timing is interleaved: each round runs one inference of every model (the starting model rotates from
round to round), so a burst of load from elsewhere slows all models alike instead of whichever happened to be timed
then. The figures are the median and 90th percentile over the rounds after warm-up, and the speedup is the ratio of
medians to the first model's.

`AgainstOriginal` times pruned modules against the module they were pruned from, the end-to-end check of a prune
to a speed target (`pruning.speed.ModelTimer`).
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from yolo_prune.checks import check_imgsz
from yolo_prune.deploy.runtimes import DEFAULT_RUNTIME, Loaded, Runtime, get_runtime
from yolo_prune.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

LOGGER = logging.getLogger("yolo_prune")


@dataclass
class BenchRow:
    """One model's latency and cost. `file_bytes` is the size of the file that was timed, in the runtime's format
    (what would be deployed); None on a torch runtime, which times the checkpoint's module. Milliseconds are per
    call."""

    model: str
    file_bytes: int | None
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
    with tempfile.TemporaryDirectory(prefix="yolo-prune-bench-") as tmp:
        loaded = spec.load(paths, imgsz, threads, batch, Path(tmp), fast_dfl=fast_dfl)
        LOGGER.info(
            f"timing {len(paths)} model(s) on {spec.name}: {warmup} warm-up + {runs} interleaved rounds at imgsz "
            f"{imgsz}" + (f", batch {batch}" if batch > 1 else "")
        )
        with spec.timing(threads):
            times = _interleaved([m.run for m in loaded], runs, warmup, spec.synchronize)
    return _rows(paths, loaded, times)


class AgainstOriginal:
    """Times modules interleaved with `original` on one runtime (`bench`); the rows are the original's, then the
    modules'. Each module is saved (and made deployable, e.g. exported) once under `tmp`, however often it is timed."""

    def __init__(
        self, original: nn.Module, tmp: Path, *, runtime: str, imgsz: int, threads: int | None, batch: int, **timing
    ):
        self.runtime, self.tmp, self.imgsz = get_runtime(runtime, threads, batch), tmp, imgsz
        self.args = {"imgsz": imgsz, "runtime": runtime, "threads": threads, "batch": batch, **timing}
        self._saved = itertools.count()
        self._files: list[tuple[nn.Module, Path]] = []  # each module timed so far and its file (ids are not reused)
        self.original = self._file_of(original)

    def _file_of(self, model: nn.Module) -> Path:
        from yolo_prune.pruning.checkpoint import save_checkpoint

        for m, path in self._files:
            if m is model:
                return path
        path = self.runtime.deployable(
            save_checkpoint(model, self.tmp / f"candidate{next(self._saved)}.pt"), self.imgsz
        )
        self._files.append((model, path))
        return path

    def __call__(self, models: Sequence[nn.Module]) -> list[BenchRow]:
        return bench([self.original, *map(self._file_of, models)], **self.args)


def _rows(paths: list[Path], loaded: list[Loaded], times: list[list[float]]) -> list[BenchRow]:
    """One `BenchRow` per model."""
    base = float(np.median(times[0]))
    rows = []
    for path, model, t in zip(paths, loaded, times):
        macs, params, how = model.cost
        median = float(np.median(t))
        rows.append(
            BenchRow(
                model=str(path),
                file_bytes=model.file_bytes,
                source_bytes=path.stat().st_size,
                precision=model.precision,
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
        spec.check_model(path)
    check_imgsz(imgsz)
    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}")
    if warmup < 0:
        raise ConfigError(f"--warmup must be 0 or more, got {warmup}")


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
