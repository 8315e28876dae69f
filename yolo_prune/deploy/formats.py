"""Deployment formats as records: what Ultralytics' exporter calls each, where the file goes, what it needs, and how
to run the result for the parity check. A new format is one `Format` entry in `FORMATS` plus its test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from yolo_prune.errors import ConfigError

if TYPE_CHECKING:  # the CLI lists the formats: that must not load torch or numpy
    import numpy as np

Runner = Callable[["np.ndarray"], list["np.ndarray"]]  # every output of the model, in order


@dataclass(frozen=True)
class Format:
    """One export format."""

    name: str  # Ultralytics' `format=` value and the CLI's --format
    suffix: str  # the default output beside the weights: `<stem><suffix>` (a folder for OpenVINO)
    runner: Callable[[Path], Runner]  # loads the exported file; the result runs one NCHW float32 batch
    package: tuple[str, str] | None = None  # (pip package beyond the base install, minimum version Ultralytics asks)
    options: tuple[str, ...] = ("dynamic",)  # exporter options it takes

    def default_out(self, weights: Path) -> Path:
        """Where Ultralytics itself would write the export: beside the weights."""
        return weights.with_name(weights.stem + self.suffix)


def _onnx_runner(path: Path) -> Runner:
    from yolo_prune.deploy.ort_session import open_session

    session = open_session(path)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _torchscript_runner(path: Path) -> Runner:
    import torch

    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = module(torch.from_numpy(x))
        return [t.numpy() for t in y] if isinstance(y, (list, tuple)) else [y.numpy()]

    return run


def _openvino_runner(path: Path) -> Runner:
    import numpy as np
    import openvino as ov

    # f32 explicitly: on CPUs with bf16 units OpenVINO otherwise runs in bf16 (boxes off by pixels), which would
    # test the runtime's precision choice, not the export.
    compiled = ov.Core().compile_model(str(next(path.glob("*.xml"))), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda x: [np.asarray(v) for v in compiled(x).values()]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("onnx", ".onnx", _onnx_runner, options=("dynamic", "opset", "simplify")),
        Format("torchscript", ".torchscript", _torchscript_runner),
        Format("openvino", "_openvino_model", _openvino_runner, package=("openvino", "2024.0.0")),
    )
}


def get_format(name: str) -> Format:
    """The format registered as `name` (any case); unknown names fail listing the valid ones."""
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown export format '{name}'; choose one of {', '.join(FORMATS)}") from None
