"""One plan per run: `yolo-prune prune` and the Python API's `run_prune` resolve the same defaults, and the plan says
what the run will do before any work."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.app.plan import plan_prune
from yolo_prune.app.prune_run import run_prune
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.config import PruneConfig

runner = CliRunner()


def _cli_defaults() -> dict:
    command = typer.main.get_command(app).commands["prune"]
    return {p.name: p.default for p in command.params}


def test_the_cli_defaults_are_the_configs():
    cli, config = _cli_defaults(), PruneConfig(target_macs=0.5)
    shared = (
        "imgsz",
        "method",
        "runtime",
        "threads",
        "latency_batch",
        "round_to",
        "allocation",
        "sensitivity",
        "batch",
    )
    assert {k: cli[k] for k in shared} == {k: getattr(config, k) for k in shared}
    assert cli["batch"] == 16  # one batch for the scan and for training: the scan's cache key is the same


@pytest.mark.parametrize("with_data", [False, True], ids=["data-free", "with-data"])
def test_the_cli_and_the_python_api_prune_alike(tmp_path, tiny_data, two_class_model, monkeypatch, with_data):
    monkeypatch.setenv("YOLO_PRUNE_CACHE", str(tmp_path / "cache"))  # one latency cache and scan cache for both
    # A fixed block keeps the widths free of end-to-end timing noise (the probe that learns the block is skipped):
    # with the learned block, two runs on a busy machine can round to 16 in one and 32 in the other.
    args = ["--target-macs", "0.5", "--imgsz", "64", "--round-to", "8"] + (
        ["--data", str(tiny_data)] if with_data else []
    )
    result = runner.invoke(app, ["prune", str(two_class_model), *args, "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    options = {"round_to": 8} | ({"data": str(tiny_data)} if with_data else {})
    api = run_prune(str(two_class_model), PruneConfig(target_macs=0.5, imgsz=64, **options), tmp_path / "api")
    assert cli["config"]["allocation"] == api.config["allocation"] == ("sensitivity" if with_data else "latency")
    assert cli["config"]["batch"] == api.config["batch"] == 16
    assert cli["config"] == api.config
    assert cli["prune"]["layers"] == api.prune["layers"]  # the same widths, layer by layer
    assert cli["after"]["macs"] == api.after["macs"]


def test_the_plan_resolves_the_default_allocation_and_what_the_run_needs(tiny_data):
    free = plan_prune("m.pt", PruneConfig(target_macs=0.5))
    assert free.config.allocation == "latency" and free.timed and not free.uses_table and free.splits == ()
    data = plan_prune("m.pt", PruneConfig(target_macs=0.5, data=str(tiny_data)))
    assert data.config.allocation == "sensitivity" and data.scans and data.timed  # rounded to the runtime's blocks
    free_widths = plan_prune("m.pt", PruneConfig(target_macs=0.5, data=str(tiny_data), round_to=1))
    assert free_widths.config.allocation == "sensitivity" and not free_widths.timed
    assert data.splits == ("train", "val")  # the scan reads train batches
    ratio = plan_prune("m.pt", PruneConfig(ratio=0.3, data=str(tiny_data)), split="test")
    assert ratio.config.allocation == "uniform" and not ratio.timed and ratio.splits == ("test",)
    speed = plan_prune("m.pt", PruneConfig(target_latency=5.0, data=str(tiny_data)))
    assert speed.config.allocation == "sensitivity" and speed.timed and speed.scans  # one recipe for every target
    named = plan_prune("m.pt", PruneConfig(target_macs=0.5, allocation="global"))
    assert named.config.allocation == "global" and not named.timed


def test_the_plan_refuses_what_cannot_run():
    with pytest.raises(ConfigError, match="^--steps needs --target-macs"):
        plan_prune("m.pt", PruneConfig(ratio=0.3), steps=2)
    with pytest.raises(ConfigError, match="^--steps must be at least 1, got 0"):
        plan_prune("m.pt", PruneConfig(target_macs=0.5), steps=0)
    with pytest.raises(ConfigError, match="^--sparse-epochs must be 0 or more, got -1"):
        plan_prune("m.pt", PruneConfig(target_macs=0.5, data="d.yaml"), sparse_epochs=-1)
