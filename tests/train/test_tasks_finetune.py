"""A pruned segment, pose or OBB model fine-tunes through Ultralytics' own task trainer, keeps its pruned width in
every checkpoint, and its run reports the task's metric before and after."""

from __future__ import annotations

import json

import pytest

from yolo_prune.app.prune_run import run_prune
from yolo_prune.data.synthetic import generate
from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.cost import measure
from yolo_prune.pruning.load import load_model, task_of
from yolo_prune.train.finetune import FinetuneConfig

IMGSZ = 64
CASES = {
    "segment": ("yolov8n-seg.yaml", "mask_map50_95"),
    "pose": ("yolo11n-pose.yaml", "pose_map50_95"),
    "obb": ("yolov8n-obb.yaml", "map50_95"),
}


@pytest.mark.parametrize("task", CASES)
def test_one_epoch_keeps_the_pruned_width_and_reports_the_task_metric(tmp_path, task):
    yaml, metric = CASES[task]
    data = generate(tmp_path / "data", n_train=8, n_val=4, imgsz=IMGSZ, task=task)
    names = {0: "circle", 1: "rectangle", 2: "triangle", 3: "star"}
    kpt_shape = [4, 3] if task == "pose" else None
    source = save_checkpoint(load_model(yaml, names=names, kpt_shape=kpt_shape), tmp_path / "model.pt")
    config = PruneConfig(target_macs=0.5, imgsz=IMGSZ, data=str(data))
    train = FinetuneConfig(epochs=1, batch=4, imgsz=IMGSZ, workers=0, device="cpu")
    report = run_prune(str(source), config, tmp_path / "run", train=train)

    pruned_macs = json.loads((tmp_path / "run" / "step1" / "prune.json").read_text())["after"]["macs"]
    weights = sorted((tmp_path / "run" / "step1" / "train" / "weights").glob("*.pt"))
    assert [w.name for w in weights] == ["best.pt", "last.pt"]
    for checkpoint in [*weights, tmp_path / "run" / "pruned.pt"]:
        model = load_model(checkpoint)
        assert task_of(model) == task
        assert measure(model, IMGSZ).macs == pruned_macs, checkpoint
    for side in (report.before, report.after):
        assert isinstance(side[metric], float) and 0.0 <= side[metric] <= 1.0
    assert report.after["macs_fraction"] == pytest.approx(0.5, abs=0.03)
