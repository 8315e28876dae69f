"""What a runtime is: one place where latency is measured, owning everything its timing needs.

A runtime loads models for `bench` to time interleaved (`load`), says which file it times for a pruned checkpoint
(`deployable`: an export, or the checkpoint itself), times single convs for the latency model (`layer_timer`, which
reports the runtime's channel block where it knows one), holds the settings a deployment would run with while
timing (`timing`, `synchronize`), checks that this machine can use it (`check`) and describes itself. Callers never
ask what kind of runtime they hold.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from yolo_prune.checks import check_model_file, check_threads
from yolo_prune.errors import ConfigError

if TYPE_CHECKING:  # listing the runtimes must not load torch
    from yolo_prune.pruning.latency import LayerTimer

DEFAULT_RUNTIME = "onnxruntime-cpu"


@dataclass
class Loaded:
    """A model ready to time: `run` does one inference of the whole batch. `file_bytes` is the size of the file that
    is timed (what would be deployed), None when the runtime times a checkpoint's module; `cost` is (MACs, params,
    how they were counted)."""

    run: Callable[[], object]
    file_bytes: int | None
    precision: str
    cost: tuple[int | None, int | None, str]


class Runtime(ABC):
    """One runtime, by name (`runtimes.RUNTIMES`). A subclass lives in its own module of this package."""

    name: str
    suffixes: ClassVar[tuple[str, ...]]  # the model files it times
    timed: ClassVar[str]  # what a report says was timed, e.g. "exported ONNX"
    batches: ClassVar[bool] = False  # times more than one image per call

    def check(self, threads: int | None, batch: int, batch_option: str) -> None:
        """A one-line `ConfigError` unless this machine can time on it with `threads` and `batch` images per call
        (`batch_option` names the option that set it)."""
        check_threads(threads)
        if batch < 1:
            raise ConfigError(f"{batch_option} must be at least 1, got {batch}")
        if batch > 1 and not self.batches:
            raise ConfigError(
                f"{self.name} times the exported graph at batch 1; {batch_option} {batch} needs a torch runtime"
            )

    def check_model(self, path: Path) -> None:
        """A one-line error unless `path` is a model file this runtime times."""
        check_model_file(path, self.suffixes)

    @abstractmethod
    def describe(self, threads: int | None) -> str:
        """A short text naming the runtime and its settings, e.g. for a table's footer."""

    @abstractmethod
    def load(
        self, paths: Sequence[Path], imgsz: int, threads: int | None, batch: int, tmp: Path, fast_dfl: bool = True
    ) -> list[Loaded]:
        """`paths` ready to time, in order (`tmp`: a folder for files made on the way, removed after timing;
        `fast_dfl`: how a checkpoint is exported where the runtime exports it, see `export.export_format`)."""

    @abstractmethod
    def deployable(self, weights: Path, imgsz: int) -> Path:
        """The file this runtime times for the checkpoint `weights` (made beside it when it must be exported)."""

    @abstractmethod
    def layer_timer(self, threads: int | None = None, batch: int = 1, cache: Path | None = None) -> LayerTimer:
        """The latency model's conv timer on this runtime (cached per machine under `cache`)."""

    @contextlib.contextmanager
    def timing(self, threads: int | None) -> Iterator[None]:
        """Hold the settings a deployment would run with while timing."""
        yield

    def synchronize(self) -> None:
        """Wait for the device to finish what was queued (a no-op where calls are synchronous)."""
        return None

    def unreachable_hint(self, batch: int) -> str:
        """What a speed target this runtime cannot reach adds to its error."""
        return ""


def export_for_timing(weights: Path, fmt: str, out: Path, imgsz: int, fast_dfl: bool = True) -> Path:
    """`weights` exported to `fmt` at `out` (parity-checked, `export.export_format`) to be timed."""
    import logging

    from yolo_prune.deploy.export import export_format
    from yolo_prune.errors import ExportError

    logging.getLogger("yolo_prune").info(f"exporting {weights} to {fmt} for timing")
    try:
        return export_format(weights, fmt, imgsz, out=out, fast_dfl=fast_dfl).file
    except ExportError as e:  # the temporary file it names goes with the temporary folder
        message = str(e).replace(f"; the file is kept at {out}", "; `yolo-prune export` keeps the file to inspect")
        raise ExportError(f"cannot bench {weights}: {message}") from e


def checkpoint_cost(weights: Path, imgsz: int) -> tuple[int, int, str]:
    """(MACs, parameters, "pytorch") of a checkpoint, counted on its PyTorch module."""
    from yolo_prune.pruning.cost import measure
    from yolo_prune.pruning.load import load_model

    cost = measure(load_model(weights), imgsz)
    return cost.macs, cost.params, "pytorch"
