"""Fine-tuning keeps the pruned network, runs resume after a kill, `val` reproduces the report; bad training input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from typer.testing import CliRunner

from yolo_prune import PruneConfig, load_model, measure, prune
from yolo_prune.app.cli import app
from yolo_prune.train.finetune import FinetuneConfig, finetune

runner = CliRunner()
IMGSZ = 64
TRAIN = ["--imgsz", str(IMGSZ), "--batch", "4", "--workers", "0"]


def test_finetune_keeps_pruned_macs(tmp_path, two_class_model, tiny_data):
    pruned, result = prune(load_model(two_class_model), PruneConfig(target_macs=0.5, imgsz=IMGSZ))
    config = FinetuneConfig(epochs=1, batch=4, imgsz=IMGSZ, workers=0)
    done = finetune(pruned, str(tiny_data), config, tmp_path / "train")
    trained = load_model(done.best)
    assert measure(trained, IMGSZ).macs == result.after.macs
    assert measure(trained, IMGSZ).params == result.after.params
    run_args = yaml.safe_load((done.save_dir / "args.yaml").read_text())
    assert run_args["nbs"] == run_args["batch"] == 4  # Ultralytics stepped once per batch, accumulating nothing
    # The trained weights moved: this was a real training of the pruned module, not a rebuilt full-width model.
    assert not torch.equal(trained.model[0].conv.weight, pruned.model[0].conv.weight.to(torch.float32))


def test_prune_finetune_report_and_val_reproduce_it(tmp_path, two_class_model, tiny_data):
    out = tmp_path / "run"
    args = ["prune", str(two_class_model), "--target-macs", "0.5", "--data", str(tiny_data), "--epochs", "2"]
    result = runner.invoke(app, [*args, "--steps", "2", *TRAIN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [round(h["macs_fraction"], 2) for h in report["history"]] == [
        pytest.approx(0.75, abs=0.03),
        pytest.approx(0.50, abs=0.03),
    ]
    for side in ("before", "after"):
        assert {"macs", "params", "map50", "map50_95"} <= set(report[side])
    assert (out / "map_vs_macs.png").stat().st_size > 0 and (out / "widths.png").stat().st_size > 0
    assert measure(load_model(out / "pruned.pt"), IMGSZ).macs == report["after"]["macs"]

    val = runner.invoke(app, ["val", str(out / "pruned.pt"), "--data", str(tiny_data), *TRAIN[:4], "--json"])
    assert val.exit_code == 0, val.output
    metrics = json.loads(val.stdout)
    assert metrics["map50_95"] == pytest.approx(report["after"]["map50_95"], abs=1e-6)
    assert metrics["map50"] == pytest.approx(report["after"]["map50"], abs=1e-6)
    assert [c["name"] for c in metrics["per_class"]] == ["box", "disc"]


def test_resume_after_the_process_is_killed(tmp_path, two_class_model, tiny_data):
    out = tmp_path / "run"
    argv = ["prune", str(two_class_model), "--target-macs", "0.5", "--data", str(tiny_data), "--epochs", "30"]
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "yolo_prune", *argv, *TRAIN, "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = out / "step1" / "train" / "weights" / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the checkpoint write complete
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pruned = out / "step1" / "pruned.pt"
    pruned_mtime = pruned.stat().st_mtime_ns
    assert not (out / "report.json").exists()

    result = runner.invoke(app, ["prune", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert pruned.stat().st_mtime_ns == pruned_mtime  # not pruned again
    rows = (out / "step1" / "train" / "results.csv").read_text().strip().splitlines()[1:]
    # every epoch ran; the one cut short by the kill may appear twice (Ultralytics logs it before saving last.pt)
    epochs = [int(row.split(",")[0]) for row in rows]
    assert set(epochs) == set(range(1, 31)) and epochs[-1] == 30 and len(epochs) <= 31
    report = json.loads((out / "report.json").read_text())
    assert 0.47 <= report["after"]["macs_fraction"] <= 0.53
    again = runner.invoke(app, ["prune", "--resume", str(out)])
    assert again.exit_code == 1 and "is finished" in again.stderr


def test_class_count_mismatch_is_reported(tmp_path, tiny_data):
    out = tmp_path / "o"
    result = runner.invoke(
        app, ["prune", "yolov8n.yaml", "--ratio", "0.3", "--data", str(tiny_data), *TRAIN[:4], "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "error: the dataset has 2 classes but the model has 80" in result.stderr
    assert not out.exists()


def test_the_device_defaults_to_ultralytics_choice_and_cpu_turns_amp_off(tmp_path):
    from yolo_prune.train.finetune import train_args

    default = train_args(FinetuneConfig(), "d.yaml", tmp_path / "run", None, "m.pt")
    assert default["device"] is None and default["amp"] is True  # Ultralytics picks the GPU and checks AMP there
    cpu = train_args(FinetuneConfig(device="cpu"), "d.yaml", tmp_path / "run", None, "m.pt")
    assert cpu["device"] == "cpu" and cpu["amp"] is False


def test_the_seed_reaches_ultralytics(tmp_path):
    from yolo_prune.train.finetune import train_args

    assert train_args(FinetuneConfig(), "d.yaml", tmp_path / "run", None, "m.pt")["seed"] == 0
    assert train_args(FinetuneConfig(seed=7), "d.yaml", tmp_path / "run", None, "m.pt")["seed"] == 7


def test_a_learning_rate_given_is_adamw_s_which_auto_would_ignore(tmp_path):
    from yolo_prune.train.finetune import train_args

    default = train_args(FinetuneConfig(), "d.yaml", tmp_path / "run", None, "m.pt")
    assert "lr0" not in default and "optimizer" not in default  # Ultralytics' auto choice
    given = train_args(FinetuneConfig(lr0=0.003), "d.yaml", tmp_path / "run", None, "m.pt")
    assert (given["lr0"], given["optimizer"]) == (0.003, "AdamW")
    sgd = FinetuneConfig(lr0=0.02, overrides={"optimizer": "SGD"})
    assert train_args(sgd, "d.yaml", tmp_path / "run", None, "m.pt")["optimizer"] == "SGD"


def test_every_batch_is_an_optimizer_step_unless_told_otherwise(tmp_path):
    from yolo_prune.train.finetune import train_args

    assert train_args(FinetuneConfig(batch=8), "d.yaml", tmp_path / "run", None, "m.pt")["nbs"] == 8  # no accumulation
    told = FinetuneConfig(batch=8, overrides={"nbs": 64})  # Ultralytics' own nominal batch, given
    assert train_args(told, "d.yaml", tmp_path / "run", None, "m.pt")["nbs"] == 64


def test_train_distills_from_a_teacher_and_refuses_one_of_other_classes(tmp_path, two_class_model, tiny_data):
    pruned = tmp_path / "prune"
    cut = runner.invoke(app, ["prune", str(two_class_model), "--ratio", "0.3", *TRAIN[:2], "--out", str(pruned)])
    assert cut.exit_code == 0, cut.output
    out = tmp_path / "taught"
    args = ["train", str(pruned / "pruned.pt"), "--data", str(tiny_data), "--epochs", "1", *TRAIN, "--device", "cpu"]
    result = runner.invoke(
        app, [*args, "--teacher", str(two_class_model), "--distill-weight", "0.5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    trained = yaml.safe_load((out / "train" / "args.yaml").read_text())
    assert (trained["distill_model"], trained["dis"]) == (str(two_class_model), 0.5)  # Ultralytics' distillation
    report = json.loads((out / "report.json").read_text())
    assert report["teacher"] == str(two_class_model) and report["train"]["distill"] is True
    assert report["macs"] == measure(load_model(pruned / "pruned.pt"), IMGSZ).macs  # the student stayed pruned

    demo = "yolo_prune/app/baselines/demo-yolov8n.pt"  # four classes
    other = runner.invoke(app, [*args, "--teacher", demo, "--out", str(tmp_path / "refused")])
    assert other.exit_code == 1
    assert f"error: --teacher {demo} has the classes" in other.stderr and "{0: 'box', 1: 'disc'}" in other.stderr
    assert not (tmp_path / "refused").exists()
