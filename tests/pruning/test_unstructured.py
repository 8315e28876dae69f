"""Unstructured pruning, the comparison mode: real zeros, unchanged MACs, zeros kept through fine-tuning, bad amount."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import random_v8n
from typer.testing import CliRunner

from yolo_prune import measure
from yolo_prune.app.cli import app
from yolo_prune.pruning.unstructured import sparsify, sparsity

runner = CliRunner()
IMGSZ = 64


def test_unstructured_sparsity_is_real_and_macs_unchanged():
    model = random_v8n()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    sparse = sparsify(model, 0.3)
    convs = [m for n, m in sparse.named_modules() if isinstance(m, torch.nn.Conv2d) and ".dfl" not in n]
    zeros = sum(int((m.weight == 0).sum()) for m in convs)
    total = sum(m.weight.numel() for m in convs)
    assert zeros / total == pytest.approx(0.3, abs=0.001)
    assert sparsity(sparse)["overall"] == pytest.approx(zeros / total)
    assert measure(sparse, IMGSZ).macs == measure(model, IMGSZ).macs
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())  # the input is untouched


def test_unstructured_cli_holds_zeros_through_finetune(tmp_path, two_class_model, tiny_data):
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
