"""Runtimes that run one export format on the CPU, each through the format's own runner (`formats.Format.runner`,
float32, the parity check's runner): `mnn-cpu`, `executorch-cpu` and `litert-cpu` here, and the base of
`ncnn-cpu` and `openvino-cpu` (their own modules, which add a conv timer).

A checkpoint is exported with `export.export_format` (parity-checked) before it is timed, as onnxruntime does with
ONNX, so an original and its prune are timed as the files a user would ship. The runtimes of this module have no
conv timer of their own: a prune for them models conv latency on onnxruntime and measures every candidate end to
end in the runtime itself (`layer_timer`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from yolo_prune.checks import check_model_file
from yolo_prune.deploy.formats import disk_size
from yolo_prune.deploy.runtimes.base import Loaded, Runtime, checkpoint_cost, export_for_timing
from yolo_prune.errors import ConfigError, ExportError, ModelLoadError

if TYPE_CHECKING:
    from yolo_prune.deploy.formats import Format
    from yolo_prune.pruning.latency import LayerTimer

LOGGER = logging.getLogger("yolo_prune")


class ExportedRuntime(Runtime):
    """Times files of one export format (`format`) with its runner; `label` names the runtime in a table."""

    format: ClassVar[str]
    label: ClassVar[str]
    package: ClassVar[str]  # the runtime's distribution, whose version `describe` names

    @property
    def spec(self) -> Format:
        from yolo_prune.deploy.formats import get_format

        return get_format(self.format)

    @property
    def suffixes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (".pt", self.spec.suffix)

    @property
    def timed(self) -> str:  # type: ignore[override]
        return f"exported {self.label}"

    def check(self, threads: int | None, batch: int, batch_option: str) -> None:
        super().check(threads, batch, batch_option)
        from yolo_prune.deploy.export import require_packages

        try:
            require_packages(self.spec)
        except ExportError as e:
            raise ConfigError(f"--runtime {self.name}: {e}") from None

    def check_model(self, path: Path) -> None:
        """A checkpoint, or this format's export (a file, or the folder Ultralytics writes for it)."""
        suffix = self.spec.suffix
        if path.name.endswith(suffix) and path.is_dir() and any(path.iterdir()):
            return
        if path.suffix.lower() == ".pt" or not path.is_dir():
            check_model_file(path, (".pt", suffix) if suffix.startswith(".") else (".pt",))
            return
        raise ModelLoadError(f"{path}: expected a .pt checkpoint or a {self.format} export (*{suffix})")

    def describe(self, threads: int | None) -> str:
        import importlib.metadata

        return f"{self.label} {importlib.metadata.version(self.package)} CPU, FP32, {threads or 'default'} threads"

    def load(
        self, paths: Sequence[Path], imgsz: int, threads: int | None, batch: int, tmp: Path, fast_dfl: bool = True
    ) -> list[Loaded]:
        """Each file's runner on one random image; checkpoints exported first (`fast_dfl`: how, see
        `export.export_format`) and costed in PyTorch."""
        x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
        loaded = []
        for i, path in enumerate(paths):
            cost: tuple[int | None, int | None, str] = (None, None, "n/a")
            if path.suffix.lower() == ".pt":
                cost = checkpoint_cost(path, imgsz)
                path = export_for_timing(path, self.format, tmp / f"{i}-{path.stem}{self.spec.suffix}", imgsz, fast_dfl)
            run = self.spec.runner(path, threads)
            loaded.append(Loaded(lambda run=run: run(x), disk_size(path), _precision(path), cost))
        return loaded

    def deployable(self, weights: Path, imgsz: int) -> Path:
        from yolo_prune.deploy.export import export_format

        return Path(export_format(weights, self.format, imgsz).file)

    def layer_timer(self, threads: int | None = None, batch: int = 1, cache: Path | None = None) -> LayerTimer:
        """No conv timer of its own (timing a lone conv would mean converting each shape to this format, seconds
        apiece): the latency model times convs on onnxruntime with the same threads, and the end-to-end rounds,
        measured in this runtime, correct its aim (`pruning.speed`)."""
        from yolo_prune.deploy.runtimes.onnx_runtime import OnnxruntimeTimer

        self.check(threads, batch, "--batch")
        LOGGER.info(f"  {self.name} has no conv timer: the latency model times convs on onnxruntime, end to end on it")
        return OnnxruntimeTimer(threads, cache)


class MnnCPU(ExportedRuntime):
    name, format, label, package = "mnn-cpu", "mnn", "MNN", "MNN"


class ExecutorchCPU(ExportedRuntime):
    name, format, label, package = "executorch-cpu", "executorch", "ExecuTorch (XNNPACK)", "executorch"


class LitertCPU(ExportedRuntime):
    name, format, label, package = "litert-cpu", "tflite", "LiteRT (XNNPACK)", "ai-edge-litert"


RUNTIMES = (MnnCPU(), ExecutorchCPU(), LitertCPU())


def _precision(path: Path) -> str:
    """How Ultralytics quantized an export, from its metadata: int8 (`quantize: 8` or `int8`), w8a16 or w8a32 (int8
    weights with int16 or float activations, LiteRT's other schemes), else fp32 (every runner here computes the rest
    in float32)."""
    from ultralytics.nn.backends.base import BaseBackend

    args = BaseBackend.read_metadata(path).get("args") or {}
    quantize = args.get("quantize")
    if quantize == 8 or args.get("int8"):
        return "int8"
    return str(quantize) if isinstance(quantize, str) and quantize.startswith("w8") else "fp32"
