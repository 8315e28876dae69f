"""`yolo-prune convert`: VOC and COCO JSON -> YOLO labels, exact numbers, counted problems, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SHARED
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.data import convert as convert_module
from yolo_prune.data.convert import convert_coco, convert_voc
from yolo_prune.errors import ConfigError, DataError

runner = CliRunner()
BCCD = SHARED / "datasets" / "BCCD"

# name -> (width, height, objects as (class, xmin, ymin, xmax, ymax)); the comments give what the converter must do.
VOC = {
    "a": (100, 80, [("cat", 10, 20, 50, 60), ("dog", 60, 10, 130, 50)]),  # dog past the right edge: clipped to 100
    "b": (100, 80, [("dog", 5, 5, 5, 30), ("cat", 0.5, 70, 20.5, 79.5), ("bird", 1, 1, 11, 11)]),  # dog: 0 px wide
    "c": (60, 40, [("cat", -5, 10, 30, 30), ("cat", 70, 0, 90, 10)]),  # clipped at x=0; the second lies outside
    "d": (50, 50, []),  # no objects: an empty label file
}
MALFORMED = "<annotation><filename>e.jpg</filename><object><name>cat</name></annotation>"
# The label files of VOC's images with the classes in order of first appearance (cat, dog, bird).
LABELS = {
    "a": ["0 0.300000 0.500000 0.400000 0.500000", "1 0.800000 0.375000 0.400000 0.500000"],
    "b": ["0 0.105000 0.934375 0.200000 0.118750", "2 0.060000 0.075000 0.100000 0.125000"],
    "c": ["0 0.250000 0.500000 0.500000 0.500000"],
    "d": [],
}


def voc_xml(name: str, width: int, height: int, objects: list, filename: str | None = None) -> str:
    objs = "".join(
        f"<object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for c, x1, y1, x2, y2 in objects
    )
    return (
        f"<annotation><folder>JPEGImages</folder><filename>{filename or name + '.jpg'}</filename>"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>{objs}</annotation>"
    )


def write_image(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(len(path.name) + width).integers(0, 255, (height, width, 3), np.uint8)
    assert cv2.imwrite(str(path), img)


def make_voc(root: Path, image_sets: bool = True) -> Path:
    """The VOC tree above, plus e.xml (malformed) with its image; ImageSets: train a b, val c, test d."""
    (root / "Annotations").mkdir(parents=True)
    for name, (w, h, objects) in VOC.items():
        write_image(root / "JPEGImages" / f"{name}.jpg", w, h)
        (root / "Annotations" / f"{name}.xml").write_text(voc_xml(name, w, h, objects))
    write_image(root / "JPEGImages" / "e.jpg", 40, 40)
    (root / "Annotations" / "e.xml").write_text(MALFORMED)
    if image_sets:
        sets = root / "ImageSets" / "Main"
        sets.mkdir(parents=True)
        for split, ids in (("train", "a\nb\n"), ("val", "c\n"), ("test", "d\n")):
            (sets / f"{split}.txt").write_text(ids)
    return root


def write_pair(image: Path, xml: Path, stem: str, filename: str | None = None) -> None:
    """The image and .xml of VOC[stem] at these paths; the .xml's <filename> is `filename`, else the image's name."""
    width, height, objects = VOC[stem]
    write_image(image, width, height)
    xml.parent.mkdir(parents=True, exist_ok=True)
    xml.write_text(voc_xml(stem, width, height, objects, filename=filename or image.name))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def labels(out: Path, split: str, stem: str) -> list[str]:
    return (out / "labels" / split / f"{stem}.txt").read_text().splitlines()


def splits_of(out: Path) -> dict[str, str]:
    """Label file stem -> the split it was written to."""
    return {p.stem: p.parent.name for p in (out / "labels").rglob("*.txt")}


def test_voc_with_image_sets(tmp_path):
    src = make_voc(tmp_path / "voc")
    before = snapshot(src)
    out = tmp_path / "yolo"
    summary = convert_voc(src, out)

    assert summary.names == ["cat", "dog", "bird"]  # first appearance in a.xml, b.xml, ... (sorted by file name)
    assert summary.images == {"train": 2, "val": 1, "test": 1}
    assert (summary.boxes_written, summary.boxes_clipped, summary.boxes_dropped) == (5, 2, 2)
    assert (summary.objects_skipped, summary.files_skipped) == (0, 1)
    assert summary.boxes_per_class == {"cat": 3, "dog": 1, "bird": 1}
    assert any("e.xml" in w and "malformed XML" in w for w in summary.warnings), summary.warnings

    assert labels(out, "train", "a") == [
        "0 0.300000 0.500000 0.400000 0.500000",
        "1 0.800000 0.375000 0.400000 0.500000",
    ]
    assert labels(out, "train", "b") == [
        "0 0.105000 0.934375 0.200000 0.118750",
        "2 0.060000 0.075000 0.100000 0.125000",
    ]
    assert labels(out, "val", "c") == ["0 0.250000 0.500000 0.500000 0.500000"]
    assert (out / "labels" / "test" / "d.txt").read_text() == ""
    assert sorted(p.name for p in (out / "images").rglob("*.jpg")) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert (out / "images" / "val" / "c.jpg").read_bytes() == (src / "JPEGImages" / "c.jpg").read_bytes()

    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "test": "images/test",
        "names": {0: "cat", 1: "dog", 2: "bird"},
    }
    assert summary.data_yaml == out.resolve() / "data.yaml"
    assert json.loads(json.dumps(summary.to_dict()))["data_yaml"] == str(out.resolve() / "data.yaml")
    assert snapshot(src) == before  # the source is only read
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_voc_seeded_split_is_reproducible(tmp_path):
    src = make_voc(tmp_path / "voc", image_sets=False)
    first = convert_voc(src, tmp_path / "one", val_fraction=0.25, seed=3)
    again = convert_voc(src, tmp_path / "two", val_fraction=0.25, seed=3)
    assert first.images == again.images == {"train": 3, "val": 1}
    assert snapshot(tmp_path / "one" / "labels") == snapshot(tmp_path / "two" / "labels")
    assert "test" not in yaml.safe_load((tmp_path / "one" / "data.yaml").read_text())

    # split_files=False ignores ImageSets: the same seeded split as a tree without them
    with_sets = make_voc(tmp_path / "voc_sets")
    ignored = convert_voc(with_sets, tmp_path / "three", split_files=False, val_fraction=0.25, seed=3)
    assert ignored.images == {"train": 3, "val": 1}
    assert snapshot(tmp_path / "three" / "labels") == snapshot(tmp_path / "one" / "labels")


def test_voc_names_set_ids_and_skip_other_classes(tmp_path):
    summary = convert_voc(make_voc(tmp_path / "voc"), tmp_path / "yolo", names=["dog", "cat"])
    assert summary.names == ["dog", "cat"]
    assert summary.objects_skipped == 1  # the bird in b.xml
    assert summary.boxes_written == 4
    assert any("bird (1)" in w for w in summary.warnings), summary.warnings
    assert labels(tmp_path / "yolo", "train", "a")[0].startswith("1 ")  # cat is now class 1
    assert labels(tmp_path / "yolo", "train", "b") == ["1 0.105000 0.934375 0.200000 0.118750"]


def test_image_size_comes_from_the_image(tmp_path):
    from PIL import Image

    src = make_voc(tmp_path / "voc", image_sets=False)
    box = [("cat", 10, 20, 50, 60)]
    # r.jpg is stored 100x80 with EXIF orientation 6 (rotate 90): viewers and Ultralytics see it 80 wide, 100 high.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (100, 80)).save(src / "JPEGImages" / "r.jpg", exif=exif)
    (src / "Annotations" / "r.xml").write_text(voc_xml("r", 80, 100, box))
    # s.xml claims 200x160 for a 100x80 image: normalize by the real size, and say so.
    write_image(src / "JPEGImages" / "s.jpg", 100, 80)
    (src / "Annotations" / "s.xml").write_text(voc_xml("s", 200, 160, box))

    summary = convert_voc(src, tmp_path / "yolo", val_fraction=0.01)
    assert summary.images == {"train": 5, "val": 1}
    split = {p.stem: p.parent.name for p in (tmp_path / "yolo" / "labels").rglob("*.txt")}
    assert labels(tmp_path / "yolo", split["r"], "r") == ["0 0.375000 0.400000 0.500000 0.400000"]
    assert labels(tmp_path / "yolo", split["s"], "s") == ["0 0.300000 0.500000 0.400000 0.500000"]
    assert "1 image(s) differ from their annotated size, used the real size: s" in summary.warnings


def test_ultralytics_reads_the_converted_dataset(tmp_path):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    convert_voc(make_voc(tmp_path / "voc"), tmp_path / "yolo")
    data = check_det_dataset(str(tmp_path / "yolo" / "data.yaml"), autodownload=False)
    assert data["nc"] == 3
    assert data["names"] == {0: "cat", 1: "dog", 2: "bird"}
    assert data["train"] == str((tmp_path / "yolo" / "images" / "train").resolve())

    dataset = YOLODataset(img_path=data["train"], data=data, imgsz=64, augment=False, hyp=get_cfg())
    by_name = {Path(lb["im_file"]).stem: lb for lb in dataset.labels}
    assert sorted(by_name) == ["a", "b"]
    assert by_name["a"]["cls"].ravel().tolist() == [0, 1]
    np.testing.assert_allclose(by_name["a"]["bboxes"], [[0.3, 0.5, 0.4, 0.5], [0.8, 0.375, 0.4, 0.5]], atol=1e-6)


def coco_json(path: Path) -> Path:
    """Categories 7 (dog) and 3 (cat): ids with gaps, listed out of order. One crowd region, one box past the edge,
    a degenerate box, a NaN box, an image without boxes."""
    for name, (w, h) in {"p.jpg": (100, 80), "q.jpg": (60, 40), "r.jpg": (50, 50)}.items():
        write_image(path.parent / "imgs" / name, w, h)
    data = {
        "images": [
            {"id": 1, "file_name": "p.jpg", "width": 100, "height": 80},
            {"id": 2, "file_name": "q.jpg", "width": 60, "height": 40},
            {"id": 5, "file_name": "r.jpg", "width": 50, "height": 50},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 20, 40, 40], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 7, "bbox": [60, 10, 70, 40], "iscrowd": 0},  # clipped to x=100
            {"id": 3, "image_id": 2, "category_id": 7, "bbox": [5, 5, 0.5, 20], "iscrowd": 0},  # 0.5 px: dropped
            {"id": 4, "image_id": 2, "category_id": 3, "bbox": [0, 0, 30, 20], "iscrowd": 1},  # crowd: skipped
            {"id": 5, "image_id": 2, "category_id": 3, "bbox": [0, 10, 30, 20], "iscrowd": 0},
            {"id": 6, "image_id": 5, "category_id": 3, "bbox": [float("nan"), 0, 10, 10], "iscrowd": 0},  # dropped
        ],
    }
    path.write_text(json.dumps(data))
    return path


def test_coco_remaps_category_ids_and_counts(tmp_path):
    ann = coco_json(tmp_path / "instances_val.json")
    out = tmp_path / "yolo"
    summary = convert_coco(ann, tmp_path / "imgs", out, split="val")
    assert summary.names == ["cat", "dog"]  # category-id order: 3 -> 0, 7 -> 1
    assert summary.images == {"train": 0, "val": 3}
    assert (summary.boxes_written, summary.boxes_clipped, summary.boxes_dropped) == (3, 1, 2)
    assert (summary.objects_skipped, summary.files_skipped) == (1, 0)
    assert labels(out, "val", "p") == ["0 0.300000 0.500000 0.400000 0.500000", "1 0.800000 0.375000 0.400000 0.500000"]
    assert labels(out, "val", "q") == ["0 0.250000 0.500000 0.500000 0.500000"]
    assert labels(out, "val", "r") == []
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "cat", 1: "dog"}
    assert (out / "images" / "train").is_dir()  # Ultralytics requires a train: folder, even an empty one

    seeded = convert_coco(ann, tmp_path / "imgs", tmp_path / "seeded", names=["dog"], val_fraction=0.34)
    assert seeded.images == {"train": 2, "val": 1}
    assert seeded.names == ["dog"]
    assert (seeded.boxes_written, seeded.objects_skipped) == (1, 4)  # three cats, one crowd region


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    src = make_voc(tmp_path / "voc")
    calls = []

    def copy_then_fail(a, b):
        calls.append(a)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return Path(b).write_bytes(Path(a).read_bytes())

    monkeypatch.setattr(convert_module.shutil, "copyfile", copy_then_fail)
    with pytest.raises(OSError, match="No space left"):
        convert_voc(src, tmp_path / "yolo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voc"]  # neither out nor a staging folder


def test_bad_input_raises_typed_errors(tmp_path):
    src = make_voc(tmp_path / "voc")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="full exists and is not empty; choose a new --out"):
        convert_voc(src, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"
    (tmp_path / "empty").mkdir()
    assert convert_voc(src, tmp_path / "empty").images["train"] == 2  # an empty folder is fine

    with pytest.raises(DataError, match="VOC dataset folder not found: .*nowhere"):
        convert_voc(tmp_path / "nowhere", tmp_path / "o1")
    (tmp_path / "bare").mkdir()
    with pytest.raises(DataError, match="has no Annotations/ folder"):
        convert_voc(tmp_path / "bare", tmp_path / "o2")
    (tmp_path / "bare" / "Annotations").mkdir()
    (tmp_path / "bare" / "JPEGImages").mkdir()
    with pytest.raises(DataError, match="no .xml files in"):
        convert_voc(tmp_path / "bare", tmp_path / "o3")
    with pytest.raises(ConfigError, match="--names repeats cat"):
        convert_voc(src, tmp_path / "o4", names=["cat", "cat"])
    with pytest.raises(ConfigError, match="--val-fraction must be between 0 and 1"):
        convert_voc(src, tmp_path / "o5", val_fraction=1.0)

    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json is not valid JSON"):
        convert_coco(tmp_path / "bad.json", src / "JPEGImages", tmp_path / "o6")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DataError, match="list.json is not a COCO instances file"):
        convert_coco(tmp_path / "list.json", src / "JPEGImages", tmp_path / "o7")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 8))


def test_cli_convert_prints_summary_and_json(tmp_path):
    src = make_voc(tmp_path / "voc")
    result = runner.invoke(app, ["convert", str(src), "--from", "voc", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert re.search(r"^boxes clipped to the image +2$", result.stdout, re.M), result.stdout
    assert re.search(r"^boxes dropped \(under 1 px\) +2$", result.stdout, re.M), result.stdout
    assert "wrote " + str((tmp_path / "a" / "data.yaml").resolve()) in result.stdout
    assert result.stderr == "warning: skipped Annotations/e.xml: malformed XML (mismatched tag: line 1, column 64)\n"

    args = ["convert", str(src), "--from", "voc", "--out", str(tmp_path / "b"), "--names", "dog,cat", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["names"] == ["dog", "cat"]
    assert (summary["boxes_written"], summary["objects_skipped"]) == (4, 1)

    ann = coco_json(tmp_path / "instances.json")
    args = ["convert", str(ann), "--from", "coco", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "c")]
    result = runner.invoke(app, [*args, "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == {"train": 0, "val": 3}


def test_cli_convert_help():
    result = runner.invoke(app, ["convert", "--help"])
    assert result.exit_code == 0
    options = (
        "--from",
        "--out",
        "--images",
        "--annotations",
        "--names",
        "--no-split-files",
        "--val-fraction",
        "--seed",
    )
    for option in (*options, "--json"):
        assert option in result.stdout


def test_bccd(tmp_path):
    if not (BCCD / "Annotations").is_dir():
        pytest.skip(f"{BCCD} not found: the shared BCCD dataset is only on the developers' machines")
    summary = convert_voc(BCCD, tmp_path / "bccd", names=["RBC", "WBC", "Platelets"])
    assert summary.images == {"train": 205, "val": 87, "test": 72}  # ImageSets/Main
    assert summary.names == ["RBC", "WBC", "Platelets"]  # the order of the project's trained checkpoints
    # 4888 boxes in the XML files. BloodImage_00338 and BloodImage_00343 each hold one zero-size box (xmin == xmax,
    # ymin == ymax); they are dropped. No box extends past the 640x480 images, so none is clipped.
    assert (summary.boxes_written, summary.boxes_clipped, summary.boxes_dropped) == (4886, 0, 2)
    assert summary.boxes_per_class == {"RBC": 4153, "WBC": 372, "Platelets": 361}
    assert (summary.objects_skipped, summary.files_skipped, summary.warnings) == (0, 0, [])
    n_lines = sum(len(p.read_text().splitlines()) for p in (tmp_path / "bccd" / "labels").rglob("*.txt"))
    assert n_lines == 4886

    # Without names, classes are numbered by first appearance: BloodImage_00000.xml starts with a WBC.
    default = convert_voc(BCCD, tmp_path / "default", split_files=False)
    assert default.names == ["WBC", "RBC", "Platelets"]
    assert default.images == {"train": 291, "val": 73}  # seeded 80/20 split


def test_vocdevkit_without_image_sets(tmp_path):
    src = make_voc(tmp_path / "voc", image_sets=False)
    write_image(src / "JPEGImages" / "f.jpg", 20, 20)  # no annotation: left out, and said
    out = tmp_path / "yolo"
    summary = convert_voc(src, out, val_fraction=0.25, seed=1)
    assert summary.images == {"train": 3, "val": 1}  # seeded split of a, b, c, d; e.xml is malformed
    assert (summary.boxes_written, summary.boxes_clipped, summary.boxes_dropped) == (5, 2, 2)
    assert (summary.objects_skipped, summary.files_skipped) == (0, 1)
    assert summary.warnings == [
        "skipped Annotations/e.xml: malformed XML (mismatched tag: line 1, column 64)",
        "1 image(s) have no annotation file, left out: JPEGImages/f.jpg",
    ]
    split = splits_of(out)
    assert sorted(split) == ["a", "b", "c", "d"]
    assert {stem: labels(out, split[stem], stem) for stem in split} == LABELS
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert (data["names"], "test" in data) == ({0: "cat", 1: "dog", 2: "bird"}, False)

    # The same files as a labelImg folder (each .xml beside its image) give the same split and the same labels.
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in [*(src / "Annotations").iterdir(), *(src / "JPEGImages").iterdir()]:
        (flat / path.name).write_bytes(path.read_bytes())
    again = convert_voc(flat, tmp_path / "flat_yolo", val_fraction=0.25, seed=1)
    assert again.images == summary.images
    assert snapshot(tmp_path / "flat_yolo" / "labels") == snapshot(out / "labels")
    assert again.warnings == [
        "skipped e.xml: malformed XML (mismatched tag: line 1, column 64)",
        "1 image(s) have no annotation file, left out: f.jpg",
    ]


def test_labelimg_flat_folder(tmp_path):
    """labelImg: each .xml beside its image, in one folder with the images it has not labelled yet."""
    src = tmp_path / "labelimg"
    write_pair(src / "a.jpg", src / "a.xml", "a")
    write_pair(src / "b.png", src / "b.xml", "b")
    write_pair(src / "c.jpg", src / "c.xml", "c", filename=r"C:\\Users\\me\\shots\\c.jpg")  # a Windows path
    write_pair(src / "d.jpg", src / "d.xml", "d", filename="d.JPG")  # no d.JPG: found by its stem
    write_image(src / "todo.jpg", 30, 30)
    (src / "settings.xml").write_text("<settings><autosave>1</autosave></settings>")
    out = tmp_path / "yolo"
    summary = convert_voc(src, out, val_fraction=0.25, seed=1)

    assert summary.names == ["cat", "dog", "bird"]
    assert summary.images == {"train": 3, "val": 1}
    assert (summary.boxes_written, summary.boxes_clipped, summary.boxes_dropped) == (5, 2, 2)
    assert (summary.objects_skipped, summary.files_skipped) == (0, 1)
    assert summary.warnings == [
        "skipped settings.xml: not a VOC annotation (its root element is <settings>, not <annotation>)",
        "1 image(s) have no annotation file, left out: todo.jpg",
    ]
    split = splits_of(out)
    assert {stem: labels(out, split[stem], stem) for stem in split} == LABELS
    assert sorted(p.name for p in (out / "images").rglob("*.*")) == ["a.jpg", "b.png", "c.jpg", "d.jpg"]
    assert (out / "images" / split["b"] / "b.png").read_bytes() == (src / "b.png").read_bytes()
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "cat", 1: "dog", 2: "bird"}


def test_roboflow_split_folders(tmp_path):
    """Roboflow's VOC export: train/, valid/, test/, each with its images and .xml files; the folders are the splits."""
    src = tmp_path / "roboflow"
    write_pair(src / "train" / "a_jpg.rf.1f2e.jpg", src / "train" / "a_jpg.rf.1f2e.xml", "a")
    write_pair(src / "train" / "b.jpg", src / "train" / "b.xml", "b")
    write_pair(src / "valid" / "b.jpg", src / "valid" / "b.xml", "c")  # the name of a train image: another split
    write_pair(src / "test" / "d.jpg", src / "test" / "d.xml", "d")
    # x.xml in train/ names x.jpg, which is only in valid/: an image of another split is never taken
    write_pair(src / "valid" / "x.jpg", src / "train" / "x.xml", "a")
    write_pair(src / "stray.jpg", src / "stray.xml", "a")  # outside the split folders: left out, and said
    (src / "README.roboflow.txt").write_text("exported from roboflow.com\n")
    (src / "ImageSets" / "Main").mkdir(parents=True)
    for split in ("train", "val"):
        (src / "ImageSets" / "Main" / f"{split}.txt").write_text("b\n")
    out = tmp_path / "yolo"
    summary = convert_voc(src, out)

    assert summary.images == {"train": 2, "val": 1, "test": 1}
    assert summary.names == ["cat", "dog", "bird"]  # from test/d.xml (no objects), train/a_jpg.rf.1f2e.xml, ...
    assert (summary.boxes_written, summary.objects_skipped, summary.files_skipped) == (5, 0, 2)
    assert summary.warnings == [
        "skipped 1 .xml file(s) outside the split folders train/, valid/, test/: stray.xml",
        "1 image(s) have no annotation file, left out: valid/x.jpg",
        "the folders train/, valid/, test/ give the splits; ImageSets/Main is not used",
        "skipped train/x: image file not found",
    ]
    assert labels(out, "train", "a_jpg.rf.1f2e") == LABELS["a"]
    assert labels(out, "train", "b") == LABELS["b"]
    assert labels(out, "val", "b") == LABELS["c"]
    assert labels(out, "test", "d") == []
    assert (out / "images" / "val" / "b.jpg").read_bytes() == (src / "valid" / "b.jpg").read_bytes()
    assert cv2.imread(str(out / "images" / "val" / "b.jpg")).shape == (40, 60, 3)  # not train/b.jpg (100 x 80)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val", "images/test")

    # val/ works as valid/ does; both at once is an error; without either, val is empty and said so
    (src / "valid").rename(src / "val")
    assert convert_voc(src, tmp_path / "val").images == {"train": 2, "val": 1, "test": 1}
    write_pair(src / "valid" / "c.jpg", src / "valid" / "c.xml", "c")
    with pytest.raises(DataError) as error:
        convert_voc(src, tmp_path / "both")
    assert str(error.value) == f"{src} has both val/ and valid/ for the val split: keep one"
    only_train = tmp_path / "only_train"
    write_pair(only_train / "train" / "a.jpg", only_train / "train" / "a.xml", "a")
    summary = convert_voc(only_train, tmp_path / "no_val")
    assert summary.images == {"train": 1, "val": 0}
    assert summary.warnings == ["the split folders are train/, none of them valid/ or val/: the val split is empty"]
    assert (tmp_path / "no_val" / "images" / "val").is_dir()
    assert not (tmp_path / "both").exists()


def test_custom_folders(tmp_path):
    """Annotations in xml/, images in pics/: found on their own, or named with annotations= and images=."""
    src = tmp_path / "custom"
    for stem in ("a", "b", "c"):
        write_pair(src / "pics" / f"{stem}.jpg", src / "xml" / f"{stem}.xml", stem)
    found = convert_voc(src, tmp_path / "found", names=["cat", "dog"], val_fraction=0.34)
    assert found.images == {"train": 2, "val": 1}
    assert (found.boxes_written, found.objects_skipped, found.files_skipped) == (4, 1, 0)
    assert found.warnings == ["skipped 1 object(s) of classes not in names: bird (1)"]
    split = splits_of(tmp_path / "found")
    assert {stem: labels(tmp_path / "found", split[stem], stem) for stem in split} == {
        "a": LABELS["a"],
        "b": ["0 0.105000 0.934375 0.200000 0.118750"],  # the bird is skipped
        "c": LABELS["c"],
    }

    # A second a.jpg, as near to xml/a.xml as pics/a.jpg: which one is meant is not guessed
    write_image(src / "backup" / "a.jpg", 100, 80)
    guessed = convert_voc(src, tmp_path / "guessed", names=["cat", "dog"], val_fraction=0.34)
    assert guessed.images == {"train": 1, "val": 1}
    assert guessed.files_skipped == 1
    assert guessed.warnings[0] == (
        "skipped xml/a.xml: 2 images match a.jpg (backup/a.jpg, pics/a.jpg): pass --images DIR to pick the folder"
    )
    # images= is looked in first; annotations= is where the .xml files are (and what their keys are relative to)
    named = convert_voc(
        src, tmp_path / "named", names=["cat", "dog"], val_fraction=0.34, images=src / "pics", annotations=src / "xml"
    )
    assert named.images == {"train": 2, "val": 1}
    assert named.warnings == [
        "1 image(s) have no annotation file, left out: backup/a.jpg",
        "skipped 1 object(s) of classes not in names: bird (1)",
    ]
    split = splits_of(tmp_path / "named")
    assert labels(tmp_path / "named", split["a"], "a") == LABELS["a"]
    assert (tmp_path / "named" / "images" / split["a"] / "a.jpg").read_bytes() == (src / "pics" / "a.jpg").read_bytes()

    with pytest.raises(DataError) as error:
        convert_voc(src, tmp_path / "none", annotations=src / "pics")
    assert str(error.value) == f"no .xml files in {src / 'pics'}"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as error:
        convert_voc(tmp_path / "empty", tmp_path / "none")
    assert str(error.value) == f"{tmp_path / 'empty'} has no Annotations/ folder and no .xml files under it"
    assert not (tmp_path / "none").exists()

    args = ["convert", str(src), "--from", "voc", "--out", str(tmp_path / "cli"), "--names", "cat,dog", "--json"]
    result = runner.invoke(app, [*args, "--images", str(src / "pics"), "--annotations", str(src / "xml")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == {"train": 2, "val": 1}
    assert snapshot(tmp_path / "cli" / "labels") == snapshot(tmp_path / "named" / "labels")


def test_two_images_of_one_name_in_one_split(tmp_path):
    src = tmp_path / "cams"
    for cam in ("cam1", "cam2"):
        write_pair(src / "train" / cam / "001.jpg", src / "train" / cam / "001.xml", "a")
    write_pair(src / "valid" / "c.jpg", src / "valid" / "c.xml", "c")
    with pytest.raises(DataError) as error:
        convert_voc(src, tmp_path / "yolo")
    assert str(error.value) == (
        "two images would both be written as train/001 (from train/cam1/001 and train/cam2/001): rename one"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cams"]  # neither out nor a staging folder
