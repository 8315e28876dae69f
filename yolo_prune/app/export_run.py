"""`yolo-prune export`: one format or several (`all`), each checked against PyTorch, optionally INT8, timed against
an original in the format's own runtime and validated on a dataset; every option checked before anything is written.

With one format an export that cannot be made is the command's error. With several, it is that format's row (the
reason in one line) and the others go on: the table is what a user reads before choosing where to ship.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from yolo_prune.data.datasets import resolve_dataset
from yolo_prune.deploy.bench import BenchRow, bench
from yolo_prune.deploy.calibration import calibration_files, train_images
from yolo_prune.deploy.export import ExportResult, export_format
from yolo_prune.deploy.formats import FORMATS, Format, get_format
from yolo_prune.deploy.parity import DEFAULT_TOLERANCE
from yolo_prune.deploy.quantize import quantize_int8
from yolo_prune.errors import ConfigError, ExportError, ModelLoadError, YoloPruneError, first_line
from yolo_prune.train.validate import validate

LOGGER = logging.getLogger("yolo_prune")
ALL = "all"  # every format Ultralytics' exporter makes and this package knows


@dataclass
class FormatOutcome:
    """One format's export (and its INT8 where asked), or why it could not be made; its timing and mAP."""

    format: str
    result: ExportResult | None = None
    error: str | None = None
    timing: dict | None = None  # {"runtime", "original_ms", "ms", "speedup"} against `against`
    map50_95: float | None = None

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "result": self.result.to_dict() if self.result else None,
            "error": self.error,
            "timing": self.timing,
            "map50_95": self.map50_95,
        }


@dataclass
class ExportReport:
    """The exported files (each format's, then its INT8 where asked), in order; the calibration images ONNX INT8
    used; per format, its outcome (`outcomes`, for several formats, timing or mAP)."""

    model: str
    calibration: list[Path] | None = None
    outcomes: list[FormatOutcome] = field(default_factory=list)
    against: str | None = None

    @property
    def results(self) -> list[ExportResult]:
        return [o.result for o in self.outcomes if o.result is not None]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "results": [r.to_dict() for r in self.results],
            "outcomes": [o.to_dict() for o in self.outcomes],
            "against": self.against,
        }


def parse_formats(fmt: str) -> list[Format]:
    """`all`, one format or a comma-separated list (aliases allowed), in order, each once."""
    names = list(FORMATS) if fmt.strip().lower() == ALL else [n.strip() for n in fmt.split(",") if n.strip()]
    if not names:
        raise ConfigError("--format names no format")
    specs: list[Format] = []
    for name in names:
        spec = get_format(name)
        if spec not in specs:
            specs.append(spec)
    return specs


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
    against: str | Path | None = None,
    threads: int | None = None,
    runs: int = 50,
) -> ExportReport:
    """Export `model` to `fmt` (a format, a comma-separated list or `all`) with the parity check.

    `int8` also writes each format's INT8 where it has one (ONNX: onnxruntime's static quantization; OpenVINO and
    LiteRT: the exporter's), calibrated on `calib` train images of `data`. `data` also validates each export
    (mAP50-95 on its val split). `against` (an original checkpoint) times each export that has a runtime interleaved
    with the original exported to the same format, on `threads` threads for `runs` rounds. `out`: the file of a
    single format, else the folder for all of them (default: beside `model`).
    """
    specs = parse_formats(fmt)
    model = Path(model)
    single = len(specs) == 1
    asked = ", ".join(spec.name for spec in specs)
    if int8 and not any(_takes_int8(spec) for spec in specs):
        takers = ", ".join(f.name for f in FORMATS.values() if _takes_int8(f))
        raise ConfigError(f"--int8 is for --format {takers}, not {asked}")
    options = {"dynamic": dynamic, "opset": opset, "simplify": simplify}
    for option in (k for k, v in options.items() if v not in (None, False)):
        if not any(option in spec.options for spec in specs):  # one format that takes it is enough
            takers = " or ".join(f.name for f in FORMATS.values() if option in f.options)
            raise ConfigError(f"--{option} is for --format {takers}, not {asked}")
    if int8 and data is None:
        raise ConfigError("--int8 needs --data DATA, a dataset YAML whose train images calibrate it")
    if int8 and dynamic:
        raise ConfigError("--int8 needs a fixed input size; drop --dynamic")
    if tolerance is not None and not any(spec.runner is not None for spec in specs):
        raise ConfigError(f"--tolerance sets the parity check, which --format {asked} does not have (it only loads)")
    if data is not None and not int8 and not any(spec.runner is not None for spec in specs):
        raise ConfigError(f"--data validates each export, and --format {asked} does not run here")
    if against is not None and not any(spec.runtime is not None for spec in specs):
        raise ConfigError(f"--against times each export in its runtime, and --format {asked} has none here")
    if against is not None:
        against = _check_against(Path(against), model, threads, runs)
    elif threads is not None:
        raise ConfigError("--threads: only used when timing with --against ORIGINAL")
    files, fraction = None, 1.0
    if data is not None:  # a bad dataset fails before anything is written
        resolve_dataset(data, splits=("train", "val") if int8 else ("val",))
    if int8:
        train = train_images(data)
        files, fraction = calibration_files(images=train, calib=calib), min(1.0, calib / len(train))
    folder = Path(out) if out is not None and not single else model.parent
    tol = DEFAULT_TOLERANCE if tolerance is None else tolerance
    report = ExportReport(str(model), files, against=None if against is None else str(against))
    for spec in specs:
        target = Path(out) if single and out is not None else spec.default_out(folder / model.name)
        taken = {k: v for k, v in options.items() if k in spec.options or single}
        try:
            result = export_format(
                model, spec.name, imgsz, out=target, tolerance=tol, end2end=end2end, fast_dfl=fast_dfl, **taken
            )
        except YoloPruneError as e:
            if single:
                raise
            LOGGER.warning(f"{spec.name}: {e}")
            report.outcomes.append(FormatOutcome(spec.name, error=str(e)))
            continue
        report.outcomes.append(_measure(FormatOutcome(spec.name, result), spec, against, data, imgsz, threads, runs))
        if int8 and _takes_int8(spec):
            quantized = _int8(model, spec, result, files, data, fraction, imgsz, fast_dfl)
            outcome = FormatOutcome(f"{spec.name} int8", quantized)
            report.outcomes.append(_measure(outcome, spec, against, data, imgsz, threads, runs))
    if not report.results:
        raise ExportError("no format could be exported: " + "; ".join(f"{o.error}" for o in report.outcomes))
    return report


def _int8(
    model: Path,
    spec: Format,
    fp32: ExportResult,
    files: list[Path] | None,
    data: str | None,
    fraction: float,
    imgsz: int,
    fast_dfl: bool,
) -> ExportResult:
    """The INT8 twin of `fp32`: onnxruntime's quantization of the ONNX file, else the exporter's own INT8."""
    if spec.name == "onnx":
        return quantize_int8(fp32.file, images=files, calib=len(files or ()))
    out = fp32.file.with_name(model.stem + "_int8" + spec.suffix)
    return export_format(model, spec.name, imgsz, out=out, fast_dfl=fast_dfl, int8_data=data, int8_fraction=fraction)


def _measure(
    outcome: FormatOutcome,
    spec: Format,
    against: Path | None,
    data: str | None,
    imgsz: int,
    threads: int | None,
    runs: int,
) -> FormatOutcome:
    """Time the export against the original in the format's runtime, and validate it, where asked and possible."""
    file = outcome.result.file
    if against is not None and spec.runtime is not None:
        rows: list[BenchRow] = bench([against, file], imgsz=imgsz, runs=runs, threads=threads, runtime=spec.runtime)
        outcome.timing = {
            "runtime": spec.runtime,
            "original_ms": rows[0].median_ms,
            "ms": rows[1].median_ms,
            "speedup": rows[1].speedup,
        }
    if data is not None and spec.runner is not None:
        try:
            outcome.map50_95 = validate(str(file), data, imgsz=imgsz, batch=1, device="cpu")["map50_95"]
        except Exception as e:  # Ultralytics' runtimes raise many kinds: one line in this format's row
            outcome.error = f"validation failed: {first_line(e)}"
            LOGGER.warning(f"{outcome.format}: {outcome.error}")
    return outcome


def _check_against(against: Path, model: Path, threads: int | None, runs: int) -> Path:
    """The original to time against, and the timing options, checked before anything is exported."""
    from yolo_prune.checks import check_model_file, check_threads

    try:
        check_model_file(against, (".pt",))
    except ModelLoadError as e:
        raise ModelLoadError(f"--against: {e}") from None
    if against.resolve() == model.resolve():
        raise ConfigError("--against is the original to time against; it is MODEL itself")
    check_threads(threads)
    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}")
    return against


def _takes_int8(spec: Format) -> bool:
    """ONNX is quantized by onnxruntime after its export; the others' exporters make INT8 themselves."""
    return spec.name == "onnx" or "int8" in spec.options
