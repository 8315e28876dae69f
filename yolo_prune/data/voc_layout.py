"""Where a Pascal VOC dataset keeps its annotation files and their images, whichever tool wrote it.

The annotation files are looked for under the annotation root (`annotations`, else SRC), in this order:

- split folders: `train/`, `valid/` (or `val/`) and `test/` holding .xml files anywhere below them, as Roboflow's VOC
  export writes them; the folders are the splits (`valid` is val), and .xml files outside them are left out;
- VOCdevkit: `SRC/Annotations/*.xml`, images in `SRC/JPEGImages/` (not when `annotations` is given);
- anything else: every .xml file anywhere under the root, e.g. labelImg's folder of images with an .xml beside each.

The image of an annotation file is the one its `<filename>` names: looked up beside the .xml, then in the image folder
(`images`, else `SRC/JPEGImages/`), then anywhere under SRC and the image folder by that name, then by its stem, then
by the stem of the .xml file (for a `<filename>` that is stale or has another suffix). Of several files found by
name or stem, the one nearest the .xml wins; an image in another split's folder never counts, and a tie is reported
rather than guessed. Hidden files and folders (`.git`, a conversion's staging folder) are never read.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from yolo_prune.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SPLIT_FOLDERS = {"train": "train", "valid": "val", "val": "val", "test": "test"}  # folder name -> split


@dataclass
class VocLayout:
    """The annotation files of a VOC dataset, where their images may be, and the splits its folders give."""

    src: Path
    base: Path  # record keys are the .xml paths relative to this folder, without the suffix
    xml_files: list[Path]  # the annotation files to read
    images_dir: Path | None  # looked in right after the .xml file's own folder: `images`, else SRC/JPEGImages/
    split_folders: dict[Path, str] = field(default_factory=dict)  # folder -> split, when the folders are the splits
    outside: list[Path] = field(default_factory=list)  # .xml files outside the split folders, not read

    def key(self, xml_file: Path) -> str:
        """What warnings and splits call an annotation file: its path under `base`, e.g. `a` or `train/a`."""
        return xml_file.relative_to(self.base).with_suffix("").as_posix()

    def split_of(self, path: Path) -> str | None:
        """The split whose folder holds `path`; None outside the split folders (or without them)."""
        return next((split for folder, split in self.split_folders.items() if path.is_relative_to(folder)), None)

    def show(self, path: Path) -> str:
        """`path` as messages give it: relative to SRC (or the folder given for images or annotations) when under it."""
        for root in (self.src, self.base, self.images_dir):
            if root is not None and path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return str(path)


def find_layout(src: Path, images: Path | None = None, annotations: Path | None = None) -> VocLayout:
    """The layout of the VOC dataset at `src`; DataError when a folder is missing or holds no .xml files."""
    if not src.is_dir():
        raise DataError(f"VOC dataset folder not found: {src}")
    for option, folder in (("--annotations", annotations), ("--images", images)):
        if folder is not None and not folder.is_dir():
            raise DataError(f"{option} {folder}: folder not found")
    src, images, annotations = (None if p is None else p.absolute() for p in (src, images, annotations))
    root = annotations or src
    if images is None and (src / "JPEGImages").is_dir():
        images = src / "JPEGImages"
    all_xml = [p for p in files_under(root) if p.suffix.lower() == ".xml"]
    split_folders = _split_folders(root, all_xml)
    if split_folders:
        inside = [p for p in all_xml if any(p.is_relative_to(folder) for folder in split_folders)]
        outside = sorted(set(all_xml) - set(inside))
        return VocLayout(src, root, inside, images, split_folders, outside)
    if annotations is None and (src / "Annotations").is_dir():
        base = src / "Annotations"
        xml_files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix.lower() == ".xml")
        if not xml_files:
            raise DataError(f"no .xml files in {base}")
        return VocLayout(src, base, xml_files, images)
    if not all_xml:
        if annotations is not None:
            raise DataError(f"no .xml files in {annotations}")
        raise DataError(f"{src} has no Annotations/ folder and no .xml files under it")
    return VocLayout(src, root, all_xml, images)


def _split_folders(root: Path, xml_files: list[Path]) -> dict[Path, str]:
    """The folders right under `root` named for a split that hold .xml files; DataError when two name one split."""
    tops = {root / p.relative_to(root).parts[0] for p in xml_files if len(p.relative_to(root).parts) > 1}
    found: dict[str, Path] = {}
    for folder in sorted(tops):
        split = SPLIT_FOLDERS.get(folder.name.lower())
        if split is None:
            continue
        if split in found:
            raise DataError(f"{root} has both {found[split].name}/ and {folder.name}/ for the {split} split: keep one")
        found[split] = folder
    return {found[split]: split for split in ("train", "val", "test") if split in found}


class ImageFinder:
    """Finds the image that an annotation file names (see the module docstring for the order)."""

    def __init__(self, layout: VocLayout):
        self.layout = layout
        roots = [layout.src] + ([layout.images_dir] if layout.images_dir else [])
        real: dict[str, Path] = {}  # one entry per file, however many of the roots reach it
        for root in roots:
            for path in files_under(root):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    real.setdefault(os.path.realpath(path), path)
        self.images = sorted(real.values())
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        self.by_stem: dict[str, list[Path]] = defaultdict(list)
        for path in self.images:
            self.by_name[path.name].append(path)
            self.by_stem[path.stem].append(path)

    def find(self, xml_file: Path, filename: str) -> Path | None:
        """The image of `xml_file`, None when there is none; ValueError when several are equally near."""
        filename = filename.replace("\\", "/").strip()
        name = Path(filename).name
        within = not Path(filename).is_absolute() and ".." not in Path(filename).parts and ":" not in filename
        tries = [n for n in dict.fromkeys([filename if within else "", name]) if n]  # a <filename> of sub/a.jpg, a.jpg
        folders = [f for f in (xml_file.parent, self.layout.images_dir) if f is not None]
        for candidate in (folder / n for folder in folders for n in tries):
            if candidate.suffix.lower() in IMAGE_SUFFIXES and candidate.is_file():
                return candidate
        stem = Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
        split = self.layout.split_of(xml_file)
        for table, wanted in ((self.by_name, name), (self.by_stem, stem), (self.by_stem, xml_file.stem)):
            found = [p for p in table.get(wanted, []) if self.layout.split_of(p) in (None, split)] if wanted else []
            if found:
                return self._nearest(xml_file, found, wanted)
        return None

    def _nearest(self, xml_file: Path, found: list[Path], wanted: str) -> Path:
        def shared(path: Path) -> int:  # how many leading folders `path` has in common with the .xml file
            return len(os.path.commonpath([path.parent.absolute(), xml_file.parent.absolute()]).split(os.sep))

        best = max(shared(p) for p in found)
        nearest = [p for p in found if shared(p) == best]
        if len(nearest) > 1:
            listed = ", ".join(self.layout.show(p) for p in nearest)
            raise ValueError(f"{len(nearest)} images match {wanted} ({listed}): pass --images DIR to pick the folder")
        return nearest[0]

    def unused(self, used: Iterable[Path], skipped_stems: Iterable[str]) -> list[str]:
        """Images no annotation uses, but for those of skipped annotation files (already reported), as shown."""
        used, skipped_stems = {os.path.realpath(p) for p in used}, set(skipped_stems)
        left = [p for p in self.images if os.path.realpath(p) not in used and p.stem not in skipped_stems]
        return [self.layout.show(p) for p in left]


def files_under(root: Path) -> list[Path]:
    """Every file under `root`, sorted, following links to folders (once each) and skipping hidden names."""
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found += [Path(folder, f) for f in files if not f.startswith(".")]
    return sorted(found)
