"""`bench`: latency of checkpoints and ONNX files side by side, their MACs (from PyTorch or the ONNX graph), the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import IMGSZ
from typer.testing import CliRunner

from yolo_prune import load_model
from yolo_prune.app.cli import app
from yolo_prune.deploy.bench import bench
from yolo_prune.deploy.export import export_onnx
from yolo_prune.deploy.onnx_cost import onnx_cost
from yolo_prune.deploy.quantize import quantize_int8
from yolo_prune.errors import ConfigError, ExportError, ModelLoadError
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
    assert rows[1].file_bytes < rows[0].file_bytes and {r.cost_source for r in rows} == {"pytorch"}
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


def test_bench_on_torch_cpu_times_the_checkpoints_at_a_batch(weights):
    full, pruned = weights("yolov8n.yaml", pruned=False), weights("yolov8n.yaml")
    one = bench([full, pruned], imgsz=IMGSZ, runs=5, warmup=1, threads=1, runtime="torch-cpu")
    # 16 images per call: at this tiny size a call is mostly per-layer overhead, and 4 images once timed faster than
    # one on a loaded CI machine (7.97 against 8.36 ms); 16 cost 5x one here.
    sixteen = bench([full], imgsz=IMGSZ, runs=5, warmup=1, threads=1, runtime="torch-cpu", batch=16)
    assert all(r.file_bytes is None and r.precision == "fp32" and r.cost_source == "pytorch" for r in one)
    assert one[1].macs < 0.6 * one[0].macs and one[1].source_bytes < one[0].source_bytes
    assert one[0].speedup == 1.0 and all(0 < r.median_ms <= r.p90_ms for r in one)
    assert sixteen[0].median_ms > one[0].median_ms  # sixteen images per call cost more than one
    assert json.dumps([r.to_dict() for r in one])


def test_bench_bad_runtime_inputs(weights, fp32_onnx):
    with pytest.raises(ModelLoadError, match=r"\.onnx: expected a \.pt"):
        bench([fp32_onnx], imgsz=IMGSZ, runtime="torch-cpu")
    with pytest.raises(ConfigError, match="onnxruntime-cpu times the exported graph at batch 1; --batch 8 needs a"):
        bench([weights("yolov8n.yaml")], imgsz=IMGSZ, batch=8)
    with pytest.raises(ConfigError, match="--batch must be at least 1, got 0"):
        bench([weights("yolov8n.yaml")], imgsz=IMGSZ, runtime="torch-cpu", batch=0)
    with pytest.raises(ConfigError, match="unknown --runtime 'coreml'"):
        bench([weights("yolov8n.yaml")], imgsz=IMGSZ, runtime="coreml")


def test_cli_bench_on_a_torch_runtime(weights):
    models = [str(weights("yolov8n.yaml", pruned=False)), str(weights("yolov8n.yaml"))]
    args = ["bench", *models, "--imgsz", str(IMGSZ), "--runs", "3", "--warmup", "1", "--threads", "1"]
    result = runner.invoke(app, [*args, "--runtime", "torch-cpu", "--batch", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["runtime"], payload["batch"]) == ("torch-cpu", 2)
    assert payload["runtime_detail"].startswith("PyTorch ") and payload["rows"][0]["file_bytes"] is None
    table = runner.invoke(app, [*args, "--runtime", "torch-cpu"])
    assert table.exit_code == 0 and "PyTorch modules timed" in table.stdout and "batch 1" in table.stdout
    bad = runner.invoke(app, [*args, "--batch", "4"])
    assert bad.exit_code != 0 and "--batch 4 needs a torch runtime" in bad.output and "Traceback" not in bad.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bench_on_cuda_fp16(weights):
    full, pruned = weights("yolov8n.yaml", pruned=False), weights("yolov8n.yaml")
    rows = bench([full, pruned], imgsz=IMGSZ, runs=5, warmup=2, runtime="torch-cuda-fp16", batch=32)
    assert [r.precision for r in rows] == ["fp16", "fp16"] and all(r.median_ms > 0 for r in rows)


def test_each_model_is_timed_on_two_sessions_opened_in_mirrored_order(tmp_path, fp32_onnx, monkeypatch):
    # A session opened earlier in a process runs slower; opening a second set in reverse order and alternating
    # the calls gives every model the same mean position (docs/benchmarks.md section 27).
    from yolo_prune.deploy.runtimes import get_runtime, onnx_runtime

    opened, calls = [], []

    class Session:
        def __init__(self, path):
            self.name, self.k = path.name, len(opened)
            opened.append(path.name)

        def get_inputs(self):
            return [type("Input", (), {"name": "images", "shape": [1, 3, IMGSZ, IMGSZ]})]

        def run(self, outputs, feed):
            calls.append((self.name, self.k))

    files = []
    for name in ("a", "b", "c"):
        files.append(tmp_path / f"{name}.onnx")
        files[-1].write_bytes(fp32_onnx.read_bytes())
    monkeypatch.setattr(onnx_runtime, "_session", lambda path, imgsz, threads: Session(path))
    loaded = get_runtime("onnxruntime-cpu", 1, 1).load(files, IMGSZ, 1, 1, tmp_path)
    assert opened == ["a.onnx", "b.onnx", "c.onnx", "c.onnx", "b.onnx", "a.onnx"]
    for _ in range(4):
        loaded[0].run()
    assert calls == [("a.onnx", 0), ("a.onnx", 5), ("a.onnx", 0), ("a.onnx", 5)]
