"""The `yolo-prune` command line: outputs, reload in a fresh process, and one-line errors for bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_weights
from typer.testing import CliRunner

from yolo_prune.app.cli import app

runner = CliRunner()

# Loads a checkpoint with stock Ultralytics while yolo_prune cannot be imported, runs it, prints what it saw.
RELOAD = """
import json, sys
sys.modules["yolo_prune"] = None  # any attempt to import yolo_prune now fails
import torch
from ultralytics import YOLO
from ultralytics.utils.torch_utils import get_flops
yolo = YOLO(sys.argv[1])
model = yolo.model.eval()
torch.manual_seed(0)
with torch.no_grad():
    out = model(torch.rand(1, 3, int(sys.argv[2]), int(sys.argv[2])))
preds = out[0]
if getattr(model.model[-1], "one2one_cv2", None) is not None:
    model.model[-1].fuse()  # as the exporter: an end-to-end head keeps only the branch the model runs
print(json.dumps({"shape": list(preds.shape), "names": {str(k): v for k, v in model.names.items()},
                  "stride": model.stride.tolist(), "has_yaml": bool(model.yaml),
                  "macs": get_flops(model, int(sys.argv[2])) / 2 * 1e9}))
"""


def reload_in_fresh_process(weights: Path, imgsz: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, str(weights), str(imgsz)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# yolo11n's head is yolov8n's; its blocks are pruned and reloaded by tests/pruning/test_architectures.py
@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo26n.yaml"])
def test_prune_yaml_writes_reloadable_checkpoint(tmp_path, yaml):
    out = tmp_path / "run"
    result = runner.invoke(app, ["prune", yaml, "--target-macs", "0.5", "--imgsz", "128", "--out", str(out)])
    assert result.exit_code == 0, result.output

    report = json.loads((out / "report.json").read_text())
    fraction = report["after"]["macs"] / report["before"]["macs"]
    assert 0.47 <= fraction <= 0.53
    assert report["after"]["params"] < report["before"]["params"]
    assert len(report["after"]["layers"]) == len(report["before"]["layers"])
    assert report["prune"]["layers"]["model.0.conv"]["before"] == 16
    assert "GMACs @128" in result.output and "after/before" in result.output

    seen = reload_in_fresh_process(out / "pruned.pt", 128)
    original = reload_in_fresh_process(Path(yaml), 128)  # stock Ultralytics builds the YAML
    assert seen["shape"] == original["shape"] == [1, 84, 336]  # (batch, 4 box + 80 classes, anchors)
    assert seen["stride"] == [8.0, 16.0, 32.0] and seen["has_yaml"]
    # Ultralytics' own FLOPs counter agrees with our MACs count of the pruned model, up to what only it counts: on
    # yolo26n at 128 a near-constant 1.3-1.6 M MACs (1.3% of the original, 2.1% once the data-free default keeps
    # the head whole and halves the rest).
    assert seen["macs"] == pytest.approx(report["after"]["macs"], rel=0.03)
    assert seen["macs"] - report["after"]["macs"] <= original["macs"] - report["before"]["macs"] + 0.005 * seen["macs"]


def test_prune_trained_checkpoint_keeps_names_and_input(tmp_path):
    weights = shared_weights("yolov8n-bccd.pt")
    digest = sha256(weights)
    out = tmp_path / "run"
    result = runner.invoke(app, ["prune", str(weights), "--target-macs", "0.5", "--imgsz", "160", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert 0.47 <= report["after"]["macs"] / report["before"]["macs"] <= 0.53
    seen = reload_in_fresh_process(out / "pruned.pt", 160)
    assert seen["names"] == {"0": "RBC", "1": "WBC", "2": "Platelets"}
    assert seen["shape"] == [1, 7, 525]  # 20x20 + 10x10 + 5x5 anchors at 160
    assert sha256(weights) == digest


@pytest.fixture
def corrupt_pt(tmp_path) -> Path:
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"not a checkpoint" * 64)
    return path


# Bad values of options, found before anything is loaded, are test_bad_input.py's; these take reading the model.
@pytest.mark.parametrize(
    "args, message",
    [
        (["prune", "{corrupt}", "--ratio", "0.3"], "error: cannot read {corrupt}: not a valid Ultralytics model"),
        (["prune", "yolov8n-cls.yaml", "--ratio", "0.3"], "error: yolov8n-cls.yaml holds a ClassificationModel"),
        (["prune", "rtdetr-l.yaml", "--ratio", "0.3"], "error: rtdetr-l.yaml: unsupported model"),
        (["prune", "yolov8s-worldv2.yaml", "--ratio", "0.3"], "error: yolov8s-worldv2.yaml holds a WorldDetect"),
        (["prune", "yolov8n.yaml", "--target-macs", "0.001", "--imgsz", "64"], "error: could not reach 0.1%"),
    ],
)
def test_bad_model_is_one_line_error_and_writes_nothing(tmp_path, corrupt_pt, args, message):
    out = tmp_path / "out"
    args = [a.replace("{corrupt}", str(corrupt_pt)) for a in args]
    if args[0] == "prune":
        args += ["--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(message.replace("{corrupt}", str(corrupt_pt))), result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_out_must_not_overwrite_input(tmp_path):
    weights = tmp_path / "pruned.pt"
    first = runner.invoke(app, ["prune", "yolov8n.yaml", "--ratio", "0.2", "--imgsz", "64", "--out", str(tmp_path)])
    assert first.exit_code == 0, first.output
    digest = sha256(weights)
    again = runner.invoke(app, ["prune", str(weights), "--ratio", "0.2", "--imgsz", "64", "--out", str(tmp_path)])
    assert again.exit_code == 1 and "would overwrite the input model" in again.stderr
    assert sha256(weights) == digest


@pytest.mark.parametrize("command", [[], ["prune"], ["info"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "yolo_prune", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "prune" in done.stdout


def test_prune_reports_the_latency_model_and_its_default_allocation(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["prune", "yolov8n.yaml", "--target-macs", "0.5", "--imgsz", "64", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "latency model on onnxruntime-cpu: convs" in result.output
    prune_info = json.loads((out / "report.json").read_text())["prune"]
    assert prune_info["allocation"] == "latency"
    assert prune_info["search"]["variable"] == "latency budget"
    assert prune_info["latency_model"]["predicted_speedup"] > 1.0


@pytest.mark.slow
def test_prune_to_a_speedup_is_measured_end_to_end(tmp_path):
    out = tmp_path / "run"
    args = ["prune", "yolov8n.yaml", "--target-speedup", "1.5", "--imgsz", "320", "--threads", "1", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    speedup = json.loads((out / "report.json").read_text())["prune"]["speedup"]
    assert speedup["target"] == 1.5
    assert speedup["measured"] == pytest.approx(1.5, rel=0.05)
    assert speedup["original_ms"] > speedup["pruned_ms"]
    assert "end to end (target 1.50x" in result.output


# Bad values found before any timing are test_bad_input.py's; these take timing the original or pruning.
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-speedup", "60"], "error: could not reach a predicted 60.00x speedup on onnxruntime-cpu"),
        (["--target-latency", "10000"], "is not below the original's"),
    ],
)
def test_unreachable_speed_targets_are_one_line(tmp_path, args, message):
    out = tmp_path / "run"
    result = runner.invoke(app, ["prune", "yolov8n.yaml", "--imgsz", "64", *args, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()  # nothing half-written
