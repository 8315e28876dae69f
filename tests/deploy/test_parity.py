"""The parity check of an export: the test models are lively enough for it to mean something, the tolerance decides,
and a failure names the file and keeps it."""

from __future__ import annotations

import pytest
import torch
from conftest import IMGSZ
from typer.testing import CliRunner

from yolo_prune import load_model
from yolo_prune.app.cli import app
from yolo_prune.deploy.export import export_onnx
from yolo_prune.deploy.parity import default_images, letterbox
from yolo_prune.errors import ExportError

runner = CliRunner()


def test_lively_models_depend_on_the_image(weights):
    model = load_model(weights("yolov8n.yaml"))
    bus, zidane = (torch.from_numpy(letterbox(p, IMGSZ)) for p in default_images())
    with torch.no_grad():
        assert (model(bus)[0] - model(zidane)[0]).abs().max() > 0.5  # pixels


def test_parity_failure_raises_and_keeps_the_file(tmp_path, weights, corrupting_exporter):
    out = tmp_path / "bad.onnx"
    with pytest.raises(
        ExportError, match=r"parity check failed: .*bad\.onnx differs .* the file is kept at .*bad\.onnx"
    ):
        export_onnx(weights("yolo11n.yaml"), out=out, imgsz=IMGSZ)
    assert out.is_file()


def test_tolerance_is_what_decides(tmp_path, weights):
    pt = weights("yolov8n.yaml")
    ok = export_onnx(pt, out=tmp_path / "a.onnx", imgsz=IMGSZ)
    assert ok.parity.relative_diff > 0  # the two runtimes do round differently
    with pytest.raises(ExportError, match="above the tolerance"):
        export_onnx(pt, out=tmp_path / "b.onnx", imgsz=IMGSZ, tolerance=ok.parity.relative_diff / 2)
    assert (tmp_path / "b.onnx").is_file()


def test_cli_parity_failure_is_one_line_naming_the_file(tmp_path, weights, corrupting_exporter):
    out = tmp_path / "bad.onnx"
    result = runner.invoke(app, ["export", str(weights("yolov8n.yaml")), "--imgsz", str(IMGSZ), "--out", str(out)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: parity check failed") and str(out) in errors[0]
    assert out.is_file()
