"""Bad data never stops a run with a traceback: skipped images are counted by reason in one warning, and a split with
nothing usable is a one-line error. The user's images and label files are never modified."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
from conftest import write_tiny_dataset
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.data.datasets import batches, check_split, resolve_dataset
from yolo_prune.deploy.calibration import calibration_files
from yolo_prune.errors import DataError
from yolo_prune.pruning.load import load_model
from yolo_prune.train.finetune import FinetuneConfig, finetune
from yolo_prune.train.validate import validate

runner = CliRunner()


def truncate(root: Path, name: str = "0") -> None:
    image = root / "images" / "val" / f"{name}.jpg"
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])


def scramble(root: Path, name: str = "0") -> None:
    (root / "images" / "val" / f"{name}.jpg").write_bytes(os.urandom(500))


def label(text: str):
    return lambda root, name="0": (root / "labels" / "val" / f"{name}.txt").write_text(text)


# How each case is made, and the reason (with the file at fault) that the warning gives.
CASES = {
    "truncated JPEG": (truncate, "truncated image (images/val/0.jpg)"),
    "unreadable image": (scramble, "unreadable image (images/val/0.jpg)"),
    "class id beyond names": (label("5 0.5 0.5 0.2 0.2\n"), "class id beyond names (labels/val/0.txt)"),
    "box outside the image": (label("0 1.4 0.5 0.2 0.2\n"), "box outside the image (labels/val/0.txt)"),
}


def fingerprint(root: Path) -> dict[str, str]:
    """The user's files (Ultralytics' own labels/*.cache aside) and their contents."""
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix != ".cache"]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "yolo_prune" and r.levelno == logging.WARNING]


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_tiny_dataset(tmp_path / "data", n_train=4, n_val=4)


@pytest.mark.parametrize("case", CASES)
def test_a_bad_image_or_label_is_skipped_with_one_warning(dataset, case, caplog):
    corrupt, reason = CASES[case]
    corrupt(dataset.parent)
    before = fingerprint(dataset.parent)
    data = resolve_dataset(dataset)
    with caplog.at_level(logging.WARNING, logger="yolo_prune"):
        report = check_split(data, "val")
        check_split(data, "val")  # the trainer and the validator ask again: still one warning
    assert warnings(caplog) == [f"skipped 1 of 4 images in the 'val' split: {reason}"]
    assert (report.images, report.usable) == (4, 3)
    assert fingerprint(dataset.parent) == before
    assert (dataset.parent / "labels" / "val.cache").is_file()  # Ultralytics' label cache, which training reuses
    # what reads the split goes on without the skipped image
    assert next(batches(data, "val", 64, 4, 1))["img"].shape[0] == 3


def test_an_empty_label_file_is_a_background_not_an_error(dataset, caplog):
    label("")(dataset.parent)
    with caplog.at_level(logging.WARNING, logger="yolo_prune"):
        report = check_split(resolve_dataset(dataset), "val")
    assert warnings(caplog) == []
    assert (report.usable, report.backgrounds, report.skipped) == (4, 1, {})


def test_several_reasons_are_counted_in_one_line(tmp_path, caplog):
    dataset = write_tiny_dataset(tmp_path / "six", n_train=4, n_val=6)
    root = dataset.parent
    truncate(root, "0")
    scramble(root, "1")
    scramble(root, "2")
    label("5 0.5 0.5 0.2 0.2\n")(root, "3")
    with caplog.at_level(logging.WARNING, logger="yolo_prune"):
        report = check_split(resolve_dataset(dataset), "val")
    assert warnings(caplog) == [
        "skipped 4 of 6 images in the 'val' split: truncated image (images/val/0.jpg), "
        "unreadable image (2, e.g. images/val/1.jpg), class id beyond names (labels/val/3.txt)"
    ]
    assert report.skipped["unreadable image"] == ["images/val/1.jpg", "images/val/2.jpg"]


def test_a_split_of_only_bad_images_is_one_line(dataset, two_class_model):
    for name in "0123":
        scramble(dataset.parent, name)
    message = f"{dataset}: no usable images in the 'val' split: unreadable image (4, e.g. images/val/0.jpg)"
    with pytest.raises(DataError) as error:
        validate(two_class_model, dataset, imgsz=64)
    assert str(error.value) == message
    result = runner.invoke(app, ["val", str(two_class_model), "--data", str(dataset), "--imgsz", "64"])
    assert (result.exit_code, result.stderr) == (1, f"error: {message}\n")


def test_a_split_folder_without_images_is_one_line(dataset):
    for image in (dataset.parent / "images" / "val").iterdir():
        image.unlink()
    with pytest.raises(DataError) as error:
        check_split(resolve_dataset(dataset), "val")
    assert str(error.value) == f"{dataset}: no images in the 'val' split ({dataset.parent / 'images' / 'val'})"


def test_no_boxes_to_train_on_fails_before_training(dataset, two_class_model, tmp_path, caplog):
    for name in "0123":
        (dataset.parent / "labels" / "train" / f"{name}.txt").write_text("")
    no_boxes = "no boxes in the 'train' split: all 4 images are backgrounds (empty or missing labels)"
    with caplog.at_level(logging.WARNING, logger="yolo_prune"):
        check_split(resolve_dataset(dataset), "train")  # fine to validate on, with a warning
    assert warnings(caplog) == [no_boxes]
    config = FinetuneConfig(epochs=1, batch=4, imgsz=64, workers=0, device="cpu")
    with pytest.raises(DataError) as error:
        finetune(load_model(two_class_model), str(dataset), config, tmp_path / "train")
    assert str(error.value) == f"{dataset}: {no_boxes}"
    assert not (tmp_path / "train" / "weights" / "last.pt").exists()


def test_val_goes_on_past_a_truncated_jpeg(dataset, two_class_model, caplog):
    truncate(dataset.parent)
    before = fingerprint(dataset.parent)
    with caplog.at_level(logging.WARNING, logger="yolo_prune"):
        result = runner.invoke(app, ["val", str(two_class_model), "--data", str(dataset), "--imgsz", "64", "--json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and '"map50_95"' in result.stdout
    assert warnings(caplog) == ["skipped 1 of 4 images in the 'val' split: truncated image (images/val/0.jpg)"]
    assert fingerprint(dataset.parent) == before


def test_train_goes_on_past_a_truncated_jpeg_and_a_box_outside_the_image(dataset, two_class_model, tmp_path, caplog):
    root = dataset.parent
    image = root / "images" / "train" / "1.jpg"
    image.write_bytes(image.read_bytes()[:-300])
    label("0 1.4 0.5 0.2 0.2\n")(root, "2")
    args = ["train", str(two_class_model), "--data", str(dataset), "--epochs", "1", "--imgsz", "64", "--batch", "4"]
    with caplog.at_level(logging.WARNING, logger="yolo_prune"):
        result = runner.invoke(app, [*args, "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "model.pt").is_file()
    assert warnings(caplog) == [  # once each, although the trainer and the validator read both splits again
        "skipped 1 of 4 images in the 'train' split: truncated image (images/train/1.jpg)",
        "skipped 1 of 4 images in the 'val' split: box outside the image (labels/val/2.txt)",
    ]


def test_the_cli_prints_warnings_as_warning_lines(caplog):
    from yolo_prune.app.cli import _Formatter

    record = logging.LogRecord("yolo_prune", logging.WARNING, __file__, 1, "skipped 1 of 4 images", None, None)
    info = logging.LogRecord("yolo_prune", logging.INFO, __file__, 1, "validating", None, None)
    formatter = _Formatter("%(message)s")
    assert (formatter.format(record), formatter.format(info)) == ("warning: skipped 1 of 4 images", "validating")


def test_int8_calibration_skips_unreadable_images(dataset, caplog):
    bad = dataset.parent / "images" / "train" / "1.jpg"
    bad.write_bytes(os.urandom(500))
    with caplog.at_level(logging.WARNING, logger="yolo_prune"):
        files = calibration_files(data=dataset, calib=4)
    assert len(files) == 3 and bad not in files
    assert warnings(caplog) == [f"skipped 1 of 4 calibration images: unreadable image ({bad})"]
    for image in (dataset.parent / "images" / "train").iterdir():
        image.write_bytes(b"not an image")
    with pytest.raises(DataError) as error:
        calibration_files(data=dataset, calib=4)
    first = dataset.parent / "images" / "train" / "0.jpg"
    assert str(error.value) == f"no usable calibration images: unreadable image (4, e.g. {first})"


def test_scan_batches_spread_over_the_split_not_its_first_images(tmp_path):
    """A split sorted by class (NEU-DET's file names) must not give the scan one class: every other image here."""
    data = resolve_dataset(write_tiny_dataset(tmp_path / "eight", n_train=8, n_val=2))
    got = list(batches(data, "train", 64, 2, 2))
    names = [Path(f).name for b in got for f in b["im_file"]]
    assert names == ["0.jpg", "2.jpg", "4.jpg", "6.jpg"]
    assert [tuple(b["img"].shape) for b in got] == [(2, 3, 64, 64)] * 2
    assert [Path(f).name for b in batches(data, "train", 64, 4, 5) for f in b["im_file"]] == [
        f"{i}.jpg" for i in range(8)
    ]
