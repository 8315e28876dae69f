"""The synthetic dataset for segment, pose and obb: label files that Ultralytics' own dataset code loads for that task,
geometry that matches the painted pixels, caches apart per task, and detect output unchanged."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.data import synthetic
from yolo_prune.data.synthetic import generate, read_manifest
from yolo_prune.data.synthetic_labels import FLIP_IDX, KEYPOINTS, TASKS
from yolo_prune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
IMGSZ = 128
# Every shape, so rings and letters (polygons with holes) and circles (oriented boxes of any angle) occur.
PARAMS = {"n_train": 8, "n_val": 4, "imgsz": IMGSZ, "seed": 2, "classes": list(synthetic.SHAPES)}
SPLITS = ("train", "val")
# sha256 of the label files of generate(**DETECT_PINNED) as written before tasks existed: detect output must not
# change, or the cached demo datasets and the committed demo baseline would no longer match. (It depends on the
# OpenCV and NumPy versions too, like every byte of the dataset.)
DETECT_PINNED = {"n_train": 24, "n_val": 8, "imgsz": 64, "seed": 3}
DETECT_LABELS_SHA256 = "2d02029a334b9c41c3f1558168d2f3c15caf0e92d3c91aa590eacf3acfcc20df"


def rows(root: Path, split: str) -> dict[str, list[list[float]]]:
    """The label rows of each image of a split, by file stem."""
    return {
        p.stem: [list(map(float, line.split())) for line in p.read_text().splitlines()]
        for p in sorted((root / "labels" / split).glob("*.txt"))
    }


def painted(split: str, i: int) -> list:
    """The objects render_image labels in image i of a split of the PARAMS dataset (as generate draws it)."""
    rng = np.random.default_rng([PARAMS["seed"], SPLITS.index(split), i])
    level = synthetic.DIFFICULTIES[synthetic.DEFAULT_DIFFICULTY]
    return synthetic.render_image(rng, IMGSZ, PARAMS["classes"], level)[1]


def visible_mask(obj) -> np.ndarray:
    mask = np.zeros((IMGSZ, IMGSZ), bool)
    x0, y0, x1, y1 = obj.box
    mask[y0:y1, x0:x1] = obj.visible
    return mask


def area(polygon: np.ndarray) -> float:
    x, y = polygon.T
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """Each task's dataset: data.yaml by task (own folders: Ultralytics writes label caches into them)."""
    root = tmp_path_factory.mktemp("tasks")
    return {task: generate(root / task, **PARAMS, task=task) for task in TASKS}


def ultralytics_dataset(data_yaml: Path, task: str, split: str, **overrides):
    """Ultralytics' dataset of a split for `task`, its data dict and its label cache (counts and warnings)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset, load_dataset_cache_file

    data = check_det_dataset(str(data_yaml), autodownload=False)
    cfg = get_cfg(overrides={"imgsz": IMGSZ, "task": task, **overrides})
    dataset = build_yolo_dataset(cfg, data[split], 4, data, mode="val")
    cache = load_dataset_cache_file(Path(dataset.label_files[0]).parent.with_suffix(".cache"))
    return dataset, data, cache


@pytest.mark.parametrize("task", TASKS)
def test_ultralytics_loads_every_image_and_instance(datasets, task):
    manifest = read_manifest(datasets[task].parent)
    tagged = {} if task == "detect" else {"task": task}  # detect manifests stay as they were before tasks
    assert manifest["params"] == {**PARAMS, "difficulty": synthetic.DEFAULT_DIFFICULTY, **tagged}
    for split in SPLITS:
        dataset, data, cache = ultralytics_dataset(datasets[task], task, split)
        found, missing, empty, corrupt, n = cache["results"]
        assert (found, missing, corrupt, n) == (PARAMS[f"n_{split}"], 0, 0, PARAMS[f"n_{split}"]), cache["msgs"]
        assert cache["msgs"] == []  # no warnings either (duplicate labels, out-of-range points...)
        assert len(dataset) == PARAMS[f"n_{split}"]
        counts = np.bincount(np.concatenate([lb["cls"].ravel() for lb in dataset.labels]).astype(int), minlength=7)
        assert dict(zip(PARAMS["classes"], counts.tolist())) == manifest["boxes"][split]
        for i in range(len(dataset)):
            item, n = dataset[i], len(dataset.labels[i]["cls"])
            assert tuple(item["img"].shape) == (3, IMGSZ, IMGSZ)
            assert tuple(item["cls"].shape) == (n, 1)
            assert tuple(item["bboxes"].shape) == (n, 5 if task == "obb" else 4)
            if task == "segment":
                assert tuple(item["masks"].shape) == (1, IMGSZ // 4, IMGSZ // 4)  # overlap_mask: instance indices
                assert int(item["masks"].max()) == n
            if task == "pose":
                assert tuple(item["keypoints"].shape) == (n, len(KEYPOINTS), 3)
                assert data["kpt_shape"] == [4, 3] and data["flip_idx"] == FLIP_IDX
    assert sum(sum(c.values()) for c in manifest["boxes"].values()) >= PARAMS["n_train"] + PARAMS["n_val"]


def test_every_task_labels_the_same_objects_in_the_same_images(datasets):
    detect = datasets["detect"].parent
    images = {p.relative_to(detect): p.read_bytes() for p in sorted(detect.glob("images/*/*.jpg"))}
    for task in TASKS:
        root = datasets[task].parent
        assert {p.relative_to(root): p.read_bytes() for p in sorted(root.glob("images/*/*.jpg"))} == images
        assert read_manifest(root)["boxes"] == read_manifest(detect)["boxes"]
        for split in SPLITS:
            assert {k: [r[0] for r in v] for k, v in rows(root, split).items()} == {
                k: [r[0] for r in v] for k, v in rows(detect, split).items()
            }
    for split in SPLITS:  # a pose line starts with the detect line
        pose, boxes = rows(datasets["pose"].parent, split), rows(detect, split)
        assert {k: [r[:5] for r in v] for k, v in pose.items()} == boxes


def test_segment_polygons_follow_the_painted_pixels(datasets):
    root, holes_seen, ratios, ious = datasets["segment"].parent, 0, [], []
    for split in SPLITS:
        for stem, lines in rows(root, split).items():
            for row, obj in zip(lines, painted(split, int(stem)), strict=True):
                assert len(row) >= 7 and len(row) % 2 == 1  # class and 3 points or more
                polygon = np.array(row[1:]).reshape(-1, 2) * IMGSZ
                assert polygon.min() >= 0 and polygon.max() <= IMGSZ
                mine, pixels = visible_mask(obj), int(obj.visible.sum())
                assert area(polygon) <= 1.05 * pixels + 2
                if cv2.connectedComponents(obj.visible.astype(np.uint8))[0] > 2:
                    continue  # cut apart by strokes or other objects: the polygon is the largest piece only
                ratios.append(area(polygon) / pixels)
                assert area(polygon) >= 0.85 * pixels - 2, (split, stem, row[0])
                # Filled the way Ultralytics fills polygons (cv2.fillPoly), here at pixel centres.
                filled = np.zeros((IMGSZ, IMGSZ), np.uint8)
                cv2.fillPoly(filled, [np.round((polygon - 0.5) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
                filled = filled.astype(bool)
                ious.append((filled & mine).sum() / (filled | mine).sum())
                assert ious[-1] > 0.65, (split, stem, row[0], ious[-1])
                # Holes (rings, letters) stay empty: the pixels well inside the outline that the object does not show.
                outer, _ = cv2.findContours(mine.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
                enclosed = cv2.drawContours(np.zeros((IMGSZ, IMGSZ), np.uint8), outer, -1, 1, -1).astype(bool)
                holes = cv2.erode((enclosed & ~mine).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                if holes.sum() >= 4:
                    holes_seen += 1
                    assert filled[holes].mean() < 0.1, (split, stem, row[0], "hole filled")
    assert holes_seen >= 2
    assert 0.95 <= float(np.median(ratios)) <= 1.02
    assert float(np.median(ious)) > 0.88


def test_ultralytics_masks_match_the_painted_pixels(datasets):
    dataset, _, _ = ultralytics_dataset(datasets["segment"], "segment", "val", overlap_mask=False, mask_ratio=1)
    ious = []
    for i in range(len(dataset)):
        masks = dataset[i]["masks"].numpy().astype(bool)  # (n, H, W), in label order
        objects = painted("val", int(Path(dataset.im_files[i]).stem))
        assert masks.shape == (len(objects), IMGSZ, IMGSZ)
        for mask, obj in zip(masks, objects, strict=True):
            mine = visible_mask(obj)
            ious.append((mask & mine).sum() / (mask | mine).sum())
    assert ious and float(np.median(ious)) > 0.8  # Ultralytics truncates vertices to whole pixels


def test_pose_keypoints_are_the_extreme_points(datasets):
    root, visibilities = datasets["pose"].parent, []
    for split in SPLITS:
        for stem, lines in rows(root, split).items():
            for row, obj in zip(lines, painted(split, int(stem)), strict=True):
                assert len(row) == 5 + 3 * len(KEYPOINTS)
                cx, cy, w, h = (v * IMGSZ for v in row[1:5])
                points = np.array(row[5:]).reshape(-1, 3)
                xy, v = points[:, :2] * IMGSZ, points[:, 2]
                visibilities += v.tolist()
                assert set(v) <= {0, 1, 2}
                assert (xy[v == 0] == 0).all()
                assert ((xy[v > 0] > 0) & (xy[v > 0] < IMGSZ)).all()
                shown = xy[v == 2]  # visible pixels of the object: inside its box, on its painted pixels
                assert (np.abs(shown - (cx, cy)) <= (w / 2, h / 2)).all()
                assert visible_mask(obj)[shown[:, 1].astype(int), shown[:, 0].astype(int)].all()
                # Top-most, right-most, bottom-most, left-most pixel centre of the whole painted shape.
                ys, xs = np.nonzero(obj.alpha >= 0.5)
                ox, oy = obj.origin
                extremes = (oy + ys.min(), ox + xs.max(), oy + ys.max(), ox + xs.min())
                ties = (ys == ys.min(), xs == xs.max(), ys == ys.max(), xs == xs.min())
                for k, (coordinate, extreme) in enumerate(zip((xy[0, 1], xy[1, 0], xy[2, 1], xy[3, 0]), extremes)):
                    if v[k]:
                        assert coordinate == pytest.approx(extreme + 0.5, abs=1e-3)
                    else:  # only points outside the image go unlabelled
                        x, y = xs[ties[k]] + ox, ys[ties[k]] + oy
                        assert not ((x >= 0) & (x < IMGSZ) & (y >= 0) & (y < IMGSZ)).all()
    assert visibilities.count(2) > 0.7 * len(visibilities)
    assert visibilities.count(0) > 0  # objects cut by the border


def test_pose_flip_idx_keeps_the_keypoints_meaning(datasets):
    from ultralytics.data.augment import RandomFlip

    dataset, data, _ = ultralytics_dataset(datasets["pose"], "pose", "train")
    flip = RandomFlip(p=1.0, direction="horizontal", flip_idx=data["flip_idx"])
    checked = 0
    for i in range(len(dataset)):
        labels = dataset.get_image_and_label(i)
        labels["instances"].denormalize(IMGSZ, IMGSZ)
        kpts = flip(labels)["instances"].keypoints  # (n, 4, 3) in pixels
        for k in kpts:
            seen = k[:, 2] > 0
            if seen[1] and seen[3]:
                assert k[1, 0] >= k[seen, 0].max() - 1e-3 and k[3, 0] <= k[seen, 0].min() + 1e-3  # right, left
                checked += 1
            if seen[0] and seen[2]:
                assert k[0, 1] <= k[seen, 1].min() + 1e-3 and k[2, 1] >= k[seen, 1].max() - 1e-3  # top, bottom
    assert checked > 5


def test_obb_is_the_min_area_rectangle_of_the_visible_pixels(datasets):
    root, angles = datasets["obb"].parent, []
    for split in SPLITS:
        for stem, lines in rows(root, split).items():
            for row, obj in zip(lines, painted(split, int(stem)), strict=True):
                assert len(row) == 9
                corners = np.array(row[1:]).reshape(4, 2) * IMGSZ
                sides = np.roll(corners, -1, 0) - corners
                lengths = np.linalg.norm(sides, axis=1)
                assert np.allclose(lengths[:2], lengths[2:], atol=1e-3)  # a rectangle
                assert abs(float(np.dot(sides[0], sides[1]))) <= 1e-3 * max(1.0, lengths[0] * lengths[1]) + 5e-3
                assert lengths.min() >= 1 and corners.min() >= -0.3 * IMGSZ and corners.max() <= 1.3 * IMGSZ
                ys, xs = np.nonzero(visible_mask(obj))
                contour = corners.astype(np.float32).reshape(-1, 1, 2)
                assert all(cv2.pointPolygonTest(contour, (x + 0.5, y + 0.5), True) >= -1e-3 for x, y in zip(xs, ys))
                x0, y0, x1, y1 = obj.box
                assert lengths[0] * lengths[1] <= (x1 - x0) * (y1 - y0) + 0.05  # no larger than the upright box
                angles.append(np.degrees(np.arctan2(sides[0, 1], sides[0, 0])) % 90)
    tilted = [a for a in angles if 5 < a < 85]
    assert len(tilted) > len(angles) / 2  # the shapes are drawn at random angles


def test_same_seed_same_bytes_and_caches_apart(datasets, tmp_path):
    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".txt")
        }

    for task in ("segment", "pose", "obb"):
        again = generate(tmp_path / task, **PARAMS, task=task)
        assert files(again.parent) == files(datasets[task].parent)
        assert again.read_text() == datasets[task].read_text().replace(str(datasets[task].parent), str(again.parent))
    out = tmp_path / "segment"  # a cached segment dataset is regenerated, not reused, for another task
    generate(out, **PARAMS, task="obb")
    assert read_manifest(out)["params"]["task"] == "obb"
    assert files(out) == files(tmp_path / "obb")
    generate(out, **PARAMS)
    assert "task" not in read_manifest(out)["params"]
    assert files(out) == files(datasets["detect"].parent)
    with pytest.raises(ConfigError, match="--task must be one of detect, segment, pose, obb, got 'classify'"):
        generate(tmp_path / "bad", **PARAMS, task="classify")


def test_detect_output_is_unchanged(tmp_path):
    explicit = generate(tmp_path / "explicit", **DETECT_PINNED, task="detect").parent
    default = generate(tmp_path / "default", **DETECT_PINNED).parent
    labels = b"".join(p.read_bytes() for p in sorted(default.glob("labels/*/*.txt")))
    assert hashlib.sha256(labels).hexdigest() == DETECT_LABELS_SHA256
    for name in ("images/val/000003.jpg", "labels/train/000007.txt", "synthetic.json"):
        assert (explicit / name).read_bytes() == (default / name).read_bytes()
    manifest = read_manifest(default)
    assert set(manifest) == {"generator", "version", "params", "images", "boxes"}
    assert manifest["version"] == 2 and "task" not in manifest["params"]
    data = (default / "data.yaml").read_text()
    assert data.startswith("# synthetic shapes made by yolo-prune synth (seed 3, easy); see synthetic.json\n")
    assert "kpt_shape" not in data


def test_pose_data_yaml(datasets):
    data = yaml.safe_load(datasets["pose"].read_text())
    assert data["kpt_shape"] == [4, 3] and data["flip_idx"] == [0, 3, 2, 1]
    assert data["kpt_names"] == {i: list(KEYPOINTS) for i in range(len(PARAMS["classes"]))}
    assert "&" not in datasets["pose"].read_text()  # no YAML anchors
    for task in ("detect", "segment", "obb"):
        assert set(yaml.safe_load(datasets[task].read_text())) == {"path", "train", "val", "names"}


def test_cli_synth_task(tmp_path):
    result = CliRunner().invoke(
        app, ["synth", "--out", str(tmp_path / "p"), "--train", "3", "--val", "2", "--task", "pose"]
    )
    assert result.exit_code == 0, result.output
    assert read_manifest(tmp_path / "p")["params"]["task"] == "pose"
    assert yaml.safe_load((tmp_path / "p" / "data.yaml").read_text())["kpt_shape"] == [4, 3]
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x"), "--task", "classify"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --task must be one of detect, segment, pose, obb, got 'classify'"
    assert not (tmp_path / "x").exists()
    result = CliRunner().invoke(app, ["synth", "--help"])
    assert "--task" in result.output


def test_task_defaults_are_documented():
    import typer.main

    params = {p.name: p.default for p in typer.main.get_command(app).commands["synth"].params}
    assert params["task"] == inspect.signature(generate).parameters["task"].default == "detect"
    doc = yaml.safe_load((ROOT / "datasets" / "synthetic.yaml").read_text())
    assert doc["task"] == "detect" and doc["tasks"] == list(TASKS)
    readme = (ROOT / "datasets" / "README.md").read_text()
    assert all(f"--task {task}" in readme for task in TASKS[1:])
