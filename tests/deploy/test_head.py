"""The fast DFL of exported models: the same function as Ultralytics' DFL, a patch that always comes off, ONNX graphs
without the Softmax that pass the parity check against the stock model, and `--stock-dfl` to keep the original."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from conftest import IMGSZ, run_onnx
from torch import nn
from typer.testing import CliRunner
from ultralytics.nn.modules.block import DFL

from yolo_prune import load_model
from yolo_prune.app.cli import app
from yolo_prune.deploy import export as export_module
from yolo_prune.deploy.export import export_onnx
from yolo_prune.deploy.head import fast_dfl, fast_dfl_forward
from yolo_prune.deploy.parity import default_images, letterbox

runner = CliRunner()
STOCK = DFL.__dict__["forward"]


def op_types(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("c1", [16, 8])
def test_fast_forward_equals_the_stock_one(c1):
    torch.manual_seed(c1)
    dfl = DFL(c1).eval()
    x = torch.randn(2, 4 * c1, 300) * 8  # wide logits: the max-subtraction matters
    x[0, :, 0] = 80.0  # all bins equal and large: exp would overflow without it
    with torch.no_grad():
        want = dfl(x)
        with fast_dfl():
            got = dfl(x)
        exact = (x.double().view(2, 4, c1, 300).softmax(2) * torch.arange(c1).double().view(1, 1, c1, 1)).sum(2)
    assert got.shape == want.shape == (2, 4, 300) and got.dtype == want.dtype
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * c1)
    torch.testing.assert_close(got.double(), exact, rtol=0, atol=1e-5 * c1)


def test_fast_forward_uses_the_modules_weight():
    dfl = DFL(16).eval()
    dfl.conv.weight.data.mul_(0.5).add_(1.0)
    x = torch.randn(1, 64, 10)
    with torch.no_grad():
        torch.testing.assert_close(fast_dfl_forward(dfl, x), STOCK(dfl, x), rtol=0, atol=1e-5)


def test_patch_is_only_active_inside_and_comes_off_when_the_body_raises():
    assert DFL.forward is STOCK
    with fast_dfl():
        assert DFL.forward is fast_dfl_forward
        with fast_dfl():  # nesting restores each level
            pass
        assert DFL.forward is fast_dfl_forward
    assert DFL.forward is STOCK
    with pytest.raises(RuntimeError, match="boom"), fast_dfl():
        raise RuntimeError("boom")
    assert DFL.forward is STOCK


def test_fast_dfl_export_has_no_softmax_and_passes_parity_against_the_stock_model(tmp_path, weights, monkeypatch):
    pt = weights("yolov8n.yaml", pruned=False)
    forwards = []
    real_check = export_module.check_parity

    def spying_check(*args, **kwargs):
        forwards.append(DFL.forward)  # the PyTorch reference runs now
        return real_check(*args, **kwargs)

    monkeypatch.setattr(export_module, "check_parity", spying_check)
    fast = export_onnx(pt, out=tmp_path / "fast.onnx", imgsz=IMGSZ)
    stock = export_onnx(pt, out=tmp_path / "stock.onnx", imgsz=IMGSZ, fast_dfl=False)

    assert forwards == [STOCK, STOCK]  # both checked against the stock forward
    assert fast.parity.passed and fast.parity.relative_diff < 1e-5, fast.parity
    assert stock.parity.passed and stock.parity.relative_diff < 1e-5, stock.parity
    assert fast.to_dict()["fast_dfl"] is True and stock.to_dict()["fast_dfl"] is False
    assert "Softmax" not in op_types(fast.file) and "Softmax" in op_types(stock.file)
    dfl_ops = {n.op_type for n in onnx.load(str(fast.file)).graph.node if "/dfl/" in n.name}
    assert not dfl_ops & {"Transpose", "Softmax", "Conv"}, dfl_ops
    for image in default_images():
        x = letterbox(image, IMGSZ)
        np.testing.assert_allclose(run_onnx(fast.file, x), run_onnx(stock.file, x), rtol=0, atol=1e-3)


def test_yolo26_without_dfl_exports_with_fast_dfl(tmp_path, weights):
    pt = weights("yolo26n.yaml", pruned=False)
    assert isinstance(load_model(pt).model[-1].dfl, nn.Identity)  # reg_max 1: nothing to rewrite
    fast = export_onnx(pt, out=tmp_path / "fast.onnx", imgsz=IMGSZ)
    stock = export_onnx(pt, out=tmp_path / "stock.onnx", imgsz=IMGSZ, fast_dfl=False)
    assert fast.details["fast_dfl"] is True and fast.parity.passed
    assert fast.parity.relative_diff == stock.parity.relative_diff  # the same graph either way
    x = letterbox(default_images()[0], IMGSZ)
    assert np.array_equal(run_onnx(fast.file, x), run_onnx(stock.file, x))


def test_cli_export_stock_dfl(tmp_path, weights):
    out = tmp_path / "m.onnx"
    args = ["export", str(weights("yolov8n.yaml", pruned=False)), "--imgsz", str(IMGSZ), "--out", str(out), "--json"]
    result = runner.invoke(app, [*args, "--stock-dfl"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["results"]
    assert row["fast_dfl"] is False and row["parity"]["passed"] and "Softmax" in op_types(out)
    assert "--stock-dfl" in runner.invoke(app, ["export", "--help"]).output
