"""Resolve and check detection datasets (Ultralytics data YAMLs) and load batches from them.

Ultralytics' own `check_det_dataset`, `build_yolo_dataset` and `build_dataloader` do the work; this module makes sure
that a missing or malformed dataset is a one-line `DataError` rather than a download attempt or a traceback, and that
bad images and labels are counted and reported in one warning (`check_split`) rather than in Ultralytics' log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from yolo_prune.errors import DataError, first_line

LOGGER = logging.getLogger("yolo_prune")


def resolve_dataset(data: str | Path, splits: tuple[str, ...] = ("train", "val"), chosen: str | None = None) -> dict:
    """Parse and check a dataset YAML (the user's --data); return Ultralytics' resolved data dict.

    Fails with `DataError` when the file, a needed split's folder or the class names are missing. Never downloads.
    `chosen` is the split the user picked with --split, which its message then names.
    """
    from ultralytics.data.utils import check_det_dataset

    path = Path(data)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise DataError(f"--data {data}: expected a dataset .yaml file")
    if not path.is_file():
        raise DataError(f"--data {data}: dataset file not found")
    try:
        resolved = check_det_dataset(str(path), autodownload=False)
    except (FileNotFoundError, SyntaxError, KeyError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"--data {data}: {first.replace('❌', '').strip()}") from e
    except Exception as e:  # YAML parser errors and the like
        raise DataError(f"--data {data}: cannot read dataset YAML ({type(e).__name__})") from e
    for split in splits:
        entry = resolved.get(split)
        entries = entry if isinstance(entry, list) else [entry]
        if not entry:
            have = ", ".join(s for s in ("train", "val", "test") if resolved.get(s)) or "none"
            where = f"--split {split}: {data}" if split == chosen else f"--data {data}"
            raise DataError(f"{where} has no '{split}' split (it has: {have})")
        if not all(Path(p).exists() for p in entries):
            missing = next(p for p in entries if not Path(p).exists())
            where = f"--split {split}" if split == chosen else f"--data {data}"
            raise DataError(f"{where}: the '{split}' split's images are not there ({missing})")
    return resolved


def _ordered(names: dict | list) -> list[str]:
    return [str(names[k]) for k in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


def check_classes(dataset: dict, names: dict | list, kpt_shape: list | tuple | None = None) -> None:
    """Fail with `DataError` unless the model's classes are the dataset's (resolved by `resolve_dataset`): the same
    count, and the same names in the same order, since a class id means the class at that position.

    A model built from a YAML has placeholder names ('0', '1', ...): only its class count is checked. A pose model's
    `kpt_shape` (keypoints, values per keypoint) must be the dataset's.
    """
    if kpt_shape is not None:
        theirs = dataset.get("kpt_shape")
        if theirs is None:
            raise DataError(f"the model predicts keypoints {list(kpt_shape)} but the dataset has no kpt_shape")
        if list(theirs) != list(kpt_shape):
            raise DataError(
                f"the model predicts keypoints {list(kpt_shape)} but the dataset has kpt_shape {list(theirs)}"
            )
    model, data = _ordered(names), _ordered(dataset["names"])
    if len(data) != len(model):
        raise DataError(f"the dataset has {len(data)} classes but the model has {len(model)}")
    if model == [str(i) for i in range(len(model))] or model == data:
        return
    if sorted(model) == sorted(data):
        raise DataError(
            f"the dataset has the model's classes in another order: model {', '.join(model)}; dataset "
            f"{', '.join(data)}. Convert the dataset again with --names {','.join(model)}"
        )
    raise DataError(f"the dataset's classes ({', '.join(data)}) are not the model's ({', '.join(model)})")


def check_model(dataset: dict, model) -> None:
    """`check_classes` for a loaded model: its class names and, for a pose model, its keypoints."""
    check_classes(dataset, model.names, getattr(model, "kpt_shape", None))


def split_dataset(data: dict, split: str, imgsz: int, batch: int, *, augment: bool = False, task: str = "detect"):
    """Ultralytics' dataset over one split for `task`'s labels (letterboxed, no augmentation unless `augment`)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset

    check_split(data, split, task=task)
    cfg = get_cfg(overrides={"imgsz": imgsz, "task": task, "plots": False})
    return build_yolo_dataset(cfg, data[split], batch, data, mode="train" if augment else "val")


def loader(
    data: dict, split: str, imgsz: int, batch: int, *, augment: bool = False, workers: int = 0, task: str = "detect"
):
    """An Ultralytics dataloader over one split for `task`'s labels (letterboxed, no augmentation unless `augment`)."""
    from ultralytics.data import build_dataloader

    dataset = split_dataset(data, split, imgsz, batch, augment=augment, task=task)
    return build_dataloader(dataset, batch, workers, shuffle=augment, device="cpu")


def batches(data: dict, split: str, imgsz: int, batch: int, count: int, task: str = "detect") -> Iterator[dict]:
    """`count` batches of a split's images spread evenly over it, the same images every run (the sensitivity scan's
    loss, Taylor gradients).

    Evenly spread rather than the first `count * batch`: datasets are often sorted by class or source, and the first
    64 of NEU-DET's train images, sorted by file name, are all of one class of six (docs/benchmarks.md section 30).
    """
    dataset = split_dataset(data, split, imgsz, batch, task=task)
    chosen = min(count * batch, len(dataset))
    step = len(dataset) / chosen if chosen else 1.0
    indices = [int(i * step) for i in range(chosen)]
    for start in range(0, chosen, batch):
        yield dataset.collate_fn([dataset[i] for i in indices[start : start + batch]])


# Ultralytics' `verify_image_label` says why it skipped an image in a message: its words, our reason, and whether the
# label file is at fault. The first match wins; anything else is an image that PIL cannot decode (its errors vary).
_REASONS = (
    ("Label class", "class id beyond names", True),
    ("out of bounds coordinates|negative label values", "box outside the image", True),
    (
        "labels require|non-integer class|labels mix|could not convert|inhomogeneous|sequence|codec",
        "bad label row",
        True,
    ),
    ("truncated", "truncated image", False),
    ("No such file", "missing image", False),
)
_SKIPPED = re.compile(r"^(?:\w+: )?(?P<file>.+?): ignoring corrupt image/label: (?P<error>.*)$", re.DOTALL)
_warned: set[str] = set()  # scans already reported (by Ultralytics' hash of the split's files): one warning a run


@dataclass
class SplitReport:
    """What the label scan of one split found: the images training and validation use, and those they skip."""

    split: str
    images: int  # image files in the split
    usable: int  # images that training and validation use (with boxes, or backgrounds)
    boxes: int
    backgrounds: int  # usable images without boxes (an empty or missing label file): normal in YOLO datasets
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> files (the label file when it is at fault)
    fingerprint: str = ""  # Ultralytics' hash of the split's image and label files (changes when any of them does)


def check_split(data: dict, split: str, *, task: str = "detect", need_boxes: bool = False) -> SplitReport:
    """Scan a split's images and labels as training and validation will, and report what they would skip.

    The scan is Ultralytics' own (`verify_image_label` on every image and its label file), kept in the label cache
    `labels/<split>.cache` that training and validation write and read anyway, so it costs once; images and labels are
    only read. Skipped images (unreadable or truncated, a class id beyond `names`, a box outside the image, a bad label
    row) are counted by reason in one warning, once per run. No usable image, or no box at all with `need_boxes`, is a
    one-line `DataError`. `task` must be the model's: Ultralytics' cache keeps the labels of the task that scanned
    (keypoints only for pose) and does not tell tasks apart when it is read again.
    """
    where = f"{data.get('yaml_file', 'the dataset')}: "
    scan = _scan(data, split, where, task)
    labels = scan["labels"]
    report = SplitReport(
        split=split,
        images=scan["results"][4],
        usable=len(labels),
        boxes=sum(len(lb["cls"]) for lb in labels),
        backgrounds=sum(len(lb["cls"]) == 0 for lb in labels),
        skipped=_skipped(scan["msgs"], Path(data.get("path") or "")),
        fingerprint=str(scan.get("hash", "")),
    )
    why = ", ".join(
        f"{reason} ({files[0]})" if len(files) == 1 else f"{reason} ({len(files)}, e.g. {files[0]})"
        for reason, files in report.skipped.items()
    )
    if not report.usable:
        raise DataError(f"{where}no usable images in the '{split}' split: {why or 'no error details'}")
    no_boxes = f"no boxes in the '{split}' split: all {report.usable} images are backgrounds (empty or missing labels)"
    if need_boxes and not report.boxes:
        raise DataError(where + no_boxes)
    if scan["hash"] not in _warned:
        _warned.add(scan["hash"])
        if report.skipped:
            skipped = report.images - report.usable
            LOGGER.warning(f"skipped {skipped} of {report.images} images in the '{split}' split: {why}")
        if not report.boxes:
            LOGGER.warning(no_boxes)
    return report


def _skipped(messages: list[str], root: Path) -> dict[str, list[str]]:
    """The files that Ultralytics' scan skipped, by our reason, from its messages (shown relative to `root`)."""
    skipped: dict[str, list[str]] = {}
    for message in messages:
        match = _SKIPPED.match(re.sub(r"\x1b\[[0-9;]*m", "", message))  # without the ANSI colours of its prefix
        if match:
            found = (r for r in _REASONS if re.search(r[0], match["error"]))
            _, reason, label = next(found, ("", "unreadable image", False))
            file = _label_file(match["file"]) if label else match["file"]
            skipped.setdefault(reason, []).append(_shown(file, root))
    return skipped


def _scan(data: dict, split: str, where: str, task: str) -> dict:
    """Ultralytics' label scan of a split (from its cache when current): its `labels`, `results` counts (found,
    missing, empty, corrupt, total), `msgs` and `hash`."""
    from ultralytics.data.dataset import YOLODataset

    class LabelScan(YOLODataset):
        """A `YOLODataset` that keeps the scan it was built from, and is built even when no image is usable.

        The one place where yolo_prune leans on Ultralytics' internals: `get_labels` reads the counts and messages
        of the scan and drops them, and raises `RuntimeError` ('No valid images found') with every message in it."""

        def _load_or_scan_cache(self, cache_path, cache_hash):
            cache, exists = super()._load_or_scan_cache(cache_path, cache_hash)
            self.scan = dict(cache)  # get_labels pops the counts and messages from `cache`
            return cache, exists

        def get_labels(self):
            try:
                return super().get_labels()
            except RuntimeError:  # nothing usable: check_split says why, in one line
                return []

    try:
        return LabelScan(img_path=data[split], data=data, task=task, augment=False, prefix="").scan
    except FileNotFoundError:  # 'Error loading data from ...': no image files
        raise DataError(f"{where}no images in the '{split}' split ({data[split]})") from None
    except ValueError as e:  # e.g. a pose scan of a dataset without kpt_shape
        raise DataError(f"{where}cannot read the '{split}' split as {task} labels ({first_line(e)})") from None


def _label_file(image: str) -> str:
    from ultralytics.data.utils import img2label_paths

    return img2label_paths([image])[0]


def _shown(file: str, root: Path) -> str:
    """`file` relative to the dataset root, as the data YAML names its folders."""
    try:
        return Path(file).relative_to(root).as_posix() if root.parts else file
    except ValueError:
        return file
