"""Label geometry of the synthetic shapes for each Ultralytics task: boxes, polygons, keypoints, oriented boxes.

`synthetic.render_image` paints the objects and keeps, for each one it labels, what it painted (`PaintedObject`);
`label_line(task, obj, imgsz)` turns that into the object's line of the YOLO label file. Every task labels the same
objects (those left visible enough) in the same images, so only the label files and data.yaml differ between tasks.

- detect: `cls cx cy w h`, the tight box of the object's visible pixels.
- segment: `cls x1 y1 ... xn yn` (n >= 3), the outline of the visible part, traced at 1/4 px or finer on the painted
  anti-aliased coverage (cv2.findContours) and simplified to within 0.3 px (cv2.approxPolyDP). Where strokes or other
  objects cut the visible part apart, the largest piece is kept; holes (rings, letters) are joined to the outline by a
  zero-width cut, so a filled polygon leaves them out.
- pose: the detect line, then `x y v` for `KEYPOINTS`, the top-most, right-most, bottom-most and left-most pixel of
  the whole painted shape (the middle one where several tie): v 2 where that pixel shows the object, 1 where a later
  object or stroke hides it (COCO's "labelled but not visible"), `0 0 0` where it lies outside the image.
- obb: `cls x1 y1 x2 y2 x3 y3 x4 y4`, the corners of the minimum-area rotated rectangle around the visible pixels
  (cv2.minAreaRect, cv2.boxPoints). Corners may lie slightly outside the image for objects cut by the border, as in
  DOTA; Ultralytics accepts and clips them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from yolo_prune.data.labels import polygon_line, pose_line, yolo_line

TASKS = ("detect", "segment", "pose", "obb")
KEYPOINTS = ("top", "right", "bottom", "left")
FLIP_IDX = [0, 3, 2, 1]  # a horizontal flip swaps right-most and left-most; top and bottom stay
_TRACE_SIDE = 512  # outlines are traced on the coverage upsampled 4 to 16 times, to about this many pixels a side
_TOLERANCE = 0.3  # largest distance in pixels between the traced outline and its simplified polygon


@dataclass(frozen=True, eq=False)
class PaintedObject:
    """One labelled object of a rendered image, in pixels of that image."""

    cls: int  # class id
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of its visible pixels (x1, y1 exclusive)
    visible: np.ndarray  # bool (y1 - y0, x1 - x0): which pixels of the box show the object in the end
    alpha: np.ndarray  # float coverage in [0, 1] of the whole shape as painted, on its square patch
    origin: tuple[int, int]  # image position (x, y) of the patch's top-left pixel; negative where cut by the border


def data_yaml_extra(task: str, classes: list[str]) -> dict:
    """The keys a task needs in data.yaml besides those of detection: the keypoints of a pose dataset."""
    if task != "pose":
        return {}
    names = {i: list(KEYPOINTS) for i in range(len(classes))}  # not one list: YAML would alias it
    return {"kpt_shape": [len(KEYPOINTS), 3], "flip_idx": FLIP_IDX, "kpt_names": names}


def label_line(task: str, obj: PaintedObject, imgsz: int) -> str:
    """The label line of `obj` in the format of `task` (see the module docstring), normalised by `imgsz`."""
    if task == "detect":
        return yolo_line(obj.cls, obj.box, imgsz, imgsz)
    if task == "segment":
        return polygon_line(obj.cls, np.clip(outline(obj, imgsz), 0, imgsz), imgsz, imgsz)
    if task == "pose":
        return pose_line(obj.cls, obj.box, keypoints(obj, imgsz), imgsz, imgsz)
    if task == "obb":
        return polygon_line(obj.cls, rotated_box(obj), imgsz, imgsz)
    raise ValueError(task)  # pragma: no cover - checked in generate


def outline(obj: PaintedObject, imgsz: int) -> np.ndarray:
    """(n, 2) polygon in image pixels, n >= 3: the visible part's largest piece, holes joined by zero-width cuts."""
    x0, y0, x1, y1 = obj.box
    # Traced on the pixels upsampled `up` times: a contour runs through the centres of its outermost pixels, half an
    # upsampled pixel inside the edge, so small objects get more resolution (up to a crop of about 512 px a side).
    up = int(np.clip(_TRACE_SIDE // (max(x1 - x0, y1 - y0) + 2), 4, 16))
    soft = cv2.resize(_coverage(obj, imgsz), None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR) >= 0.5
    # The visible pixels as blocks: the fallback for slivers of faint pixels that the soft outline loses.
    blocks = np.kron(np.pad(obj.visible, 1), np.ones((up, up), bool))
    for mask in (soft, blocks):
        polygon = _largest_polygon(mask.astype(np.uint8), up)
        if polygon is not None:
            # Upsampled pixel u has its centre at (u + 0.5) / up in the padded crop, which starts at (x0 - 1, y0 - 1).
            return (polygon + 0.5) / up + (x0 - 1, y0 - 1)
    raise AssertionError("a block mask always has an outline")  # pragma: no cover


def _coverage(obj: PaintedObject, imgsz: int) -> np.ndarray:
    """The shape's painted coverage on the visible box grown by 1 px: where the object shows, and on its anti-aliased
    rim beside those pixels (where it was painted faintly, alpha < 0.5); 0 elsewhere and outside the image.

    Without the rim, the edge would move inwards: a 0.5 threshold between a pixel of 0.9 and one cut to 0 lies
    closer to the first than the edge painted between 0.9 and 0.3.
    """
    x0, y0, x1, y1 = obj.box
    ox, oy = obj.origin
    alpha = np.pad(obj.alpha, 1)[y0 - oy : y1 - oy + 2, x0 - ox : x1 - ox + 2]  # the patch has a margin of 1 px
    shown = np.pad(obj.visible, 1)
    rim = cv2.dilate(shown.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & (alpha < 0.5)
    rim[:, ~((np.arange(x0 - 1, x1 + 1) >= 0) & (np.arange(x0 - 1, x1 + 1) < imgsz))] = False
    rim[~((np.arange(y0 - 1, y1 + 1) >= 0) & (np.arange(y0 - 1, y1 + 1) < imgsz))] = False
    return np.where(shown | rim, alpha, 0).astype(np.float32)


def _largest_polygon(mask: np.ndarray, up: int) -> np.ndarray | None:
    """The simplified outline of the largest piece of `mask` with its holes spliced in, or None if under 3 points."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outer = [i for i, h in enumerate(hierarchy[0]) if h[3] < 0]
    best = max(outer, key=lambda i: cv2.contourArea(contours[i]))
    polygon = _simplify(contours[best], up)
    if polygon is None:
        return None
    for i, h in enumerate(hierarchy[0]):
        hole = _simplify(contours[i], up) if h[3] == best and cv2.contourArea(contours[i]) >= up * up else None
        if hole is not None:
            polygon = _splice(polygon, hole)
    return polygon.astype(np.float64)


def _simplify(contour: np.ndarray, up: int) -> np.ndarray | None:
    points = cv2.approxPolyDP(contour, _TOLERANCE * up, True).reshape(-1, 2)
    if len(points) < 3:
        points = contour.reshape(-1, 2)
    return points if len(points) >= 3 else None


def _splice(polygon: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """One polygon that runs around `polygon`, along a cut to `hole`, around the hole and back along the cut."""
    distance = ((polygon[:, None, :] - hole[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(int(distance.argmin()), distance.shape)
    return np.concatenate([polygon[: i + 1], np.roll(hole, -j, 0), hole[j : j + 1], polygon[i:]])


def keypoints(obj: PaintedObject, imgsz: int) -> list[tuple[float, float, int]]:
    """`(x, y, v)` in image pixels for each of `KEYPOINTS` (pixel centres), `(0, 0, 0)` outside the image."""
    ys, xs = np.nonzero(obj.alpha >= 0.5)  # the pixels the shape paints, as in render_image
    x0, y0, x1, y1 = obj.box
    ox, oy = obj.origin
    points = []
    for extreme in (ys == ys.min(), xs == xs.max(), ys == ys.max(), xs == xs.min()):
        tx, ty = xs[extreme], ys[extreme]  # a row or a column of pixels
        middle = np.lexsort((tx, ty))[len(tx) // 2]
        x, y = int(tx[middle]) + ox, int(ty[middle]) + oy
        if not (0 <= x < imgsz and 0 <= y < imgsz):
            points.append((0.0, 0.0, 0))
            continue
        shown = x0 <= x < x1 and y0 <= y < y1 and bool(obj.visible[y - y0, x - x0])
        points.append((x + 0.5, y + 0.5, 2 if shown else 1))
    return points


def rotated_box(obj: PaintedObject) -> np.ndarray:
    """(4, 2) corners in image pixels of the minimum-area rotated rectangle holding every visible pixel (square)."""
    x0, y0, _, _ = obj.box
    contours, _ = cv2.findContours(obj.visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    centres = np.concatenate(contours).reshape(-1, 1, 2)
    corners = (centres + np.array([[0, 0], [1, 0], [0, 1], [1, 1]])).reshape(-1, 2) + (x0, y0)
    return cv2.boxPoints(cv2.minAreaRect(corners.astype(np.float32))).astype(np.float64)
