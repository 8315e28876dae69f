"""Run folders and checkpoints written by 0.1.0 (tests/fixtures/run-0.1.0, made before the package was layered) still
load and resume with today's code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import write_tiny_dataset
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.app.state import RunState, search_of
from yolo_prune.pruning.checkpoint import read_metadata
from yolo_prune.pruning.cost import measure
from yolo_prune.pruning.load import load_model

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-0.1.0"
PREFIX = "/tmp/yp-fixture"  # where the fixture was made; see its README


@pytest.fixture
def old_run(tmp_path) -> Path:
    """The fixture copied into `tmp_path`, its recorded paths pointed there, its dataset rebuilt (same seed)."""
    root = tmp_path / "yp"
    shutil.copytree(FIXTURE, root)
    state = root / "run" / "state.json"
    state.write_text(state.read_text().replace(PREFIX, str(root)))
    write_tiny_dataset(root / "data")
    return root / "run"


def test_the_old_state_reads_into_the_typed_state(old_run):
    state = RunState.load(old_run)
    assert (state.steps, len(state.history), state.done) == (2, 1, False)
    assert state.config.target_macs == 0.5 and state.config.allocation == "uniform" and state.train.epochs == 2
    assert state.before["macs"] == 6901672
    # 0.1.0 stored the searched value as `ratio`; it was a channel ratio under uniform allocation
    prune_info = json.loads((old_run / "step1" / "prune.json").read_text())
    assert "search" not in prune_info
    assert search_of(prune_info) == ("channel ratio", prune_info["ratio"])
    # saving writes the same keys back, so 0.1.0 could still read what today's code writes
    state.save(old_run)
    assert set(json.loads((old_run / "state.json").read_text())) >= {"source", "config", "train", "history", "before"}


def test_old_checkpoints_load(old_run):
    pruned = load_model(old_run / "step1" / "pruned.pt")
    tuned = load_model(old_run / "step1" / "train" / "weights" / "best.pt")
    assert measure(pruned, 64).macs == measure(tuned, 64).macs == RunState.load(old_run).history[0]["macs"]
    assert read_metadata(old_run / "step1" / "pruned.pt")["versions"]["yolo_prune"] == "0.1.0"
    with torch.no_grad():
        assert tuned(torch.rand(1, 3, 64, 64))[0].shape == (1, 4 + 2, 84)


def test_an_old_interrupted_run_resumes_to_the_end(old_run):
    result = CliRunner().invoke(app, ["prune", "--resume", str(old_run)])
    assert result.exit_code == 0, result.output
    report = json.loads((old_run / "report.json").read_text())
    assert [h["label"] for h in report["history"]] == ["step 1", "step 2"]
    assert report["history"][0]["macs"] == RunState.load(old_run).history[0]["macs"]  # step 1 was not redone
    assert report["after"]["macs_fraction"] == pytest.approx(0.5, abs=0.03)
    assert report["prune"]["search"]["variable"] == "channel ratio"
    assert RunState.load(old_run).done
    final = load_model(old_run / "pruned.pt")
    assert measure(final, 64).macs == report["after"]["macs"]


def test_a_state_written_before_the_plan_resumes_from_the_table_its_config_names(tmp_path, monkeypatch):
    """Until 2026-12-06 a run recorded its scan by rewriting `config.sensitivity` in state.json (no `table` field);
    such a run, interrupted after its scan, resumes from that table and scans nothing."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_prune.app import prune_run
    from yolo_prune.pruning.checkpoint import save_checkpoint
    from yolo_prune.pruning.config import PruneConfig

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    model.names = {0: "box", 1: "disc"}  # the tiny dataset's classes
    weights = str(save_checkpoint(model, tmp_path / "v8n-2.pt"))
    data = write_tiny_dataset(tmp_path / "data")
    monkeypatch.setenv("YOLO_PRUNE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    # free widths (--round-to 1): a block probe timed again on resume could pick another block
    done = prune_run.run_prune(weights, PruneConfig(target_macs=0.5, imgsz=64, data=str(data), round_to=1), out)
    state = json.loads((out / "state.json").read_text())
    assert state["table"] == str(out / "sensitivity.json") and state["config"]["sensitivity"] is None
    # the same run as the old code left it after its scan: the table named in the config, no step, not done
    state["config"]["sensitivity"] = state.pop("table")
    state.update(history=[], done=False)
    (out / "state.json").write_text(json.dumps(state))
    shutil.rmtree(out / "step1")
    (out / "report.json").unlink()
    monkeypatch.setattr(prune_run, "scan", lambda *a, **k: pytest.fail("a resumed run must not scan again"))
    resumed = prune_run.resume_run(out)
    assert resumed.prune["group_ratios"] == done.prune["group_ratios"]
