"""`yolo-prune export`: one format, optionally INT8 on top of ONNX, every option checked before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yolo_prune.deploy.export import ExportResult, export_format
from yolo_prune.deploy.formats import get_format
from yolo_prune.deploy.parity import DEFAULT_TOLERANCE
from yolo_prune.deploy.quantize import calibration_files, quantize_int8
from yolo_prune.errors import ConfigError


@dataclass
class ExportReport:
    """The exported files (the format's, then INT8's when asked) and the calibration images INT8 used."""

    model: str
    results: list[ExportResult]
    calibration: list[Path] | None = None

    def to_dict(self) -> dict:
        return {"model": self.model, "results": [r.to_dict() for r in self.results]}


def run_export(
    model: str | Path,
    fmt: str = "onnx",
    *,
    imgsz: int = 640,
    out: str | Path | None = None,
    dynamic: bool = False,
    opset: int | None = None,
    simplify: bool = False,
    end2end: bool = False,
    int8: bool = False,
    data: str | None = None,
    calib: int = 100,
    tolerance: float | None = None,
    fast_dfl: bool = True,
) -> ExportReport:
    """Export `model` to `fmt` with the parity check; with `int8`, also a static INT8 ONNX calibrated on `data`.

    `fast_dfl` exports the DFL box decoding as a transpose-free softmax (`deploy/head.py`); INT8 quantizes that file.
    """
    spec = get_format(fmt)
    if int8 and spec.name != "onnx":
        raise ConfigError("--int8 is for --format onnx")
    if data is not None and not int8:
        raise ConfigError("--data is only used by --int8 (calibration images)")
    files = None
    if int8:
        if data is None:
            raise ConfigError("--int8 needs --data DATA, a dataset YAML whose train images calibrate it")
        if dynamic:
            raise ConfigError("--int8 needs a fixed input size; drop --dynamic")
        files = calibration_files(data=data, calib=calib)  # a bad dataset fails before anything is written
    options = {"dynamic": dynamic, "opset": opset, "simplify": simplify}
    tol = DEFAULT_TOLERANCE if tolerance is None else tolerance
    results = [
        export_format(model, spec.name, imgsz, out=out, tolerance=tol, end2end=end2end, fast_dfl=fast_dfl, **options)
    ]
    if files is not None:
        results.append(quantize_int8(results[0].file, images=files, calib=calib))
    return ExportReport(str(model), results, files)
