"""Sensitivity scan, allocation, and the unstructured comparison mode."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from typer.testing import CliRunner
from ultralytics.nn.tasks import DetectionModel

from tests.test_finetune import two_class_model  # noqa: F401  (fixture)
from yolo_prune import PruneConfig, measure, prune
from yolo_prune.app.cli import app
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.allocation import allocate, create_allocation
from yolo_prune.pruning.cost import conv_widths
from yolo_prune.pruning.sensitivity import _Masked, _weakest_channels, build_groups, scan
from yolo_prune.pruning.structure import head_outputs
from yolo_prune.pruning.surgery import make_prunable
from yolo_prune.pruning.unstructured import sparsify, sparsity

runner = CliRunner()
IMGSZ = 64


def _model() -> DetectionModel:
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False).eval()
    for m in model.modules():  # non-trivial BN statistics so that masked channels matter
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.bias.data.uniform_(-0.3, 0.3)
    return model


def _head_sum(x):
    return lambda m: float(sum(o.detach().abs().mean() for o in head_outputs(m, x)))


def test_masking_a_group_equals_removing_it_and_touches_only_that_group():
    model = _model()
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
    model = _model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    table = scan(model, _head_sum(x), ratios=(0.25, 0.75), imgsz=IMGSZ)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert table["ratios"] == [0.25, 0.75] and len(table["groups"]) == 59
    row = table["groups"][0]
    assert set(row) == {"group", "layers", "channels", "macs_share", "drop"}
    assert set(row["drop"]) == {"0.25", "0.75"}
    assert all(0 < g["macs_share"] < 1 for g in table["groups"])
    assert any(g["drop"]["0.75"] != 0 for g in table["groups"])


def test_allocate_spends_budget_on_the_least_sensitive_groups():
    table = {
        "ratios": [0.5],
        "groups": [
            {"group": "fragile", "macs_share": 0.3, "drop": {"0.5": 1.0}},
            {"group": "robust", "macs_share": 0.3, "drop": {"0.5": 0.01}},
            {"group": "medium", "macs_share": 0.3, "drop": {"0.5": 0.2}},
        ],
    }
    assert allocate(table, 0.15) == {"fragile": 0.0, "robust": 0.5, "medium": 0.0}
    # the last upgrade is taken in part: 0.05 of the 0.15 that halving "medium" would save
    assert allocate(table, 0.2) == pytest.approx({"fragile": 0.0, "robust": 0.5, "medium": 0.5 / 3})
    assert allocate(table, 0.2 + 0.15) == pytest.approx({"fragile": 0.5 / 3, "robust": 0.5, "medium": 0.5})


def test_sensitivity_allocation_reaches_target_and_records_ratios():
    model = _model()
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    table = scan(model, _head_sum(x), imgsz=IMGSZ)
    config = PruneConfig(target_macs=0.5, allocation="sensitivity", sensitivity="table.json", imgsz=IMGSZ)
    pruned, result = prune(model, config, allocation=create_allocation("sensitivity", table))
    assert 0.47 <= result.macs_fraction <= 0.53
    chosen = result.extra["group_ratios"]
    assert set(chosen) == {g["group"] for g in table["groups"]}
    # groups the allocation left alone keep every channel; the others lose about their share
    make_prunable(model)
    before, after = conv_widths(model), conv_widths(pruned)
    untouched = [n for n, r in chosen.items() if r == 0]
    assert untouched and all(after[n] == before[n] for n in untouched)
    for name, r in chosen.items():
        if r > 0:
            assert after[name] == pytest.approx(before[name] * (1 - min(r, 0.9)), abs=1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_macs": 0.5, "allocation": "magic"}, "unknown allocation 'magic'; choose one of: uniform, global"),
        ({"ratio": 0.3, "allocation": "sensitivity", "data": "d.yaml"}, "--allocation sensitivity needs --target"),
        ({"target_macs": 0.5, "allocation": "sensitivity"}, "--allocation sensitivity needs --sensitivity FILE"),
    ],
)
def test_bad_allocation_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PruneConfig(**kwargs)


def test_sensitivity_cli(tmp_path, two_class_model, tiny_data):  # noqa: F811
    out = tmp_path / "sens"
    args = ["sensitivity", str(two_class_model), "--data", str(tiny_data), "--ratios", "0.5", "--batches", "1"]
    result = runner.invoke(app, [*args, "--batch", "4", "--imgsz", str(IMGSZ), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = json.loads((out / "sensitivity.json").read_text())
    assert table["metric"] == "loss" and table["ratios"] == [0.5] and len(table["groups"]) == 59
    assert (out / "sensitivity.png").stat().st_size > 0
    assert "most sensitive" in result.output and "least sensitive" in result.output


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "{data}", "--ratios", "0.5,1.2"], "error: --ratios must be between 0 and 1"),
        (["--data", "{data}", "--ratios", "half"], "error: --ratios must be comma-separated numbers"),
        (["--metric", "map"], "error: the sensitivity scan measures map on a dataset: pass --data"),
        (["--data", "{data}", "--metric", "speed"], "error: unknown metric 'speed'"),
    ],
)
def test_sensitivity_cli_bad_input(tmp_path, two_class_model, tiny_data, extra, message):  # noqa: F811
    extra = [e.replace("{data}", str(tiny_data)) for e in extra]
    result = runner.invoke(app, ["sensitivity", str(two_class_model), *extra, "--out", str(tmp_path / "s")])
    assert result.exit_code == 1 and result.stderr.strip().startswith(message), result.stderr
    assert not (tmp_path / "s").exists()


def test_unstructured_sparsity_is_real_and_macs_unchanged():
    model = _model()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    sparse = sparsify(model, 0.3)
    convs = [m for n, m in sparse.named_modules() if isinstance(m, torch.nn.Conv2d) and ".dfl" not in n]
    zeros = sum(int((m.weight == 0).sum()) for m in convs)
    total = sum(m.weight.numel() for m in convs)
    assert zeros / total == pytest.approx(0.3, abs=0.001)
    assert sparsity(sparse)["overall"] == pytest.approx(zeros / total)
    assert measure(sparse, IMGSZ).macs == measure(model, IMGSZ).macs
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())  # the input is untouched


def test_unstructured_cli_holds_zeros_through_finetune(tmp_path, two_class_model, tiny_data):  # noqa: F811
    out = tmp_path / "u"
    args = ["prune", str(two_class_model), "--unstructured", "0.3", "--data", str(tiny_data), "--epochs", "2"]
    result = runner.invoke(app, [*args, "--imgsz", str(IMGSZ), "--batch", "4", "--workers", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    from yolo_prune import load_model

    measured = sparsity(load_model(out / "pruned.pt"))["overall"]
    assert measured >= 0.3 - 1e-3  # the zeros survived fine-tuning
    assert report["after"]["sparsity"] == pytest.approx(measured)
    assert report["after"]["macs"] == report["before"]["macs"]
    assert report["after"]["gzip_bytes"] < report["before"]["gzip_bytes"]
    assert "zeros shrink the compressed file, not the compute" in result.output


def test_unstructured_bad_amount(tmp_path):
    result = runner.invoke(app, ["prune", "yolov8n.yaml", "--unstructured", "1.5", "--out", str(tmp_path / "u")])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --unstructured must be between 0 and 1 (exclusive), got 1.5"
