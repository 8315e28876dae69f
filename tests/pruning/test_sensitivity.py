"""The sensitivity scan: masking a group equals removing it, the table and exact restore, the `sensitivity` command."""

from __future__ import annotations

import copy
import json

import torch
from conftest import head_sum, random_v8n
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.pruning.cost import conv_widths
from yolo_prune.pruning.sensitivity import _Masked, _weakest_channels, scan
from yolo_prune.pruning.structure import build_groups, head_outputs
from yolo_prune.pruning.surgery import make_prunable

runner = CliRunner()
IMGSZ = 64


def test_masking_a_group_equals_removing_it_and_touches_only_that_group():
    model = random_v8n()
    make_prunable(model)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    DG, groups = build_groups(model, IMGSZ)
    checked = 0
    for info, group in groups[::6]:  # a spread of groups: heads, residual C2f paths, concats, SPPF
        idxs = _weakest_channels(group, info.channels // 2)
        with torch.no_grad(), _Masked(DG, group, idxs):
            masked = head_outputs(model, x)
        removed_model = copy.deepcopy(model)
        DG2, groups2 = build_groups(removed_model, IMGSZ)
        (_, twin) = next((i, g) for i, g in groups2 if i.name == info.name)
        DG2.get_pruning_group(twin[0].dep.target.module, twin[0].dep.handler, idxs).prune()
        with torch.no_grad():
            removed = head_outputs(removed_model.eval(), x)
        for a, b in zip(masked, removed):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
        before, after = conv_widths(model), conv_widths(removed_model)
        changed = {n for n in before if before[n] != after[n]}
        assert changed and changed <= {n.removesuffix(".conv") + ".conv" for n in info.layers} | set(info.layers)
        checked += 1
    assert checked >= 8


def test_scan_table_and_exact_restore():
    model = random_v8n()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    table = scan(model, head_sum(x), ratios=(0.25, 0.75), imgsz=IMGSZ)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert table["ratios"] == [0.25, 0.75] and len(table["groups"]) == 59
    row = table["groups"][0]
    assert set(row) == {"group", "layers", "channels", "macs_share", "drop"}
    assert set(row["drop"]) == {"0.25", "0.75"}
    assert all(0 < g["macs_share"] < 1 for g in table["groups"])
    assert any(g["drop"]["0.75"] != 0 for g in table["groups"])


def test_sensitivity_cli(tmp_path, two_class_model, tiny_data):
    out = tmp_path / "sens"
    args = ["sensitivity", str(two_class_model), "--data", str(tiny_data), "--ratios", "0.5", "--batches", "1"]
    result = runner.invoke(app, [*args, "--batch", "4", "--imgsz", str(IMGSZ), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = json.loads((out / "sensitivity.json").read_text())
    assert table["metric"] == "loss" and table["ratios"] == [0.5] and len(table["groups"]) == 59
    assert (out / "sensitivity.png").stat().st_size > 0
    assert "most sensitive" in result.output and "least sensitive" in result.output
