"""Export a checkpoint for deployment (ONNX, TorchScript, OpenVINO), each checked against PyTorch.

Ultralytics' exporter does the conversion; this module adds what deployment needs around it:

- the input checkpoint is never touched: the exporter runs on a temporary copy (it writes beside its input), and the
  result is moved onto `out` atomically;
- a **parity check**: the exported file runs on real, letterboxed images and is compared with the PyTorch model on
  the same tensors. A file that disagrees is kept (to be inspected) but reported as an `ExportError`;
- missing optional packages (OpenVINO) are a one-line error, never a `pip install` attempt.

INT8 ONNX is made from the exported file by `yolo_prune.quantize`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from yolo_prune.errors import ConfigError, DataError, ExportError, ModelLoadError
from yolo_prune.load import _first_line, load_model

LOGGER = logging.getLogger("yolo_prune")

# Parity tolerance, relative to each output's full range: boxes are pixels in [0, imgsz] (or wider, for an untrained
# model's boxes), scores probabilities in [0, 1]; so the check is |box diff| <= tol * max(imgsz, max |box|) and
# |score diff| <= tol.
# Why 1e-4: both sides compute in float32 (24-bit mantissa, eps 1.2e-7), but onnxruntime (MLAS) and PyTorch (oneDNN)
# sum each conv's Cin*k*k products in different orders, and the ONNX graph holds BatchNorm folded into the convs
# while the PyTorch reference does not. That is a relative rounding of order sqrt(Cin*k*k) * eps ~ 1e-6 per layer,
# compounding over ~60 layers and then squashed by the sigmoid/DFL softmax. Measured on pruned (50% MACs) models,
# on bus.jpg, zidane.jpg and BCCD images: trained yolov8n/yolo11n-bccd at imgsz 384 and 640 differ by at most
# 2.4e-4 px (3.8e-7 of imgsz) in boxes and 1.3e-7 in scores; the unpruned trained yolov8n by 8.2e-4 px (1.5e-6);
# random-init pruned v8/11/26 with BatchNorm statistics of real images stay below 5e-7 (4 seeds each). 1e-4 leaves a
# margin of ~60x for other CPUs, kernels and thread counts (which change the summation order), and it is still
# 0.064 px at imgsz 640 and 1e-4 in score: far below anything that changes a detection. A real export bug (a wrong
# weight, a dropped BatchNorm, another activation, a different letterbox) moves outputs by 1e-2 and more. Only badly
# conditioned networks come near it: random init with random BatchNorm scales reached 3.4e-5 (BatchNorm statistics
# taken at another input size: 1.7e-5), and there float32 PyTorch itself is only that close to a float64 run.
DEFAULT_TOLERANCE = 1e-4

FORMATS = ("onnx", "torchscript", "openvino")
# Format -> (pip package it needs beyond the base install, minimum version that Ultralytics' exporter asks for).
_FORMAT_PACKAGES: dict[str, tuple[str, str] | None] = {
    "onnx": None,
    "torchscript": None,
    "openvino": ("openvino", "2024.0.0"),
}


@dataclass
class ParityCheck:
    """How far an exported model's outputs are from the PyTorch model's on the same letterboxed images."""

    images: list[str]
    box_abs_diff: float  # pixels
    score_abs_diff: float  # probability units
    max_abs_diff: float  # over the whole output tensor, in its own units
    relative_diff: float  # max(box diff / box range, score diff / 1): what is compared with the tolerance
    tolerance: float
    passed: bool

    def to_dict(self) -> dict:
        return dict(vars(self))


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


def default_images() -> list[Path]:
    """The sample images shipped inside the ultralytics package (bus.jpg, zidane.jpg): real photos, always present."""
    import ultralytics

    return sorted((Path(ultralytics.__file__).parent / "assets").glob("*.jpg"))


def letterbox(image: str | Path, imgsz: int, stride: int = 32) -> np.ndarray:
    """Read an image and letterbox it exactly as Ultralytics' predictor does for a fixed-size export.

    Returns a float32 (1, 3, imgsz, imgsz) RGB array in [0, 1].
    """
    import cv2
    from ultralytics.data.augment import LetterBox

    bgr = cv2.imread(str(image))
    if bgr is None:
        raise DataError(f"cannot read image {image}")
    boxed = LetterBox((imgsz, imgsz), auto=False, stride=stride)(image=bgr)
    return np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255


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
) -> ExportResult:
    """Export `weights` (.pt) to ONNX at `out` (default: beside the weights) and check it against PyTorch.

    `end2end` exports the NMS-free one-to-one head of YOLO26-style models, (B, 300, 6); by default Ultralytics
    exports the (B, 4 + classes, anchors) output for external NMS. `images` (default `default_images()`) are the
    parity-check inputs. Raises `ExportError` if the export fails or the outputs differ by more than `tolerance`
    (see `DEFAULT_TOLERANCE`); in the latter case the file is kept and named in the message.
    """
    return export_format(
        weights,
        "onnx",
        imgsz=imgsz,
        out=out,
        images=images,
        tolerance=tolerance,
        end2end=end2end,
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
    **export_args,
) -> ExportResult:
    """Export `weights` to `fmt` (one of `FORMATS`) through Ultralytics' exporter, then check parity.

    `export_args` go to `YOLO.export` (`dynamic`, `opset`, `simplify`). A format whose package is not installed
    fails with a one-line `ExportError` naming it; nothing is installed.
    """
    weights = Path(weights)
    fmt = fmt.lower()
    _check_export_args(weights, fmt, imgsz, tolerance)
    out = Path(out) if out is not None else _default_out(weights, fmt)
    if out.resolve() == weights.resolve():
        raise ConfigError(f"--out would overwrite the input model {weights}; choose another file")
    image_paths = [Path(p) for p in images] if images is not None else default_images()
    missing = [str(p) for p in image_paths if not p.is_file()]
    if missing or not image_paths:
        raise DataError(f"parity-check image not found: {missing[0] if missing else '(no images given)'}")
    reference = load_model(weights)  # typed errors for missing or corrupt checkpoints, and the PyTorch reference
    if end2end and getattr(reference.model[-1], "one2one_cv2", None) is None:
        raise ConfigError(f"{weights} has no end-to-end (one-to-one) head; --end2end is for YOLO26-style models")

    start = time.perf_counter()
    exported = _run_exporter(weights, fmt, imgsz, out, end2end=end2end, **export_args)
    seconds = time.perf_counter() - start
    reference.end2end = end2end
    parity = check_parity(
        reference, _runner(fmt, exported), imgsz, image_paths, tolerance, batch=bool(export_args.get("dynamic"))
    )
    result = ExportResult(fmt, exported, _size(exported), imgsz, seconds, parity, {"end2end": end2end})
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


def _check_export_args(weights: Path, fmt: str, imgsz: int, tolerance: float) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if weights.suffix.lower() != ".pt":
        raise ModelLoadError(f"{weights}: expected a .pt checkpoint")
    if not weights.is_file():
        raise ModelLoadError(f"model file not found: {weights}")
    if imgsz < 32 or imgsz % 32:
        raise ConfigError(f"--imgsz must be a multiple of 32 (the largest stride), got {imgsz}")
    if not tolerance > 0:
        raise ConfigError(f"the parity tolerance must be positive, got {tolerance}")
    package = _FORMAT_PACKAGES[fmt]
    if package is not None:
        _require(*package, fmt)


def _require(package: str, minimum: str, fmt: str) -> None:
    """Fail unless `package` >= `minimum` is importable: Ultralytics would otherwise try to pip-install it."""
    from ultralytics.utils.checks import check_version

    if importlib.util.find_spec(package) is None:
        raise ExportError(f"{fmt} export needs the '{package}' package, which is not installed (pip install {package})")
    installed = importlib.metadata.version(package)
    if not check_version(installed, f">={minimum}"):
        raise ExportError(f"{fmt} export needs {package}>={minimum}, found {installed} (pip install -U {package})")


def _default_out(weights: Path, fmt: str) -> Path:
    """Where Ultralytics itself would write the export: beside the weights."""
    return {
        "onnx": weights.with_suffix(".onnx"),
        "torchscript": weights.with_suffix(".torchscript"),
        "openvino": weights.with_name(f"{weights.stem}_openvino_model"),
    }[fmt]


def _run_exporter(weights: Path, fmt: str, imgsz: int, out: Path, *, end2end: bool, **export_args) -> Path:
    """Run Ultralytics' exporter on a temporary copy of `weights` and move its output onto `out` atomically."""
    from ultralytics import YOLO

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from e
    try:
        copy = work / weights.name
        shutil.copyfile(weights, copy)
        args = {"simplify": False, **export_args} if fmt == "onnx" else dict(export_args)
        if end2end:
            args["nms"] = False  # Ultralytics' switch for the NMS-free one-to-one head
        try:
            produced = YOLO(str(copy)).export(format=fmt, imgsz=imgsz, device="cpu", batch=1, **args)
        except Exception as e:  # the exporter raises many kinds; each is a one-line failure of this export
            raise ExportError(f"{fmt} export of {weights} failed: {_first_line(e)}") from e
        if not produced or not Path(produced).exists():
            raise ExportError(f"{fmt} export of {weights} produced no file")
        _replace(Path(produced), out)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _replace(src: Path, dst: Path) -> None:
    """Move a file or folder onto `dst` in one rename (a folder replacing a folder: the old one is removed after)."""
    if dst.is_dir() and src.is_dir():
        trash = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _runner(fmt: str, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function running the exported model on one NCHW float32 batch, in the format's own runtime."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if fmt == "torchscript":
        module = torch.jit.load(str(path), map_location="cpu").eval()

        def run_torchscript(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                y = module(torch.from_numpy(x))
            return (y[0] if isinstance(y, (list, tuple)) else y).numpy()

        return run_torchscript
    import openvino as ov

    # f32 explicitly: on CPUs with bf16 units OpenVINO otherwise runs in bf16 (boxes off by pixels), which would
    # test the runtime's precision choice, not the export.
    compiled = ov.Core().compile_model(str(next(path.glob("*.xml"))), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda x: np.asarray(compiled(x)[0])


def check_parity(
    model: torch.nn.Module,
    run: Callable[[np.ndarray], np.ndarray],
    imgsz: int,
    images: Sequence[str | Path],
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    batch: bool = False,
) -> ParityCheck:
    """Compare `run` (an exported model) with the PyTorch `model` on letterboxed `images`.

    Images go one by one, or all in one batch when `batch` (a dynamic-batch export). Boxes and scores are compared
    separately, each relative to its range (see `DEFAULT_TOLERANCE`).
    """
    stride = int(max(getattr(model, "stride", torch.tensor([32])).max().item(), 32))
    inputs = [letterbox(p, imgsz, stride) for p in images]
    if batch:
        inputs = [np.concatenate(inputs)]
    box = score = total = relative = 0.0
    model = model.eval()
    for x in inputs:
        with torch.no_grad():
            y = model(torch.from_numpy(x))
        want = (y[0] if isinstance(y, (list, tuple)) else y).float().numpy()
        got = np.asarray(run(x), dtype=np.float32)
        if got.shape != want.shape:
            raise ExportError(f"the exported model's output has shape {got.shape}, PyTorch's {want.shape}")
        end2end = getattr(model, "end2end", False)
        b, s, t = _compare(want, got, end2end)
        boxes = want[..., :4] if end2end else want[:, :4]
        # float32 rounding grows with magnitude: boxes of an untrained model can lie far outside the image
        relative = max(relative, b / max(imgsz, float(np.abs(boxes).max())), s)
        box, score, total = max(box, b), max(score, s), max(total, t)
    return ParityCheck(
        images=[str(p) for p in images],
        box_abs_diff=box,
        score_abs_diff=score,
        max_abs_diff=total,
        relative_diff=relative,
        tolerance=tolerance,
        passed=bool(relative <= tolerance),
    )


def _compare(want: np.ndarray, got: np.ndarray, end2end: bool) -> tuple[float, float, float]:
    """(max box diff, max score diff, max diff anywhere) between two outputs of the same model."""
    if not end2end:  # (B, 4 + classes, anchors): pixel xywh boxes, then class probabilities
        box = float(np.abs(want[:, :4] - got[:, :4]).max())
        score = float(np.abs(want[:, 4:] - got[:, 4:]).max())
        return box, score, max(box, score)
    # (B, max_det, 6): x1 y1 x2 y2 score class of the top-k candidates, sorted by score. Candidates whose scores tie
    # to within rounding may swap places, or swap in and out at the cut-off, so rows are matched, not compared in
    # place. Sorted scores are compared directly (order statistics move no more than the values themselves). Each row
    # scoring clearly above the cut-off must have a counterpart of the same class and near-equal score in the other
    # output, and its box is compared with the nearest one; rows at the cut-off may have no counterpart.
    score = float(np.abs(np.sort(want[..., 4], axis=-1) - np.sort(got[..., 4], axis=-1)).max())
    slack = max(10 * score, 1e-6)
    box = 0.0
    for a, b in ((want, got), (got, want)):
        for rows_a, rows_b in zip(a, b):
            cutoff = max(rows_a[:, 4].min(), rows_b[:, 4].min()) + slack
            for row in rows_a[rows_a[:, 4] > cutoff]:
                same = rows_b[(rows_b[:, 5] == row[5]) & (np.abs(rows_b[:, 4] - row[4]) <= slack)]
                if len(same):
                    box = max(box, float(np.abs(same[:, :4] - row[:4]).max(axis=1).min()))
                else:  # a detection the other output lacks: as different as it can be
                    box = max(box, float(np.abs(row[:4]).max()))
                    score = max(score, float(row[4]))
    return box, score, max(box, score)
