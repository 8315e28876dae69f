"""Export a checkpoint for deployment (ONNX, TorchScript, OpenVINO), each checked against PyTorch.

Ultralytics' exporter does the conversion; this module adds what deployment needs around it:

- the input checkpoint is never touched: the exporter runs on a temporary copy (it writes beside its input), and the
  result is moved onto `out` atomically;
- a **parity check** (`parity`): the exported file runs on real, letterboxed images and is compared with the
  PyTorch model on the same tensors. A file that disagrees is kept (to be inspected) but reported as an `ExportError`;
- missing optional packages (OpenVINO) are a one-line error, never a `pip install` attempt;
- the DFL box decoding is exported as a transpose-free softmax (`head.fast_dfl`, on by default: lossless, and ~4 ms
  faster at imgsz 640 on a 2-core CPU); the parity check compares the file with the *stock* PyTorch model.

The formats themselves are records in `formats`. INT8 ONNX is made from the exported file by `quantize`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import logging
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from yolo_prune.atomic import replace_path, staging_dir
from yolo_prune.checks import check_imgsz, check_model_file
from yolo_prune.deploy import head
from yolo_prune.deploy.calibration import calibration_files, train_images
from yolo_prune.deploy.formats import EDGE_EXTRA, FORMATS, Format, disk_size, get_format, quiet_output
from yolo_prune.deploy.parity import DEFAULT_TOLERANCE, ParityCheck, check_parity, default_images, letterbox
from yolo_prune.errors import ConfigError, DataError, ExportError, first_line
from yolo_prune.pruning.load import load_model

LOGGER = logging.getLogger("yolo_prune")


@dataclass
class ExportResult:
    """One exported file: where, how big, for what input, and its parity check (None for INT8, see quantize_int8)."""

    format: str
    file: Path
    size_bytes: int
    imgsz: int
    seconds: float
    parity: ParityCheck | None = None
    details: dict | None = None

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "file": str(self.file),
            "size_bytes": self.size_bytes,
            "imgsz": self.imgsz,
            "seconds": self.seconds,
            "parity": self.parity.to_dict() if self.parity else None,
            **(self.details or {}),
        }


def export_onnx(
    weights: str | Path,
    *,
    out: str | Path | None = None,
    imgsz: int = 640,
    dynamic: bool = False,
    opset: int | None = None,
    simplify: bool = False,
    end2end: bool = False,
    images: Sequence[str | Path] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    fast_dfl: bool = True,
) -> ExportResult:
    """Export `weights` (.pt) to ONNX at `out` (default: beside the weights) and check it against PyTorch.

    `end2end` exports the NMS-free one-to-one head of YOLO26-style models, (B, 300, 6); by default Ultralytics
    exports the (B, 4 + classes, anchors) output for external NMS. `images` (default `default_images()`) are the
    parity-check inputs. `fast_dfl` exports the DFL as a transpose-free softmax (see `export_format`). Raises
    `ExportError` if the export fails or the outputs differ by more than `tolerance` (see `DEFAULT_TOLERANCE`); in
    the latter case the file is kept and named in the message.
    """
    return export_format(
        weights,
        "onnx",
        imgsz=imgsz,
        out=out,
        images=images,
        tolerance=tolerance,
        end2end=end2end,
        fast_dfl=fast_dfl,
        dynamic=dynamic,
        opset=opset,
        simplify=simplify,
    )


def export_format(
    weights: str | Path,
    fmt: str,
    imgsz: int = 640,
    *,
    out: str | Path | None = None,
    images: Sequence[str | Path] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    end2end: bool = False,
    fast_dfl: bool = True,
    int8_data: str | Path | None = None,
    int8_fraction: float = 1.0,
    **export_args,
) -> ExportResult:
    """Export `weights` to `fmt` (one of `FORMATS`) through Ultralytics' exporter, then check parity.

    `export_args` go to `YOLO.export` (`dynamic`, `opset`, `simplify`). A format whose package is not installed
    fails with a one-line `ExportError` naming it; nothing is installed.

    `int8_data` (a dataset YAML) makes an INT8 export calibrated on `int8_fraction` of that dataset's train split,
    never on the split `val` measures and never on a download: OpenVINO's is the exporter's own (NNCF); LiteRT's is
    the exporter's FP32 file quantized with the head's decoding in float (`_litert_int8`: the exporter's own INT8
    quantizes that too and loses accuracy). INT8 is not parity-checked (it differs by design): the file must load and
    run; `val` says what it costs in mAP.

    `fast_dfl` runs the exporter inside `head.fast_dfl()`, so the DFL box decoding is exported without its
    Transpose and non-last-axis Softmax (the same function; see `deploy/head.py`). The PyTorch reference of the parity
    check always runs the stock forward: the check is the proof that the rewrite is lossless.
    """
    weights = Path(weights)
    spec = get_format(fmt)
    fmt = spec.name
    if int8_data is not None:
        export_args["int8"] = True
    _check_export_args(weights, spec, imgsz, tolerance, export_args)
    # An option the format does not take, left unset (None, False), is not passed on: Ultralytics refuses any
    # non-default option a format does not list, and simplify's default is True (`--format tflite` failed on it).
    export_args = {k: v for k, v in export_args.items() if k in spec.options or v not in (None, False)}
    if int8_data is not None:
        export_args.update(data=str(int8_data), split="train", fraction=int8_fraction)
    out = Path(out) if out is not None else spec.default_out(weights)
    if out.resolve() == weights.resolve():
        raise ConfigError(f"--out would overwrite the input model {weights}; choose another file")
    image_paths = [Path(p) for p in images] if images is not None else default_images()
    missing = [str(p) for p in image_paths if not p.is_file()]
    if missing or not image_paths:
        raise DataError(f"parity-check image not found: {missing[0] if missing else '(no images given)'}")
    reference = load_model(weights)  # typed errors for missing or corrupt checkpoints, and the PyTorch reference
    if end2end and getattr(reference.model[-1], "one2one_cv2", None) is None:
        raise ConfigError(f"{weights} has no end-to-end (one-to-one) head; --end2end is for YOLO26-style models")
    if end2end and int8_data is not None and fmt == "tflite":  # as Ultralytics: INT8 collapses its class indices
        raise ConfigError("LiteRT INT8 exports the raw head (NMS after it), not --end2end")

    start = time.perf_counter()
    quantized: dict = {}
    with head.fast_dfl() if fast_dfl else nullcontext():
        if int8_data is not None and fmt == "tflite":
            exported, quantized = _litert_int8(weights, imgsz, out, int8_data, int8_fraction, export_args)
        else:
            exported = _run_exporter(weights, fmt, imgsz, out, end2end=end2end, **export_args)
    seconds = time.perf_counter() - start
    reference.end2end = end2end
    # Outside the patch: the reference is the stock model, whatever the exporter traced.
    details = {"end2end": end2end, "fast_dfl": fast_dfl, "precision": "int8" if export_args.get("int8") else "fp32"}
    details.update(quantized)
    if spec.runner is None:  # no runtime on this platform: loading the export is the check
        details["loaded"] = _load_only(spec, exported)
        result = ExportResult(fmt, exported, disk_size(exported), imgsz, seconds, None, details)
        LOGGER.info(f"{fmt}: {exported} ({result.size_bytes / 1e6:.2f} MB), loaded: {details['loaded']}")
        return result
    if export_args.get("int8"):  # INT8 differs from PyTorch by design: it must run; its accuracy is `val`'s to say
        spec.runner(exported, None)(letterbox(image_paths[0], imgsz))
        result = ExportResult(fmt, exported, disk_size(exported), imgsz, seconds, None, details)
        LOGGER.info(f"{fmt} INT8: {exported} ({result.size_bytes / 1e6:.2f} MB), runs")
        return result
    parity = check_parity(
        reference, spec.runner(exported, None), imgsz, image_paths, tolerance, batch=bool(export_args.get("dynamic"))
    )
    result = ExportResult(fmt, exported, disk_size(exported), imgsz, seconds, parity, details)
    if not parity.passed:
        raise ExportError(
            f"parity check failed: {exported} differs from the PyTorch model by {parity.relative_diff:.2e} of the "
            f"output range (boxes {parity.box_abs_diff:.3g} px, scores {parity.score_abs_diff:.3g}), above the "
            f"tolerance {tolerance:.0e}; the file is kept at {exported}"
        )
    LOGGER.info(
        f"{fmt}: {exported} ({result.size_bytes / 1e6:.2f} MB), parity {parity.relative_diff:.1e} <= {tolerance:.0e}"
    )
    return result


def _check_export_args(weights: Path, spec: Format, imgsz: int, tolerance: float, export_args: dict) -> None:
    check_model_file(weights, (".pt",))
    check_imgsz(imgsz)
    if not tolerance > 0:
        raise ConfigError(f"--tolerance must be positive, got {tolerance}")
    for option in sorted(k for k, v in export_args.items() if v not in (None, False) and k not in spec.options):
        takers = [f.name for f in FORMATS.values() if option in f.options]
        if option == "int8":
            takers.insert(0, "onnx")  # quantized by onnxruntime after the export, `quantize.quantize_int8`
        raise ConfigError(f"--{option} is for --format {' or '.join(takers) or '(none)'}, not {spec.name}")
    if spec.gpu:
        import torch

        if not torch.cuda.is_available():
            raise ExportError(f"--format {spec.name} builds for a CUDA GPU, and PyTorch sees none on this machine")
    require_packages(spec, int8=bool(export_args.get("int8")))


def require_packages(spec: Format, int8: bool = False) -> None:
    """Fail unless every package `spec` needs (for INT8 too, with `int8`) is importable at the version Ultralytics
    asks: its exporter would otherwise try to pip-install it (and fail offline with a traceback)."""
    from ultralytics.utils.checks import check_version

    for module, requirement in spec.packages + (spec.int8_packages if int8 else ()):
        name, _, minimum = requirement.partition(">=")
        if importlib.util.find_spec(module) is None:
            raise ExportError(f"{spec.name} needs the '{name}' package, which is not installed ({EDGE_EXTRA})")
        installed = importlib.metadata.version(name)
        if minimum and not check_version(installed, f">={minimum}"):
            raise ExportError(f"{spec.name} needs {name}>={minimum}, found {installed} ({EDGE_EXTRA})")


def _run_exporter(weights: Path, fmt: str, imgsz: int, out: Path, *, end2end: bool, **export_args) -> Path:
    """Run Ultralytics' exporter on a temporary copy of `weights` and move its output onto `out` atomically."""
    from ultralytics import YOLO

    with staging_dir(out, ExportError) as work:
        copy = work / weights.name
        shutil.copyfile(weights, copy)
        args = {"simplify": False, **export_args} if fmt == "onnx" else dict(export_args)
        if end2end:
            args["nms"] = False  # Ultralytics' switch for the NMS-free one-to-one head
        device = 0 if get_format(fmt).gpu else "cpu"
        try:
            with _converters_quiet():
                produced = YOLO(str(copy)).export(format=fmt, imgsz=imgsz, device=device, batch=1, **args)
        except Exception as e:  # the exporter raises many kinds; each is a one-line failure of this export
            raise ExportError(f"{fmt} export of {weights} failed: {first_line(e)}") from e
        if not produced or not Path(produced).exists():
            raise ExportError(f"{fmt} export of {weights} produced no file")
        replace_path(Path(produced), out)
        return out


def _litert_int8(
    weights: Path, imgsz: int, out: Path, data: str | Path, fraction: float, export_args: dict
) -> tuple[Path, dict]:
    """LiteRT INT8 with the head's final convs and box decoding in float: the exporter's FP32 .tflite, quantized by
    `litert_int8.quantize_litert` on `fraction` of `data`'s train images (evenly spread, letterboxed).

    Not the exporter's own INT8 (`int8=True`): that quantizes the box decoding too and lost 6.9 points mAP50-95 on a
    fine-tuned pruned yolov8n (see `litert_int8`); this way lost 0.0 and ran as fast.
    """
    from yolo_prune.deploy.litert_int8 import quantize_litert

    train = train_images(data)
    files = calibration_files(images=train, calib=max(1, round(fraction * len(train))))
    fp32_args = {k: v for k, v in export_args.items() if k not in ("int8", "data", "split", "fraction")}
    with staging_dir(out, ExportError) as work:
        fp32 = _run_exporter(weights, "tflite", imgsz, work / "fp32.tflite", end2end=False, **fp32_args)
        with _converters_quiet():  # the quantizer prints its progress and sizes on stdout
            details = quantize_litert(
                fp32, out, files, metadata_args={"quantize": 8, "data": str(data), "fraction": fraction}
            )
    return out, details


@contextlib.contextmanager
def _converters_quiet() -> Iterator[None]:
    """Where converters misbehave for a command-line tool, in one place:

    - pnnx (NCNN), litert-torch, coremltools and MNN's converter print their progress on stdout and stderr from C
      code and subprocesses, hundreds of lines per export (`formats.quiet_output`); the exporter's exception says
      what failed, and Ultralytics' own log is quieted to warnings by the CLI anyway;
    - litert-torch and ai-edge-quantizer print theirs from Python too: `sys.stdout` is swapped as well, which the
      descriptors alone do not cover where stdout is not descriptor 1 (an in-process caller, the CLI's test runner);
    - MNN's converter imports its telemetry module, which runs `pip install aliyun-log-python-sdk` when that is
      missing and then phones home: the module is marked absent, so the converter's own `except ImportError` skips it.
    """
    telemetry = "MNN.tools.utils.log"
    patched = telemetry not in sys.modules
    if patched:
        sys.modules[telemetry] = None  # type: ignore[assignment]
    try:
        with quiet_output(1, 2), contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if patched:
            sys.modules.pop(telemetry, None)


def _load_only(spec: Format, exported: Path) -> str:
    try:
        return spec.loader(exported)
    except Exception as e:  # the loader's library raises many kinds; each is a one-line failure of this export
        raise ExportError(f"{spec.name} export {exported} does not load: {first_line(e)}") from e
