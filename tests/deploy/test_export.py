"""Export to ONNX (checked for parity), TorchScript and OpenVINO, through the API and the CLI; the CLI's one-line
errors for `export` and `bench`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import IMGSZ, run_onnx
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.deploy.export import export_format, export_onnx
from yolo_prune.deploy.parity import DEFAULT_TOLERANCE, default_images, letterbox

runner = CliRunner()
ANCHORS = (IMGSZ // 8) ** 2 + (IMGSZ // 16) ** 2 + (IMGSZ // 32) ** 2


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml"])
def test_onnx_export_of_pruned_model_passes_parity(tmp_path, weights, yaml):
    pt = weights(yaml)
    digest, before = sha256(pt), sorted(pt.parent.iterdir())
    out = tmp_path / "exported" / "model.onnx"
    result = export_onnx(pt, out=out, imgsz=IMGSZ)

    assert result.file == out and out.is_file() and result.size_bytes == out.stat().st_size
    assert [Path(p).name for p in result.parity.images] == ["bus.jpg", "zidane.jpg"]
    assert result.parity.passed and result.parity.tolerance == DEFAULT_TOLERANCE
    assert 0 <= result.parity.relative_diff < 1e-5, result.parity
    assert result.parity.max_abs_diff == max(result.parity.box_abs_diff, result.parity.score_abs_diff)
    assert run_onnx(out, letterbox(default_images()[0], IMGSZ)).shape == (1, 84, ANCHORS)
    assert sha256(pt) == digest and sorted(pt.parent.iterdir()) == before  # input untouched, nothing beside it
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no temporary files left


def test_yolo26_end2end_export_matches_topk_output(tmp_path, weights):
    result = export_onnx(weights("yolo26n.yaml"), out=tmp_path / "e2e.onnx", imgsz=IMGSZ, end2end=True)
    assert result.parity.passed and result.parity.relative_diff < 1e-5
    # x1 y1 x2 y2 score class for min(300, anchors) candidates
    assert run_onnx(result.file, letterbox(default_images()[1], IMGSZ)).shape == (1, ANCHORS, 6)


def test_dynamic_export_is_checked_on_a_batch(tmp_path, weights):
    result = export_onnx(weights("yolov8n.yaml"), out=tmp_path / "dyn.onnx", imgsz=IMGSZ, dynamic=True)
    assert result.parity.passed
    x = np.concatenate([letterbox(p, 2 * IMGSZ) for p in default_images()])
    assert run_onnx(result.file, x).shape == (2, 84, 4 * ANCHORS)


def test_torchscript_export_passes_parity(tmp_path, weights):
    result = export_format(weights("yolo11n.yaml"), "torchscript", IMGSZ, out=tmp_path / "m.torchscript")
    assert result.format == "torchscript" and result.file.is_file() and result.parity.passed


def test_cli_export_json_and_table(tmp_path, weights):
    out = tmp_path / "m.onnx"
    result = runner.invoke(
        app, ["export", str(weights("yolov8n.yaml")), "--imgsz", str(IMGSZ), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["results"][0]["file"] == str(out) and payload["results"][0]["parity"]["passed"] is True
    assert payload["results"][0]["fast_dfl"] is True  # the default
    table = runner.invoke(app, ["export", str(weights("yolov8n.yaml")), "--imgsz", str(IMGSZ), "--out", str(out)])
    assert table.exit_code == 0 and "parity (of range)" in table.stdout and " yes" in table.stdout


@pytest.mark.parametrize("command", ["export", "bench"])
def test_commands_have_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
