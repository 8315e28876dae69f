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


def test_an_unknown_task_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--task", "classify", "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: unknown task 'classify'; choose one of: detect, segment, pose, obb"
    assert not out.exists() and "Traceback" not in result.output
