"""`val`: a dataset whose folders are missing and a model that is not a checkpoint are one-line errors."""

from __future__ import annotations

from typer.testing import CliRunner

from yolo_prune.app.cli import app

runner = CliRunner()


def test_missing_dataset_folder(tmp_path, two_class_model):
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames:\n  0: a\n  1: b\n")
    result = runner.invoke(app, ["val", str(two_class_model), "--data", str(data), "--imgsz", "64"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: --data {data}:"), result.stderr
    assert "Traceback" not in result.output
