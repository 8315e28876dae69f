"""`demo`: it refuses to overwrite a finished run, and unknown tasks."""

from __future__ import annotations

from typer.testing import CliRunner

from yolo_prune.app.cli import app

runner = CliRunner()


def test_demo_refuses_to_overwrite_a_run(tmp_path):
    (tmp_path / "report.json").write_text("{}")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path} already holds a finished run; choose another --out"
