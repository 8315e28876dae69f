"""The parity check: an exported model must compute what the PyTorch model computes, on real images.

The exported file runs on real, letterboxed images (Ultralytics' own sample photos by default) and is compared with
the PyTorch model on the same tensors, boxes and scores each relative to their range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from yolo_prune.errors import DataError, ExportError

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


@dataclass
class ParityCheck:
    """How far an exported model's outputs are from the PyTorch model's on the same letterboxed images."""

    images: list[str]
    box_abs_diff: float  # pixels
    score_abs_diff: float  # probability units
    max_abs_diff: float  # over the whole output tensor, in its own units
    relative_diff: float  # max(box diff / box range, score diff / 1, extras diff / their range): what is compared
    tolerance: float
    passed: bool
    extra_abs_diff: float = (
        0.0  # a task's extra channels and outputs: mask coefficients and prototypes, keypoints, angle
    )

    def to_dict(self) -> dict:
        return dict(vars(self))


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
    box = score = extra = total = relative = 0.0
    model = model.eval()
    end2end = getattr(model, "end2end", False)
    nc = int(getattr(model.model[-1], "nc", 0)) if hasattr(model, "model") else 0
    for x in inputs:
        with torch.no_grad():
            y = model(torch.from_numpy(x))
        wants = _reference_outputs(y)
        gots = [np.asarray(o, dtype=np.float32) for o in run(x)]
        got_shapes, want_shapes = [g.shape for g in gots], [w.shape for w in wants]
        if got_shapes != want_shapes:
            raise ExportError(f"the exported model's outputs have shapes {got_shapes}, PyTorch's {want_shapes}")
        want, got = wants[0], gots[0]
        b, s, t = _compare(want, got, end2end, nc)
        boxes = want[..., :4] if end2end else want[:, :4]
        # float32 rounding grows with magnitude: boxes of an untrained model can lie far outside the image
        relative = max(relative, b / max(imgsz, float(np.abs(boxes).max())), s)
        # Extra channels (non-end-to-end) and extra outputs, each relative to its own magnitude (at least 1).
        pairs = ([(want[:, 4 + nc :], got[:, 4 + nc :])] if not end2end and nc else []) + list(zip(wants[1:], gots[1:]))
        for w, g in pairs:
            if w.size:
                e = float(np.abs(w - g).max())
                extra, total = max(extra, e), max(total, e)
                relative = max(relative, e / max(1.0, float(np.abs(w).max())))
        box, score, total = max(box, b), max(score, s), max(total, t)
    return ParityCheck(
        images=[str(p) for p in images],
        box_abs_diff=box,
        score_abs_diff=score,
        max_abs_diff=total,
        relative_diff=relative,
        tolerance=tolerance,
        passed=bool(relative <= tolerance),
        extra_abs_diff=extra,
    )


def _reference_outputs(y: object) -> list[np.ndarray]:
    """What an export of the model outputs, from the PyTorch model's eval-mode result: its first element (decoded
    predictions, or predictions and mask prototypes), as float32 arrays."""
    first = y[0] if isinstance(y, (list, tuple)) else y
    parts = list(first) if isinstance(first, (list, tuple)) else [first]
    return [t.float().numpy() for t in parts]


def _compare(want: np.ndarray, got: np.ndarray, end2end: bool, nc: int = 0) -> tuple[float, float, float]:
    """(max box diff, max score diff, max diff anywhere) between two outputs of the same model.

    Without end-to-end decoding the output is (B, 4 + classes [+ a task's extras], anchors); `nc` classes (0: all
    channels after the boxes are scores). End-to-end rows are compared on their boxes, scores and classes.
    """
    if not end2end:  # pixel xywh boxes, then class probabilities
        box = float(np.abs(want[:, :4] - got[:, :4]).max())
        scores = slice(4, 4 + nc) if nc else slice(4, None)
        score = float(np.abs(want[:, scores] - got[:, scores]).max())
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
