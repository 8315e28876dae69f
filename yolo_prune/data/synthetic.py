"""A seeded synthetic dataset (shapes and glyphs on cluttered backgrounds) for offline demos and tests.

`generate(out)` writes the Ultralytics YOLO layout `out/images/{train,val}/*.jpg`, `out/labels/{train,val}/*.txt`
and `out/data.yaml` (absolute `path:`), plus `out/synthetic.json`, the manifest of the arguments and box counts.
`generate(out, task=...)` labels the same images for detection (the default), instance segmentation, pose (4
keypoints) or oriented boxes; the label geometry of each task is in `synthetic_labels`.

Design choices:
- Two difficulty presets (`DIFFICULTIES`). The default, `easy`, is learnable from scratch in minutes on a CPU, so the
  demo's baseline has a clearly non-zero mAP from which pruning losses and recoveries show: 4 classes with distinct
  silhouettes, objects of 16 px and up, 0 to 5 per image, muted backgrounds, strong contrast, little clutter, mild
  noise. It is not trivial: objects still overlap, are cut by the border and are sometimes crossed by strokes.
  `hard` (the version-1 look) has up to 8 objects from 8 px, busy backgrounds, clutter strokes that look like object
  edges, more blur, noise and JPEG artefacts; a nano detector stays far from solving it in a short run.
- Labels are the tight box of the pixels that stay visible (object mask minus what later objects and strokes cover,
  clipped to the image). Objects left mostly hidden or under 2 px are not labelled, as annotators would skip them.
  Polygons and oriented boxes follow the same visible pixels; keypoints are extreme points of the whole shape.
- Every image has its own `numpy.random.Generator` seeded by (seed, split, index): no global random state, the same
  arguments give the same files, and image i does not change when only the image counts change.
- The folder is built beside `out` and renamed onto it at the end; the manifest is written last and compared on the
  next call, so a complete folder made with the same arguments is reused without rewriting anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from yolo_prune.atomic import replace_path, staging_dir
from yolo_prune.checks import MAX_IMGSZ
from yolo_prune.data.labels import write_data_yaml, write_labels
from yolo_prune.data.synthetic_labels import TASKS, PaintedObject, data_yaml_extra, label_line
from yolo_prune.errors import ConfigError

SHAPES = ("circle", "rectangle", "triangle", "star", "ring", "cross", "glyph")
DEFAULT_CLASSES = ("circle", "rectangle", "triangle", "star")  # the most distinct silhouettes
DEFAULT_N_TRAIN = 320
DEFAULT_N_VAL = 96
DEFAULT_IMGSZ = 128
DEFAULT_DIFFICULTY = "easy"
DEFAULT_TASK = "detect"
MANIFEST = "synthetic.json"
VERSION = 2  # bump when the drawing changes, so cached folders from older code are regenerated


@dataclass(frozen=True)
class Difficulty:
    """What makes the images hard. Ranges `(low, high)` are inclusive; probabilities are per image or per object."""

    max_objects: int  # objects drawn per image: uniform in 0..max_objects (some images are empty)
    min_object_px: float  # smallest object diameter in pixels
    max_object_fraction: float  # largest object diameter, as a fraction of the image side (log-uniform in between)
    min_visible: float  # label an object only if at least this share of its pixels is visible
    max_overlap: float  # a new object may cover at most this share of itself over earlier objects
    background_contrast: float  # 1: the two background colours as drawn; smaller: muted towards the first
    clutter: tuple[int, int]  # strokes drawn on the background before the objects (count range)
    clutter_width: tuple[int, int]  # their thickness in pixels
    occluder_p: float  # probability of strokes drawn over the objects (they hide what they cross)
    occluders: tuple[int, int]  # how many then
    min_contrast: float  # object colour at least this far (BGR distance) from the mean colour behind it
    shading_p: float  # probability of a linear shading across an object
    shading: float  # its largest amplitude (grey levels)
    texture_p: float  # probability of a speckled object fill
    texture: float  # its standard deviation (grey levels)
    blur_p: float  # probability of a Gaussian blur of the whole image
    noise_p: float  # probability of sensor noise
    noise: tuple[float, float]  # its standard deviation range (grey levels)
    jpeg_quality: tuple[int, int]  # JPEG quality range

    def __post_init__(self) -> None:
        ranges = ("clutter", "clutter_width", "occluders", "noise", "jpeg_quality")
        bad = [k for k in ranges if len(getattr(self, k)) != 2 or not 0 <= getattr(self, k)[0] <= getattr(self, k)[1]]
        shares = ("min_visible", "max_overlap", "occluder_p", "shading_p", "texture_p", "blur_p", "noise_p")
        bad += [k for k in shares if not 0 <= getattr(self, k) <= 1]
        bad += [k for k in ("max_objects", "background_contrast", "min_contrast") if getattr(self, k) < 0]
        bad += [k for k in ("min_object_px", "max_object_fraction") if getattr(self, k) <= 0]
        if self.clutter_width[0] < 1 or self.jpeg_quality[1] > 100:
            bad += ["clutter_width" if self.clutter_width[0] < 1 else "jpeg_quality"]
        if bad:
            raise ConfigError(f"Difficulty: bad {', '.join(bad)}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


DIFFICULTIES = {
    "easy": Difficulty(
        max_objects=5,
        min_object_px=16,  # two P3 (stride 8) cells
        max_object_fraction=0.5,
        min_visible=0.5,
        max_overlap=0.2,
        background_contrast=0.5,
        clutter=(0, 2),
        clutter_width=(1, 1),
        occluder_p=0.15,
        occluders=(1, 1),
        min_contrast=140,
        shading_p=0.2,
        shading=30,
        texture_p=0.1,
        texture=8,
        blur_p=0.1,
        noise_p=0.5,
        noise=(2, 5),
        jpeg_quality=(75, 95),
    ),
    "hard": Difficulty(  # the look of version 1
        max_objects=8,
        min_object_px=8,  # one P3 (stride 8) cell, so small objects stay hard
        max_object_fraction=0.5,
        min_visible=0.4,
        max_overlap=0.3,
        background_contrast=1.0,
        clutter=(0, 4),
        clutter_width=(1, 2),
        occluder_p=0.3,
        occluders=(1, 2),
        min_contrast=80,
        shading_p=0.4,
        shading=60,
        texture_p=0.2,
        texture=18,
        blur_p=0.3,
        noise_p=0.7,
        noise=(2, 10),
        jpeg_quality=(55, 95),
    ),
}

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
    difficulty: str | Difficulty = DEFAULT_DIFFICULTY,
    task: str = DEFAULT_TASK,
) -> Path:
    """Write the dataset into `out` (or reuse it if already made with these arguments); return `out/data.yaml`.

    `classes` picks and orders the classes from `SHAPES`; the index is the YOLO class id. `difficulty` is a preset
    name from `DIFFICULTIES` or a `Difficulty` of one's own (e.g. `dataclasses.replace(DIFFICULTIES["easy"],
    max_objects=8)`). `task` is one of `TASKS`: the images are the same for every task, the labels are boxes,
    polygons, boxes with keypoints or oriented boxes (see `synthetic_labels`). Raises `ConfigError` for bad arguments
    and for an `out` that holds something other than a synthetic dataset (never overwritten).
    """
    params = _check_args(
        n_train=n_train, n_val=n_val, imgsz=imgsz, seed=seed, classes=classes, difficulty=difficulty, task=task
    )
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out must be a folder")
    if _is_complete(out, params):
        return out / "data.yaml"
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ConfigError(f"{out} is not empty and is not a synthetic dataset; choose another --out")

    with staging_dir(out) as staging:
        manifest = _write_dataset(staging, out, params)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")  # last: complete
        _move_into_place(staging, out, params)
    return out / "data.yaml"


def read_manifest(out: str | Path) -> dict:
    """The manifest of a generated folder: `params`, and `images` and `boxes` (per class) for each split."""
    path = Path(out) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a synthetic dataset manifest ({type(e).__name__})") from None


def _check_args(
    *, n_train: int, n_val: int, imgsz: int, seed: int, classes: Sequence[str], difficulty: str | Difficulty, task: str
) -> dict:
    # named by their CLI options (`yolo-prune synth`): --train is generate()'s n_train, --val its n_val
    counts = (("--train", n_train, 1), ("--val", n_val, 1), ("--imgsz", imgsz, 32), ("--seed", seed, 0))
    for name, value, low in counts:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if imgsz > MAX_IMGSZ:
        raise ConfigError(f"--imgsz must be at most {MAX_IMGSZ}, got {imgsz}")
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
        raise ConfigError(f"classes must be a non-empty list of names from {', '.join(SHAPES)}")
    unknown = [c for c in classes if c not in SHAPES]
    if unknown:
        raise ConfigError(f"unknown class name(s) {', '.join(map(str, unknown))}; choose from {', '.join(SHAPES)}")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"classes repeat a name: {', '.join(classes)}")
    if isinstance(difficulty, Difficulty):
        level = difficulty.to_dict()  # recorded in full, so the cache tells custom settings apart
    elif isinstance(difficulty, str) and difficulty in DIFFICULTIES:
        level = difficulty
    else:
        raise ConfigError(f"--difficulty must be one of {', '.join(DIFFICULTIES)} or a Difficulty, got {difficulty!r}")
    if not isinstance(task, str) or task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    params = {
        "n_train": int(n_train),
        "n_val": int(n_val),
        "imgsz": int(imgsz),
        "seed": int(seed),
        "classes": [*classes],
        "difficulty": level,
    }
    # Part of the identity, so the tasks never share a cache; left out for detect, whose manifests predate tasks.
    return params if task == DEFAULT_TASK else {**params, "task": task}


def _difficulty(params: dict) -> Difficulty:
    level = params["difficulty"]
    if isinstance(level, str):
        return DIFFICULTIES[level]
    return Difficulty(**{k: tuple(v) if isinstance(v, list) else v for k, v in level.items()})


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
    try:
        replace_path(staging, out)
    except OSError:
        raise ConfigError(f"{out} appeared while generating and is not empty; choose another --out") from None


def _write_dataset(root: Path, final: Path, params: dict) -> dict:
    classes, imgsz, level = params["classes"], params["imgsz"], _difficulty(params)
    task = params.get("task", DEFAULT_TASK)
    images: dict[str, int] = {}
    boxes: dict[str, dict[str, int]] = {}
    for split_id, split in enumerate(_SPLITS):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        counts = dict.fromkeys(classes, 0)
        n = params[f"n_{split}"]
        for i in range(n):
            rng = np.random.default_rng([params["seed"], split_id, i])
            image, objects, quality = render_image(rng, imgsz, classes, level)
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:  # pragma: no cover - OpenCV always encodes uint8 BGR
                raise RuntimeError("OpenCV could not encode a JPEG")
            (root / "images" / split / f"{i:06d}.jpg").write_bytes(encoded.tobytes())
            write_labels(root / "labels" / split / f"{i:06d}.txt", [label_line(task, o, imgsz) for o in objects])
            for o in objects:
                counts[classes[o.cls]] += 1
        images[split], boxes[split] = n, counts
    name = params["difficulty"] if isinstance(params["difficulty"], str) else "custom"
    about = name if task == DEFAULT_TASK else f"{name}, {task}"
    header = f"synthetic shapes made by yolo-prune synth (seed {params['seed']}, {about}); see {MANIFEST}"
    write_data_yaml(root, final, _SPLITS, classes, header, data_yaml_extra(task, classes))
    return {**_identity(params), "images": images, "boxes": boxes}


def render_image(
    rng: np.random.Generator, imgsz: int, classes: Sequence[str], level: Difficulty = DIFFICULTIES[DEFAULT_DIFFICULTY]
) -> tuple[np.ndarray, list[PaintedObject], int]:
    """One BGR uint8 image, its labelled objects (class id, visible box and pixels, painted shape), a JPEG quality.

    Objects are painted in order, later ones over earlier ones; `owner` records which object each pixel shows, so the
    labels follow from what is visible at the end rather than from the shapes as drawn.
    """
    img = _background(rng, imgsz, level.background_contrast)
    _clutter(rng, img, count=int(rng.integers(level.clutter[0], level.clutter[1] + 1)), width=level.clutter_width)
    owner = np.full((imgsz, imgsz), -1, np.int16)
    objects: list[tuple[int, int, np.ndarray, tuple[int, int]]] = []  # (class id, full pixel count, alpha, origin)
    min_d = level.min_object_px
    max_d = max(min_d + 1, level.max_object_fraction * imgsz)
    for _ in range(int(rng.integers(0, level.max_objects + 1))):
        cls = int(rng.integers(len(classes)))
        diameter = float(np.exp(rng.uniform(math.log(min_d), math.log(max_d))))  # log-uniform: many small objects
        alpha = _shape_alpha(classes[cls], diameter, rng)
        solid = alpha >= 0.5
        full = int(solid.sum())
        if full < 4:
            continue
        placed = _place(rng, owner, solid, imgsz, level)
        if placed is None:
            continue
        k = len(objects)
        _paint(rng, img, owner, alpha, solid, placed, k, level)
        objects.append((cls, full, alpha, placed[:2]))
    if rng.random() < level.occluder_p:  # strokes over the objects: partial occlusion by clutter
        count = int(rng.integers(level.occluders[0], level.occluders[1] + 1))
        strokes = _clutter(rng, img, count=count, width=(1, max(2, imgsz // 50)))
        owner[strokes] = -1
    labels = []
    for k, (cls, full, alpha, origin) in enumerate(objects):
        mine = owner == k
        ys, xs = np.nonzero(mine)
        if len(xs) < level.min_visible * full:
            continue
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            labels.append(PaintedObject(cls, (x0, y0, x1, y1), mine[y0:y1, x0:x1], alpha, origin))
    quality = int(rng.integers(level.jpeg_quality[0], level.jpeg_quality[1] + 1))
    return _degrade(rng, img, level), labels, quality


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(40, 256), rng.integers(40, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _background(rng: np.random.Generator, size: int, contrast: float = 1.0) -> np.ndarray:
    """Float32 BGR: a gradient, smooth blotches, stripes or fine texture between two random colours."""
    c0, c1 = _random_color(rng), _random_color(rng)
    c1 = c0 + (c1 - c0) * contrast
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
    rng: np.random.Generator, owner: np.ndarray, solid: np.ndarray, size: int, level: Difficulty
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
        if inside.sum() < level.min_visible * solid.sum():
            continue
        if (owner[iy, ix][inside] >= 0).mean() <= level.max_overlap:
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
    level: Difficulty,
) -> None:
    """Blend a coloured (sometimes shaded or textured) fill through `alpha`; mark the solid pixels as object k."""
    _, _, iy, ix, py, px = placed
    a, inside = alpha[py, px][..., None], solid[py, px]
    region = img[iy, ix]
    behind = region[inside].mean(0)
    color = _random_color(rng)
    for _ in range(10):  # keep some contrast with what is behind, or the label would be unlearnable
        if np.linalg.norm(color - behind) >= level.min_contrast:
            break
        color = _random_color(rng)
    else:
        color = np.where(behind < 128, 255.0, 0.0).astype(np.float32)  # the far corner of the colour cube
    h, w = a.shape[:2]
    fill = np.broadcast_to(color, (h, w, 3)).astype(np.float32)
    if rng.random() < level.shading_p:  # shading across the object
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w, 1)
        angle = rng.uniform(0, 2 * math.pi)
        amplitude = rng.uniform(-level.shading, level.shading)
        fill = fill + (amplitude * (xx * math.cos(angle) + yy * math.sin(angle) - 0.5))[..., None]
    if rng.random() < level.texture_p:  # speckled texture
        fill = fill + rng.normal(0, level.texture, (h, w, 1)).astype(np.float32)
    region *= 1 - a
    region += a * fill
    owner[iy, ix][inside] = k


def _degrade(rng: np.random.Generator, img: np.ndarray, level: Difficulty) -> np.ndarray:
    """Camera-like defects: sometimes blur, often sensor noise; then 8-bit."""
    if rng.random() < level.blur_p:
        img = cv2.GaussianBlur(img, (3, 3), float(rng.uniform(0.5, 1.0)))
    if rng.random() < level.noise_p:
        img = img + rng.normal(0, rng.uniform(*level.noise), img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)
