"""Pascal VOC and COCO JSON detection datasets -> an Ultralytics YOLO dataset folder.

The output is `out/images/<split>/`, `out/labels/<split>/*.txt` (`cls cx cy w h`, normalized to the image) and
`out/data.yaml` with an absolute `path:`, so `--data out/data.yaml` works from any directory. Images are copied, the
source is only read. The folder is built beside `out` and renamed onto it at the end, so an interrupted run never
leaves a half-written dataset.

Box coordinates are read as continuous pixel coordinates (`xmin`..`xmax`, as most VOC tools write them), clipped to
the image, and dropped when under 1 px wide or high after clipping; both are counted in the summary. Annotation
problems that concern one file or one box are counted and reported as warnings; problems with the dataset as a whole
(missing folders, unreadable JSON, overlapping split files) raise `DataError`.

VOC datasets come in several layouts (VOCdevkit, labelImg's flat folders, Roboflow's train/valid/test folders, any
tree of .xml files and images); `voc_layout` finds the annotation files and the image each one names.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from yolo_prune.atomic import replace_path, staging_dir
from yolo_prune.data.labels import write_data_yaml, write_labels, yolo_line
from yolo_prune.data.voc_layout import ImageFinder, find_layout
from yolo_prune.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
_EXIF_ORIENTATION = 0x0112
_EXIF_ROTATED = {5, 6, 7, 8}  # orientations that swap width and height once the viewer (and Ultralytics) applies them


@dataclass
class ConvertSummary:
    """What a conversion wrote and what it had to clip, drop or skip, so nothing is lost silently."""

    images: dict[str, int]  # images written per split
    boxes_written: int
    boxes_clipped: int  # written boxes that extended past the image and were clipped to it
    boxes_dropped: int  # boxes under 1 px wide or high after clipping (degenerate, inverted, outside the image)
    objects_skipped: int  # objects of a class not in `names`, and COCO crowd regions
    files_skipped: int  # malformed annotation files and missing or unreadable images
    names: list[str]  # class names; the index is the YOLO class id
    data_yaml: Path
    boxes_per_class: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready: paths as strings."""
        return {**asdict(self), "data_yaml": str(self.data_yaml)}


@dataclass
class _Record:
    """One source image and its objects, before class ids and splits are known."""

    key: str  # what splits and warnings call it: the VOC file's path without .xml (see VocLayout.key), COCO file_name
    image: Path | None  # None when the image file was not found
    size: tuple[int, int] | None  # (width, height) stated by the annotation, checked against the image
    objects: list[tuple[str, float, float, float, float]]  # class name, x1, y1, x2, y2 in pixels

    @property
    def id(self) -> str:
        """The VOC image id that ImageSets files list: the file stem."""
        return self.key.rsplit("/", 1)[-1]


def convert_voc(
    src: str | Path,
    out: str | Path,
    *,
    names: Sequence[str] | None = None,
    split_files: bool = True,
    val_fraction: float = 0.2,
    seed: int = 0,
    images: str | Path | None = None,
    annotations: str | Path | None = None,
) -> ConvertSummary:
    """Convert a Pascal VOC dataset at `src` into a YOLO dataset at `out`.

    `src` may be a VOCdevkit folder (`Annotations/*.xml`, `JPEGImages/`), a folder of images with an .xml file beside
    each (labelImg), Roboflow's export (`train/`, `valid/`, `test/`, each with its images and .xml files), or any tree
    of .xml files and images; `annotations` and `images` name the folders instead of finding them (see `voc_layout`).

    Splits come from split folders when there are any; otherwise from `ImageSets/Main/{train,val,test}.txt` when
    train.txt and val.txt exist (and `split_files`); otherwise from a `seed`ed shuffle that puts `val_fraction` of the
    images in val and the rest in train. Every object is kept, `difficult` ones included (Ultralytics has no such flag).

    Class ids follow `names` when given (objects of other classes are counted and skipped). Otherwise they follow the
    order in which classes first appear, reading the annotation files sorted by path and their objects in file order:
    deterministic, but data-dependent. On BCCD that gives WBC=0, RBC=1, Platelets=2, so pass
    `names=["RBC", "WBC", "Platelets"]` to match checkpoints trained with that order.
    """
    src = Path(src)
    names = _check_names(names)
    _check_fraction(val_fraction)
    images, annotations = (None if p is None else Path(p) for p in (images, annotations))
    layout = find_layout(src, images=images, annotations=annotations)
    out = _check_out(out)

    finder = ImageFinder(layout)
    records, folder_split, warnings, skipped_stems = [], {}, [], [p.stem for p in layout.outside]
    if layout.outside:
        folders = ", ".join(f"{folder.name}/" for folder in layout.split_folders)
        warnings.append(
            f"skipped {len(layout.outside)} .xml file(s) outside the split folders {folders}: "
            + _some(layout.show(p) for p in layout.outside)
        )
    for xml_file in layout.xml_files:
        try:
            record = _read_voc_xml(xml_file, layout.key(xml_file), finder)
        except ValueError as e:
            skipped_stems.append(xml_file.stem)
            warnings.append(f"skipped {layout.show(xml_file)}: {e}")
            continue
        records.append(record)
        folder_split[record.key] = layout.split_of(xml_file)
    if not records:
        raise DataError(f"none of the {len(layout.xml_files)} annotation files in {layout.base} could be read")
    unannotated = finder.unused((r.image for r in records if r.image), skipped_stems)
    if unannotated:
        warnings.append(f"{len(unannotated)} image(s) have no annotation file, left out: {_some(unannotated)}")

    if names is None:
        names = list(dict.fromkeys(obj[0] for r in records for obj in r.objects))
    sets_dir = src / "ImageSets" / "Main"
    have_sets = [s for s in SPLITS if (sets_dir / f"{s}.txt").is_file()] if split_files else []
    if layout.split_folders:
        assignment = {key: split for key, split in folder_split.items() if split}
        given = ", ".join(f"{folder.name}/" for folder in layout.split_folders)
        if have_sets:
            warnings.append(f"the folders {given} give the splits; ImageSets/Main is not used")
        if "val" not in layout.split_folders.values():
            warnings.append(f"the split folders are {given}, none of them valid/ or val/: the val split is empty")
    elif {"train", "val"} <= set(have_sets):
        assignment = _split_from_files(records, {s: sets_dir / f"{s}.txt" for s in have_sets}, warnings)
    else:
        if have_sets:
            warnings.append(f"ImageSets/Main has only {', '.join(have_sets)}.txt (needs train and val): seeded split")
        assignment = _seeded_split(records, val_fraction, seed)
    return _write_dataset(records, assignment, names, out, warnings, len(skipped_stems), source=src)


def convert_coco(
    annotations_json: str | Path,
    images_dir: str | Path,
    out: str | Path,
    *,
    names: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    split: str | None = None,
) -> ConvertSummary:
    """Convert a COCO `instances_*.json` and its image folder into a YOLO dataset at `out`.

    Class ids are the categories sorted by category id and renumbered 0..n-1 (COCO ids have gaps), unless `names`
    gives the order; objects of other classes and crowd regions (`iscrowd: 1`, which are not single objects) are
    counted and skipped. With `split` (train, val or test) every image goes to that split, e.g. to turn
    `instances_val2017.json` into a val set; otherwise a `seed`ed shuffle puts `val_fraction` in val.
    """
    annotations_json, images_dir = Path(annotations_json), Path(images_dir)
    names = _check_names(names)
    if split is not None and split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    if split is None:
        _check_fraction(val_fraction)
    if not annotations_json.is_file():
        raise DataError(f"COCO annotation file not found: {annotations_json}")
    if not images_dir.is_dir():
        raise DataError(f"--images {images_dir}: folder not found")
    out = _check_out(out)
    try:
        data = json.loads(annotations_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{annotations_json} is not valid JSON: {e}") from None
    try:
        categories, records, crowd = _read_coco(data, images_dir)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{annotations_json} is not a COCO instances file: {type(e).__name__} {e}") from None
    if not records:
        raise DataError(f"{annotations_json} lists no images")

    warnings = [f"skipped {crowd} crowd region(s) (iscrowd: 1)"] if crowd else []
    assignment = {r.key: split for r in records} if split else _seeded_split(records, val_fraction, seed)
    return _write_dataset(
        records, assignment, names or categories, out, warnings, 0, source=annotations_json, extra_skipped=crowd
    )


def _read_voc_xml(xml_file: Path, key: str, finder: ImageFinder) -> _Record:
    """One annotation file; ValueError (with the reason) when it is malformed or its image is ambiguous."""
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as e:
        raise ValueError(f"malformed XML ({e})") from None
    except OSError as e:
        raise ValueError(f"unreadable ({e.strerror})") from None
    if root.tag.lower() != "annotation":
        raise ValueError(f"not a VOC annotation (its root element is <{root.tag}>, not <annotation>)")
    image = finder.find(xml_file, root.findtext("filename") or "")
    try:  # only checked against the image; some exporters write 0 x 0
        size = (int(float(root.findtext("size/width"))), int(float(root.findtext("size/height"))))
    except (TypeError, ValueError):
        size = None
    objects = []
    for i, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        try:
            box = tuple(float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise ValueError(f"object {i} has no numeric <bndbox> xmin/ymin/xmax/ymax") from None
        if not name:
            raise ValueError(f"object {i} has no <name>")
        objects.append((name, *box))
    return _Record(key=key, image=image, size=size, objects=objects)


def _read_coco(data: dict, images_dir: Path) -> tuple[list[str], list[_Record], int]:
    """Category names in id order, one record per image, and the number of crowd regions left out."""
    cats = sorted(data["categories"], key=lambda c: int(c["id"]))
    id_to_name = {int(c["id"]): str(c["name"]) for c in cats}
    categories = [str(c["name"]) for c in cats]
    if len(set(categories)) != len(categories):
        raise ValueError(f"category names repeat: {[n for n, k in Counter(categories).items() if k > 1]}")
    records: dict[int, _Record] = {}
    for img in data["images"]:
        file_name = str(img["file_name"])
        path = next((p for p in (images_dir / file_name, images_dir / Path(file_name).name) if p.is_file()), None)
        size = (int(img["width"]), int(img["height"])) if "width" in img and "height" in img else None
        records[int(img["id"])] = _Record(key=file_name, image=path, size=size, objects=[])
    crowd = 0
    for i, ann in enumerate(data.get("annotations", [])):
        if ann.get("iscrowd", 0):
            crowd += 1
            continue
        image_id, category_id = int(ann["image_id"]), int(ann["category_id"])
        if image_id not in records or category_id not in id_to_name:
            raise ValueError(f"annotation {i} refers to unknown image_id {image_id} or category_id {category_id}")
        x, y, w, h = (float(v) for v in ann["bbox"])
        records[image_id].objects.append((id_to_name[category_id], x, y, x + w, y + h))
    return categories, list(records.values()), crowd


def _split_from_files(records: list[_Record], files: dict[str, Path], warnings: list[str]) -> dict[str, str]:
    """Record key -> split from VOC ImageSets files (which list ids); records listed nowhere are left out (and said)."""
    listed: dict[str, str] = {}
    for split, path in files.items():
        for image_id in path.read_text(encoding="utf-8").split():
            if image_id in listed and listed[image_id] != split:
                raise DataError(f"{image_id} is listed in both {listed[image_id]}.txt and {split}.txt in {path.parent}")
            listed[image_id] = split
    assignment = {r.key: listed[r.id] for r in records if r.id in listed}
    unlisted = sorted(r.key for r in records if r.id not in listed)
    if unlisted:
        warnings.append(f"{len(unlisted)} annotated image(s) are in no ImageSets split, left out: {_some(unlisted)}")
    missing = sorted(set(listed) - {r.id for r in records})
    if missing:
        warnings.append(f"{len(missing)} id(s) in ImageSets have no readable annotation: {_some(missing)}")
    return assignment


def _seeded_split(records: list[_Record], val_fraction: float, seed: int) -> dict[str, str]:
    """A reproducible train/val split: the same files, fraction and seed always give the same split."""
    keys = sorted(r.key for r in records)
    random.Random(seed).shuffle(keys)
    n_val = min(max(round(len(keys) * val_fraction), 1), len(keys) - 1) if len(keys) > 1 else 0
    return {key: ("val" if i < n_val else "train") for i, key in enumerate(keys)}


def _write_dataset(
    records: list[_Record],
    assignment: dict[str, str],
    names: list[str],
    out: Path,
    warnings: list[str],
    files_skipped: int,
    *,
    source: Path,
    extra_skipped: int = 0,
) -> ConvertSummary:
    """Copy images and write labels and data.yaml into a folder beside `out`, then rename it onto `out`."""
    class_id = {name: i for i, name in enumerate(names)}
    images = Counter({"train": 0, "val": 0})
    per_class = Counter({name: 0 for name in names})
    unknown: Counter[str] = Counter()
    clipped = dropped = 0
    resized: list[str] = []
    written: dict[Path, str] = {}  # label file -> the record written there, so that no two share an output name
    with staging_dir(out) as staging:
        for record in sorted(records, key=lambda r: r.key):
            split = assignment.get(record.key)
            if split is None:
                continue
            size = _image_size(record, warnings)
            if size is None:
                files_skipped += 1
                continue
            if record.size and min(record.size) > 0 and record.size != size:
                resized.append(record.key)
            lines = []
            for name, *box in record.objects:
                if name not in class_id:
                    unknown[name] += 1
                    continue
                xyxy, was_clipped = _clip(box, *size)
                if xyxy is None:
                    dropped += 1
                    continue
                clipped += was_clipped
                per_class[name] += 1
                lines.append(yolo_line(class_id[name], xyxy, *size))
            image_dst = staging / "images" / split / record.image.name
            label_dst = staging / "labels" / split / f"{record.image.stem}.txt"
            if label_dst in written:
                raise DataError(
                    f"two images would both be written as {split}/{record.image.stem}"
                    f" (from {written[label_dst]} and {record.key}): rename one"
                )
            written[label_dst] = record.key
            image_dst.parent.mkdir(parents=True, exist_ok=True)
            label_dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(record.image, image_dst)  # not copy2: keep a read-only source's mode out of `out`
            write_labels(label_dst, lines)
            images[split] += 1
        if resized:
            warnings.append(
                f"{len(resized)} image(s) differ from their annotated size, used the real size: {_some(resized)}"
            )
        if unknown:
            listed = ", ".join(f"{n} ({k})" for n, k in unknown.most_common())
            warnings.append(f"skipped {sum(unknown.values())} object(s) of classes not in names: {listed}")
        empty = [n for n in names if per_class[n] == 0]
        if empty:
            warnings.append(f"no boxes for class(es): {', '.join(empty)}")
        if not sum(images.values()):
            raise DataError(f"no images were converted from {source}")
        for split in SPLITS:
            if split in images:
                (staging / "images" / split).mkdir(parents=True, exist_ok=True)
                (staging / "labels" / split).mkdir(parents=True, exist_ok=True)
        splits = [s for s in SPLITS if s in images]
        header = f"YOLO dataset converted by yolo-prune convert from {source.resolve()}"
        write_data_yaml(staging, out, splits, names, header)
        try:
            replace_path(staging, out, overwrite=False)
        except OSError:
            raise ConfigError(f"{out} appeared while converting and is not empty; choose a new --out") from None
    return ConvertSummary(
        images={s: images[s] for s in SPLITS if s in images},
        boxes_written=sum(per_class.values()),
        boxes_clipped=clipped,
        boxes_dropped=dropped,
        objects_skipped=sum(unknown.values()) + extra_skipped,
        files_skipped=files_skipped,
        names=list(names),
        data_yaml=out / "data.yaml",
        boxes_per_class=dict(per_class),
        warnings=warnings,
    )


def _image_size(record: _Record, warnings: list[str]) -> tuple[int, int] | None:
    """(width, height) as Ultralytics will see the image (EXIF rotation applied); None, with a warning, if unusable.

    Read from the file rather than trusted from the annotation: normalized labels must match the pixels trained on.
    """
    if record.image is None:
        warnings.append(f"skipped {record.key}: image file not found")
        return None
    try:
        with Image.open(record.image) as im:
            width, height = im.size
            rotated = im.getexif().get(_EXIF_ORIENTATION) in _EXIF_ROTATED
    except (OSError, UnidentifiedImageError) as e:
        warnings.append(f"skipped {record.key}: unreadable image {record.image.name} ({e})")
        return None
    return (height, width) if rotated else (width, height)


def _clip(box: Sequence[float], width: int, height: int) -> tuple[tuple[float, float, float, float] | None, bool]:
    """The box clipped to the image and whether clipping changed it; None when under 1 px wide or high after."""
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in box):
        return None, False
    clipped = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
    if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
        return None, False
    return clipped, clipped != (x1, y1, x2, y2)


def _check_out(out: str | Path) -> Path:
    """Absolute `out`, refused when it holds anything: converting never mixes with or overwrites earlier output."""
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not empty; choose a new --out")
    return out


def _check_names(names: Sequence[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise ConfigError("names must be a list of class names, not one string")
    names = [str(n).strip() for n in names]
    if not names or not all(names):
        raise ConfigError("--names must name at least one class, and no empty ones")
    repeated = [n for n, k in Counter(names).items() if k > 1]
    if repeated:
        raise ConfigError(f"--names repeats {', '.join(repeated)}")
    return names


def _check_fraction(val_fraction: float) -> None:
    if not 0 < val_fraction < 1:
        raise ConfigError(f"--val-fraction must be between 0 and 1 (exclusive), not {val_fraction}")


def _some(items: Iterable[str], limit: int = 5) -> str:
    """The first few items of a long list, for a one-line warning."""
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
