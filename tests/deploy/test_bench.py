"""`bench`: latency of checkpoints and ONNX files side by side, their MACs (from PyTorch or the ONNX graph), the CLI."""

from __future__ import annotations

import json

import pytest
from conftest import IMGSZ
from typer.testing import CliRunner

from yolo_prune import load_model
from yolo_prune.app.cli import app
from yolo_prune.deploy.bench import bench, onnx_cost
from yolo_prune.deploy.export import export_onnx
from yolo_prune.deploy.quantize import quantize_int8
from yolo_prune.errors import ExportError
from yolo_prune.pruning.cost import measure

runner = CliRunner()


def test_bench_refuses_a_model_whose_export_fails_parity(weights, corrupting_exporter):
    with pytest.raises(ExportError, match=r"^cannot bench .*model\.pt: parity check failed") as failure:
        bench([weights("yolov8n.yaml")], imgsz=IMGSZ, runs=1, warmup=0)
    assert "kept at" not in str(failure.value)  # the temporary file is gone with its folder


def test_bench_pruned_against_original(weights):
    full, pruned = weights("yolov8n.yaml", pruned=False), weights("yolov8n.yaml")
    rows = bench([full, pruned], imgsz=IMGSZ, runs=5, warmup=1, threads=1)
    assert [r.model for r in rows] == [str(full), str(pruned)]
    assert all(0 < r.median_ms <= r.p90_ms for r in rows) and all(r.runs == 5 for r in rows)
    assert rows[0].speedup == 1.0 and rows[1].speedup == pytest.approx(rows[0].median_ms / rows[1].median_ms)
    assert rows[1].macs < 0.6 * rows[0].macs and rows[1].params < rows[0].params
    assert rows[1].onnx_bytes < rows[0].onnx_bytes and {r.cost_source for r in rows} == {"pytorch"}
    assert json.dumps([r.to_dict() for r in rows])


def test_bench_onnx_files_counts_macs_from_the_graph(tmp_path, fp32_onnx, tiny_data, weights):
    int8 = quantize_int8(fp32_onnx, data=tiny_data, calib=2, out=tmp_path / "int8.onnx").file
    rows = bench([fp32_onnx, int8], imgsz=IMGSZ, runs=3, warmup=0)
    assert [r.precision for r in rows] == ["fp32", "int8"] and rows[0].cost_source == "onnx graph"
    assert rows[0].macs == rows[1].macs  # the same convs, in float or INT8
    torch_cost = measure(load_model(weights("yolov8n.yaml")), IMGSZ)
    assert rows[0].macs == pytest.approx(torch_cost.macs, rel=0.03)  # BatchNorm folded; the DFL conv counted


def test_onnx_cost_of_a_dynamic_export(tmp_path, weights):
    static = export_onnx(weights("yolov8n.yaml"), out=tmp_path / "s.onnx", imgsz=IMGSZ).file
    dynamic = export_onnx(weights("yolov8n.yaml"), out=tmp_path / "d.onnx", imgsz=IMGSZ, dynamic=True).file
    assert onnx_cost(dynamic, IMGSZ)[:2] == onnx_cost(static, IMGSZ)[:2]
    assert onnx_cost(dynamic, 2 * IMGSZ)[0] == pytest.approx(4 * onnx_cost(static, IMGSZ)[0], rel=0.01)


def test_cli_bench_json_and_table(weights):
    models = [str(weights("yolov8n.yaml", pruned=False)), str(weights("yolov8n.yaml"))]
    args = ["bench", *models, "--imgsz", str(IMGSZ), "--runs", "3", "--warmup", "1", "--threads", "1"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["imgsz"], payload["threads"], payload["runs"]) == (IMGSZ, 1, 3)
    assert [r["model"] for r in payload["rows"]] == models and payload["rows"][0]["speedup"] == 1.0
    table = runner.invoke(app, args)
    assert table.exit_code == 0
    header = table.stdout.splitlines()[0]
    for column in ("model", "precision", f"GMACs @{IMGSZ}", "params M", "size MB", "median ms", "p90 ms", "speedup"):
        assert column in header
