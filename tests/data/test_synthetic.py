"""The synthetic shapes dataset: reproducible, cached, valid YOLO labels that Ultralytics loads; CLI; defaults doc."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.data import synthetic
from yolo_prune.data.synthetic import generate, read_manifest
from yolo_prune.errors import ConfigError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
SMALL = {"n_train": 24, "n_val": 8, "imgsz": 64, "seed": 3}  # fast, yet enough objects for every default class


def files(root: Path) -> dict[str, bytes]:
    """Every image and label file under root, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".txt")}


def label_rows(root: Path) -> list[tuple[int, float, float, float, float]]:
    rows = []
    for path in sorted((root / "labels").rglob("*.txt")):
        for line in path.read_text().splitlines():
            c, *box = line.split()
            rows.append((int(c), *map(float, box)))
    return rows


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "data", **SMALL)


def test_layout_and_yaml(small):
    root = small.parent
    assert small == root / "data.yaml"
    for split in ("train", "val"):
        n = SMALL[f"n_{split}"]
        assert sorted(p.stem for p in (root / "images" / split).glob("*.jpg")) == [f"{i:06d}" for i in range(n)]
        assert sorted(p.stem for p in (root / "labels" / split).glob("*.txt")) == [f"{i:06d}" for i in range(n)]
    data = yaml.safe_load(small.read_text())
    assert data["path"] == str(root) and Path(data["path"]).is_absolute()
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert data["names"] == dict(enumerate(synthetic.DEFAULT_CLASSES))
    assert not list(root.parent.glob(".*.tmp")), "staging folder left behind"


def test_same_arguments_give_identical_files(small, tmp_path):
    again = generate(tmp_path / "again", **SMALL)
    first, second = files(small.parent), files(again.parent)
    assert len(first) == 2 * (SMALL["n_train"] + SMALL["n_val"])
    assert first == second
    other = generate(tmp_path / "other", **{**SMALL, "seed": SMALL["seed"] + 1})
    assert label_rows(other.parent) != label_rows(small.parent)


def test_image_does_not_depend_on_counts(small, tmp_path):
    fewer = generate(tmp_path / "fewer", **{**SMALL, "n_train": 5})
    assert (fewer.parent / "labels/train/000004.txt").read_bytes() == (
        small.parent / "labels/train/000004.txt"
    ).read_bytes()
    assert (fewer.parent / "images/val/000001.jpg").read_bytes() == (
        small.parent / "images/val/000001.jpg"
    ).read_bytes()


def test_cache_hit_does_not_rewrite(tmp_path):
    out = tmp_path / "cached"
    data = generate(out, **SMALL)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert generate(out, **SMALL) == data
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before

    generate(out, **{**SMALL, "seed": 9})  # other arguments: regenerated in place
    assert read_manifest(out)["params"]["seed"] == 9
    assert {p.stat().st_mtime_ns for p in out.rglob("*.txt")}.isdisjoint(before.values())

    (out / "images/val/000000.jpg").unlink()  # incomplete: regenerated even though the manifest matches
    generate(out, **{**SMALL, "seed": 9})
    assert (out / "images/val/000000.jpg").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging or old folder left behind"


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    real, calls = synthetic.render_image, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_image", failing)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "out", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_labels_are_valid_boxes(small):
    rows = label_rows(small.parent)
    imgsz = SMALL["imgsz"]
    assert len(rows) >= SMALL["n_train"] + SMALL["n_val"]  # about 2 objects an image on average
    for c, cx, cy, w, h in rows:
        assert 0 <= c < len(synthetic.DEFAULT_CLASSES)
        assert w * imgsz >= 2 - 1e-3 and h * imgsz >= 2 - 1e-3
        assert 0 <= cx - w / 2 + 1e-6 and cx + w / 2 - 1e-6 <= 1
        assert 0 <= cy - h / 2 + 1e-6 and cy + h / 2 - 1e-6 <= 1
    sizes = [max(w, h) * imgsz for _, _, _, w, h in rows]
    assert min(sizes) < 14 and max(sizes) > 24  # small (cut by the border or partly hidden) and large objects


def test_every_class_appears_and_manifest_counts_match(small):
    rows = label_rows(small.parent)
    manifest = read_manifest(small.parent)
    counted = {
        name: manifest["boxes"]["train"][name] + manifest["boxes"]["val"][name] for name in manifest["boxes"]["val"]
    }
    assert counted == {name: sum(r[0] == i for r in rows) for i, name in enumerate(synthetic.DEFAULT_CLASSES)}
    assert all(n > 0 for n in counted.values()), counted
    assert manifest["images"] == {"train": SMALL["n_train"], "val": SMALL["n_val"]}


def test_empty_images_exist(tmp_path):
    data = generate(tmp_path / "d", n_train=40, n_val=1, imgsz=32)
    assert any(p.stat().st_size == 0 for p in (data.parent / "labels/train").glob("*.txt"))


def test_class_subset_and_order(tmp_path):
    data = generate(tmp_path / "d", n_train=10, n_val=2, imgsz=48, classes=["star", "cross"])
    assert yaml.safe_load(data.read_text())["names"] == {0: "star", 1: "cross"}
    assert {r[0] for r in label_rows(data.parent)} == {0, 1}


def test_difficulty_presets_and_custom(small, tmp_path):
    assert read_manifest(small.parent)["params"]["difficulty"] == "easy"
    hard = generate(tmp_path / "hard", **SMALL, difficulty="hard")
    easy_rows, hard_rows = label_rows(small.parent), label_rows(hard.parent)
    assert len(hard_rows) > len(easy_rows)  # up to 8 objects an image instead of 5
    assert min(max(w, h) for *_, w, h in hard_rows) < min(max(w, h) for *_, w, h in easy_rows)
    assert read_manifest(hard.parent)["params"]["difficulty"] == "hard"

    crowded = dataclasses.replace(synthetic.DIFFICULTIES["easy"], max_objects=8)
    custom = generate(tmp_path / "custom", **SMALL, difficulty=crowded)
    assert read_manifest(custom.parent)["params"]["difficulty"] == crowded.to_dict()
    assert len(label_rows(custom.parent)) > len(easy_rows)
    before = {p: p.stat().st_mtime_ns for p in custom.parent.rglob("*")}
    generate(tmp_path / "custom", **SMALL, difficulty=dataclasses.replace(crowded))  # equal settings: cache hit
    assert {p: p.stat().st_mtime_ns for p in custom.parent.rglob("*")} == before

    with pytest.raises(ConfigError, match="Difficulty: bad clutter, min_visible"):
        dataclasses.replace(crowded, clutter=(3, 1), min_visible=1.5)


def test_ultralytics_loads_it(tmp_path):
    from ultralytics.data.utils import check_det_dataset

    from yolo_prune.data.datasets import loader

    data_yaml = generate(tmp_path / "d", **SMALL)  # own copy: Ultralytics writes label caches into it
    data = check_det_dataset(str(data_yaml), autodownload=False)
    assert data["nc"] == len(synthetic.DEFAULT_CLASSES)
    batch = next(iter(loader(data, "val", 64, 2)))
    assert tuple(batch["img"].shape) == (2, 3, 64, 64)
    first_two = sum(len((data_yaml.parent / f"labels/val/{i:06d}.txt").read_text().splitlines()) for i in range(2))
    assert len(batch["cls"]) == first_two


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_train": 0}, "--train must be an integer >= 1"),
        ({"n_val": -2}, "--val must be an integer >= 1"),
        ({"imgsz": 31}, "--imgsz must be an integer >= 32"),
        ({"imgsz": 64.0}, "--imgsz must be an integer"),
        ({"seed": -1}, "--seed must be an integer >= 0"),
        ({"classes": ["circle", "hexagon"]}, "unknown class name.*hexagon"),
        ({"classes": "circle"}, "classes must be a non-empty list"),
        ({"classes": []}, "classes must be a non-empty list"),
        ({"classes": ["ring", "ring"]}, "repeat"),
        ({"difficulty": "extreme"}, "--difficulty must be one of easy, hard"),
        ({"difficulty": None}, "--difficulty must be one of"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        generate(tmp_path / "d", **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "d").exists()


def test_refuses_to_overwrite_other_folders(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a synthetic dataset"):
        generate(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine/notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        generate(tmp_path / "file", **SMALL)


def test_cli_synth(tmp_path):
    out = tmp_path / "cli"
    args = ["synth", "--out", str(out), "--train", "6", "--val", "3", "--imgsz", "48", "--seed", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert str(out / "data.yaml") in result.output
    manifest = read_manifest(out)
    assert manifest["params"] == {
        "n_train": 6,
        "n_val": 3,
        "imgsz": 48,
        "seed": 1,
        "classes": [*synthetic.DEFAULT_CLASSES],
        "difficulty": synthetic.DEFAULT_DIFFICULTY,
    }
    for name in synthetic.DEFAULT_CLASSES:
        assert name in result.output


def test_cli_synth_errors_and_help(tmp_path):
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--imgsz", "8"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --imgsz must be an integer >= 32, got 8"
    result = runner.invoke(app, ["synth", "--help"])
    assert result.exit_code == 0
    assert "--out" in result.output and "--train" in result.output


def test_cli_defaults_are_the_generators():
    import typer.main

    params = {p.name: p.default for p in typer.main.get_command(app).commands["synth"].params}
    defaults = {k: p.default for k, p in inspect.signature(generate).parameters.items() if k != "out"}
    assert {k: params[k] for k in ("n_train", "n_val", "imgsz", "seed")} == {
        k: defaults[k] for k in ("n_train", "n_val", "imgsz", "seed")
    }


def test_datasets_yaml_documents_the_defaults():
    doc = yaml.safe_load((ROOT / "datasets" / "synthetic.yaml").read_text())
    defaults = {k: p.default for k, p in inspect.signature(generate).parameters.items() if k != "out"}
    assert {k: doc[k] for k in defaults} == {**defaults, "classes": list(defaults["classes"])}
    assert doc["shapes"] == list(synthetic.SHAPES)
    assert doc["difficulties"] == {name: level.to_dict() for name, level in synthetic.DIFFICULTIES.items()}


def test_cli_rejects_unknown_difficulty(tmp_path):
    from typer.testing import CliRunner

    from yolo_prune.app.cli import app

    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "s"), "--difficulty", "insane"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --difficulty must be one of easy, hard or a Difficulty, got 'insane'"
    assert not (tmp_path / "s").exists()
