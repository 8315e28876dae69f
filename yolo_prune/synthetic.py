"""A seeded synthetic detection dataset (shapes and glyphs on cluttered backgrounds) for offline demos and tests.

`generate(out)` writes the Ultralytics YOLO layout `out/images/{train,val}/*.jpg`, `out/labels/{train,val}/*.txt`
and `out/data.yaml` (absolute `path:`), plus `out/synthetic.json`, the manifest of the arguments and box counts.

Design choices:
- Hard enough that a nano detector does not saturate in a few epochs (so pruning losses and recoveries show): small
  objects, busy backgrounds, occlusion, clutter strokes that look like object edges, blur, noise, JPEG artefacts.
- Labels are the tight box of the pixels that stay visible (object mask minus what later objects and strokes cover,
  clipped to the image). Objects left mostly hidden or under 2 px are not labelled, as annotators would skip them.
- Every image has its own `numpy.random.Generator` seeded by (seed, split, index): no global random state, the same
  arguments give the same files, and image i does not change when only the image counts change.
- The folder is built beside `out` and renamed onto it at the end; the manifest is written last and compared on the
  next call, so a complete folder made with the same arguments is reused without rewriting anything.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import yaml

from yolo_prune.errors import ConfigError

SHAPES = ("circle", "rectangle", "triangle", "star", "ring", "cross", "glyph")
DEFAULT_CLASSES = ("circle", "rectangle", "triangle", "star", "ring")
DEFAULT_N_TRAIN = 320
DEFAULT_N_VAL = 96
DEFAULT_IMGSZ = 128
MAX_OBJECTS = 8  # objects drawn per image: uniform in 0..MAX_OBJECTS (some images are empty)
MIN_OBJECT_PX = 8  # smallest object diameter: one P3 (stride 8) cell, so small objects stay hard
MAX_OBJECT_FRACTION = 0.5  # largest object diameter, as a fraction of the image side
MIN_VISIBLE = 0.4  # label an object only if at least this share of its pixels is visible
MAX_PLACEMENT_OVERLAP = 0.3  # a new object may cover at most this share of itself over earlier objects
MANIFEST = "synthetic.json"
VERSION = 1  # bump when the drawing changes, so cached folders from older code are regenerated

_SPLITS = ("train", "val")
_SUPERSAMPLE = 4  # shape masks are drawn 4x larger and area-downsampled: anti-aliased edges, sub-pixel sizes
_GLYPHS = "ABEFHKMNPRSWZ"  # letters unlike the other classes (no O, X, T, I, V...)
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)


def generate(
    out: str | Path,
    *,
    n_train: int = DEFAULT_N_TRAIN,
    n_val: int = DEFAULT_N_VAL,
    imgsz: int = DEFAULT_IMGSZ,
    seed: int = 0,
    classes: Sequence[str] = DEFAULT_CLASSES,
) -> Path:
    """Write the dataset into `out` (or reuse it if already made with these arguments); return `out/data.yaml`.

    `classes` picks and orders the classes from `SHAPES`; the index is the YOLO class id. Raises `ConfigError` for
    bad arguments and for an `out` that holds something other than a synthetic dataset (never overwritten).
    """
    params = _check_args(n_train=n_train, n_val=n_val, imgsz=imgsz, seed=seed, classes=classes)
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out must be a folder")
    if _is_complete(out, params):
        return out / "data.yaml"
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ConfigError(f"{out} is not empty and is not a synthetic dataset; choose another --out")

    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        staging.mkdir(parents=True)
    except OSError as e:
        raise ConfigError(f"cannot create {out}: {e.strerror}") from None
    try:
        manifest = _write_dataset(staging, out, params)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")  # last: complete
        _move_into_place(staging, out, params)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "data.yaml"


def read_manifest(out: str | Path) -> dict:
    """The manifest of a generated folder: `params`, and `images` and `boxes` (per class) for each split."""
    path = Path(out) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a synthetic dataset manifest ({type(e).__name__})") from None


def _check_args(*, n_train: int, n_val: int, imgsz: int, seed: int, classes: Sequence[str]) -> dict:
    for name, value, low in (("n_train", n_train, 1), ("n_val", n_val, 1), ("imgsz", imgsz, 32), ("seed", seed, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
        raise ConfigError(f"classes must be a non-empty list of names from {', '.join(SHAPES)}")
    unknown = [c for c in classes if c not in SHAPES]
    if unknown:
        raise ConfigError(f"unknown class name(s) {', '.join(map(str, unknown))}; choose from {', '.join(SHAPES)}")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"classes repeat a name: {', '.join(classes)}")
    return {"n_train": int(n_train), "n_val": int(n_val), "imgsz": int(imgsz), "seed": int(seed), "classes": [*classes]}


def _identity(params: dict) -> dict:
    """What the cache compares: the generator, its version and the arguments."""
    return {"generator": "yolo_prune.synthetic", "version": VERSION, "params": params}


def _is_complete(out: Path, params: dict) -> bool:
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or {k: manifest.get(k) for k in ("generator", "version", "params")} != _identity(
        params
    ):
        return False
    # The manifest is written last, so it means complete; counting files also catches images deleted since.
    for split in _SPLITS:
        n = params[f"n_{split}"]
        for sub, suffix in (("images", ".jpg"), ("labels", ".txt")):
            folder = out / sub / split
            if not folder.is_dir() or sum(1 for p in folder.iterdir() if p.suffix == suffix) != n:
                return False
    return (out / "data.yaml").is_file()


def _move_into_place(staging: Path, out: Path, params: dict) -> None:
    """Rename `staging` onto `out`; an older synthetic dataset there is moved aside first, then deleted."""
    if _is_complete(out, params):  # another process finished the same dataset meanwhile
        return
    old = None
    if out.is_dir() and any(out.iterdir()):
        old = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(out, old)
    try:
        os.replace(staging, out)  # atomic; onto an absent or empty folder only
    except OSError:
        raise ConfigError(f"{out} appeared while generating and is not empty; choose another --out") from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _write_dataset(root: Path, final: Path, params: dict) -> dict:
    classes, imgsz = params["classes"], params["imgsz"]
    images: dict[str, int] = {}
    boxes: dict[str, dict[str, int]] = {}
    for split_id, split in enumerate(_SPLITS):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        counts = dict.fromkeys(classes, 0)
        n = params[f"n_{split}"]
        for i in range(n):
            rng = np.random.default_rng([params["seed"], split_id, i])
            image, labels, quality = render_image(rng, imgsz, classes)
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:  # pragma: no cover - OpenCV always encodes uint8 BGR
                raise RuntimeError("OpenCV could not encode a JPEG")
            (root / "images" / split / f"{i:06d}.jpg").write_bytes(encoded.tobytes())
            lines = [
                f"{c} {(x0 + x1) / 2 / imgsz:.6f} {(y0 + y1) / 2 / imgsz:.6f} {(x1 - x0) / imgsz:.6f} "
                f"{(y1 - y0) / imgsz:.6f}\n"
                for c, x0, y0, x1, y1 in labels
            ]
            (root / "labels" / split / f"{i:06d}.txt").write_text("".join(lines), encoding="utf-8")
            for c, *_ in labels:
                counts[classes[c]] += 1
        images[split], boxes[split] = n, counts
    data = {"path": str(final), "train": "images/train", "val": "images/val", "names": dict(enumerate(classes))}
    header = f"# synthetic shapes made by yolo-prune synth (seed {params['seed']}); see {MANIFEST}\n"
    (root / "data.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return {**_identity(params), "images": images, "boxes": boxes}


def render_image(
    rng: np.random.Generator, imgsz: int, classes: Sequence[str]
) -> tuple[np.ndarray, list[tuple[int, int, int, int, int]], int]:
    """One BGR uint8 image, its labels `(class id, x0, y0, x1, y1)` in pixels (x1, y1 exclusive), a JPEG quality.

    Objects are painted in order, later ones over earlier ones; `owner` records which object each pixel shows, so the
    labels follow from what is visible at the end rather than from the shapes as drawn.
    """
    img = _background(rng, imgsz)
    _clutter(rng, img, count=int(rng.integers(0, 5)), width=(1, 2))
    owner = np.full((imgsz, imgsz), -1, np.int16)
    objects: list[tuple[int, int]] = []  # (class id, full pixel count of the mask)
    min_d, max_d = MIN_OBJECT_PX, max(MIN_OBJECT_PX + 1, MAX_OBJECT_FRACTION * imgsz)
    for _ in range(int(rng.integers(0, MAX_OBJECTS + 1))):
        cls = int(rng.integers(len(classes)))
        diameter = float(np.exp(rng.uniform(math.log(min_d), math.log(max_d))))  # log-uniform: many small objects
        alpha = _shape_alpha(classes[cls], diameter, rng)
        solid = alpha >= 0.5
        full = int(solid.sum())
        if full < 4:
            continue
        placed = _place(rng, owner, solid, imgsz)
        if placed is None:
            continue
        k = len(objects)
        _paint(rng, img, owner, alpha, solid, placed, k)
        objects.append((cls, full))
    if rng.random() < 0.3:  # strokes over the objects: partial occlusion by clutter
        strokes = _clutter(rng, img, count=int(rng.integers(1, 3)), width=(1, max(2, imgsz // 50)))
        owner[strokes] = -1
    labels = []
    for k, (cls, full) in enumerate(objects):
        ys, xs = np.nonzero(owner == k)
        if len(xs) < MIN_VISIBLE * full:
            continue
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            labels.append((cls, x0, y0, x1, y1))
    return _degrade(rng, img), labels, int(rng.integers(55, 96))


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(40, 256), rng.integers(40, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Float32 BGR: a gradient, smooth blotches, stripes or fine texture between two random colours."""
    c0, c1 = _random_color(rng), _random_color(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = int(rng.integers(4))
    if kind == 0:  # linear gradient
        angle = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(angle) + yy * math.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == 1:  # smooth blotches: coarse noise upsampled
        k = int(rng.integers(3, 9))
        t = cv2.resize(rng.random((k, k)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    elif kind == 2:  # stripes with a random period and direction
        angle, period = rng.uniform(0, math.pi), rng.uniform(4, 24) / size
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period)
        c1 = c0 + (c1 - c0) * rng.uniform(0.2, 0.6)  # muted, so stripes do not drown the objects
    else:  # fine texture
        k = max(4, size // int(rng.integers(2, 6)))
        t = cv2.resize(rng.random((k, k)).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
        c1 = c0 + (c1 - c0) * rng.uniform(0.2, 0.5)
    t = np.clip(t, 0, 1)[..., None]
    return c0 * (1 - t) + c1 * t


def _clutter(rng: np.random.Generator, img: np.ndarray, count: int, width: tuple[int, int]) -> np.ndarray:
    """Paint `count` random lines, polylines and arcs (not a class); return the mask of painted pixels."""
    size = img.shape[0]
    mask = np.zeros(img.shape[:2], np.uint8)
    for _ in range(count):
        layer = np.zeros_like(mask)
        thickness = int(rng.integers(width[0], width[1] + 1))
        kind = int(rng.integers(3))
        if kind == 0:
            p = rng.integers(-size // 4, size + size // 4, (2, 2))
            cv2.line(layer, (int(p[0, 0]), int(p[0, 1])), (int(p[1, 0]), int(p[1, 1])), 255, thickness, cv2.LINE_AA)
        elif kind == 1:
            pts = rng.integers(0, size, (int(rng.integers(3, 6)), 2)).astype(np.int32)
            cv2.polylines(layer, [pts], False, 255, thickness, cv2.LINE_AA)
        else:  # open arc: curved edges without being a circle or ring
            center = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            axes = (int(rng.integers(4, size // 2)), int(rng.integers(4, size // 2)))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(
                layer,
                center,
                axes,
                float(rng.uniform(0, 180)),
                start,
                start + rng.uniform(60, 240),
                255,
                thickness,
                cv2.LINE_AA,
            )
        a = (layer.astype(np.float32) / 255)[..., None]
        img *= 1 - a
        img += a * _random_color(rng)
        np.maximum(mask, layer, out=mask)
    return mask >= 128


def _shape_alpha(kind: str, diameter: float, rng: np.random.Generator) -> np.ndarray:
    """Coverage in [0, 1] of one randomly rotated shape that fits in a circle of `diameter` px, on a square patch."""
    side = int(math.ceil(diameter)) + 2
    s = side * _SUPERSAMPLE
    r = diameter / 2 * _SUPERSAMPLE  # circumscribed radius on the supersampled canvas
    c = s / 2
    hi = np.zeros((s, s), np.uint8)

    def poly(points: np.ndarray) -> None:
        cv2.fillPoly(hi, [np.round(points + c).astype(np.int32)], 255, cv2.LINE_8)

    def ellipse(rx: float, ry: float, value: int) -> None:
        cv2.ellipse(hi, (round(c), round(c)), (max(1, round(rx)), max(1, round(ry))), 0, 0, 360, value, -1)

    if kind == "circle":  # also mildly elliptic
        ellipse(r, r * rng.uniform(0.75, 1.0), 255)
    elif kind == "ring":
        ry = rng.uniform(0.8, 1.0)
        ellipse(r, r * ry, 255)
        inner = rng.uniform(0.45, 0.7)
        ellipse(r * inner, r * ry * inner, 0)
    elif kind == "rectangle":  # squares to 1:3 bars
        theta = math.atan(rng.uniform(0.33, 1.0))
        w, h = r * math.cos(theta), r * math.sin(theta)
        poly(np.array([[-w, -h], [w, -h], [w, h], [-w, h]]))
    elif kind == "triangle":
        angles = np.array([0.0, 120.0, 240.0]) + rng.uniform(-25, 25, 3)
        poly(r * np.stack([np.cos(np.radians(angles)), np.sin(np.radians(angles))], 1))
    elif kind == "star":
        n = int(rng.integers(5, 7))
        radii = np.where(np.arange(2 * n) % 2 == 0, r, r * rng.uniform(0.38, 0.55))
        angles = np.arange(2 * n) * math.pi / n
        poly(np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1))
    elif kind == "cross":
        half_w = rng.uniform(0.12, 0.22)  # arm half-width over arm half-length
        length = r / math.sqrt(1 + half_w**2)
        w = length * half_w
        poly(np.array([[-length, -w], [length, -w], [length, w], [-length, w]]))
        poly(np.array([[-w, -length], [w, -length], [w, length], [-w, length]]))
    elif kind == "glyph":  # a letter from cv2.putText, scaled so its box fits the circle
        letter, font = _GLYPHS[int(rng.integers(len(_GLYPHS)))], _FONTS[int(rng.integers(len(_FONTS)))]
        thickness = int(rng.integers(3, 8))
        (tw, th), base = cv2.getTextSize(letter, font, 3.0, thickness)
        pad = thickness + 2
        text = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
        cv2.putText(text, letter, (pad, pad + th), font, 3.0, 255, thickness, cv2.LINE_AA)
        ys, xs = np.nonzero(text)
        text = text[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        scale = 2 * r / math.hypot(*text.shape)
        gh, gw = max(1, round(text.shape[0] * scale)), max(1, round(text.shape[1] * scale))
        y0, x0 = round(c - gh / 2), round(c - gw / 2)
        hi[y0 : y0 + gh, x0 : x0 + gw] = cv2.resize(text, (gw, gh), interpolation=cv2.INTER_AREA)
    else:  # pragma: no cover - names are checked in generate
        raise ValueError(kind)
    rotation = cv2.getRotationMatrix2D((c, c), float(rng.uniform(0, 360)), 1.0)
    hi = cv2.warpAffine(hi, rotation, (s, s), flags=cv2.INTER_LINEAR)
    return cv2.resize(hi, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _place(
    rng: np.random.Generator, owner: np.ndarray, solid: np.ndarray, size: int
) -> tuple[int, int, slice, slice, slice, slice] | None:
    """Top-left corner and clipped image/patch slices for a position where the shape hides little of the others."""
    side = solid.shape[0]
    for _ in range(8):
        # Centres up to 10% of the diameter outside the image: some objects are cut by the border.
        cx, cy = rng.uniform(-0.1 * side, size + 0.1 * side, 2)
        x, y = round(cx - side / 2), round(cy - side / 2)
        ix, iy = slice(max(x, 0), min(x + side, size)), slice(max(y, 0), min(y + side, size))
        px, py = slice(ix.start - x, ix.stop - x), slice(iy.start - y, iy.stop - y)
        if ix.stop <= ix.start or iy.stop <= iy.start:
            continue
        inside = solid[py, px]
        if inside.sum() < MIN_VISIBLE * solid.sum():
            continue
        if (owner[iy, ix][inside] >= 0).mean() <= MAX_PLACEMENT_OVERLAP:
            return x, y, iy, ix, py, px
    return None


def _paint(
    rng: np.random.Generator,
    img: np.ndarray,
    owner: np.ndarray,
    alpha: np.ndarray,
    solid: np.ndarray,
    placed: tuple,
    k: int,
) -> None:
    """Blend a coloured (sometimes shaded or textured) fill through `alpha`; mark the solid pixels as object k."""
    _, _, iy, ix, py, px = placed
    a, inside = alpha[py, px][..., None], solid[py, px]
    region = img[iy, ix]
    behind = region[inside].mean(0)
    color = _random_color(rng)
    for _ in range(5):  # keep some contrast with what is behind, or the label would be unlearnable
        if np.linalg.norm(color - behind) >= 80:
            break
        color = _random_color(rng)
    else:
        color = 255 - behind
    h, w = a.shape[:2]
    fill = np.broadcast_to(color, (h, w, 3)).astype(np.float32)
    if rng.random() < 0.4:  # shading across the object
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w, 1)
        angle = rng.uniform(0, 2 * math.pi)
        fill = fill + (rng.uniform(-60, 60) * (xx * math.cos(angle) + yy * math.sin(angle) - 0.5))[..., None]
    if rng.random() < 0.2:  # speckled texture
        fill = fill + rng.normal(0, 18, (h, w, 1)).astype(np.float32)
    region *= 1 - a
    region += a * fill
    owner[iy, ix][inside] = k


def _degrade(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Camera-like defects: sometimes blur, usually sensor noise; then 8-bit."""
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), float(rng.uniform(0.5, 1.0)))
    if rng.random() < 0.7:
        img = img + rng.normal(0, rng.uniform(2, 10), img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)
