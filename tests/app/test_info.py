"""`info`: a model's parameters, MACs and layer widths, as JSON or as a table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from yolo_prune.app.cli import app

runner = CliRunner()


def test_info_json():
    result = runner.invoke(app, ["info", "yolov8n.yaml", "--imgsz", "320", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["params"] == 3157200
    assert info["macs"] == pytest.approx(8.7e9 / 2 * (320 / 640) ** 2, rel=0.05)
    assert [layer["out_channels"] for layer in info["layers"][:3]] == [16, 32, 32]


def test_info_table():
    result = runner.invoke(app, ["info", "yolo11n.yaml", "--imgsz", "320"])
    assert result.exit_code == 0, result.output
    assert "C2PSA" in result.output and "GMACs @320" in result.output
