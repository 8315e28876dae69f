"""INT8 quantization of an ONNX export: the head tail stays in float, calibration input, the CLI, a trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import IMGSZ, SHARED, run_onnx, shared_weights
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.deploy.export import export_onnx
from yolo_prune.deploy.parity import default_images, letterbox
from yolo_prune.deploy.quantize import head_tail_nodes, quantize_int8

runner = CliRunner()


@pytest.mark.parametrize("fast_dfl", [True, False])
def test_head_tail_is_only_the_head(tmp_path, weights, fp32_onnx, fast_dfl):
    path = (
        fp32_onnx
        if fast_dfl
        else export_onnx(weights("yolov8n.yaml"), out=tmp_path / "m.onnx", imgsz=IMGSZ, fast_dfl=False).file
    )
    graph = onnx.load(str(path))
    tail = head_tail_nodes(graph)
    kinds = {n.name: n.op_type for n in graph.graph.node}
    # the exporter leaves the axes of the fast DFL's reductions as Constant nodes outside any module's scope
    assert all(name.startswith("/model.22/") for name in tail if kinds[name] != "Constant"), tail
    convs = sorted(n for n in tail if n.endswith("Conv"))
    dfl_conv = [] if fast_dfl else ["/model.22/dfl/conv/Conv"]  # the fast DFL is a weighted sum, not a conv
    assert convs == sorted([f"/model.22/cv{b}.{i}/cv{b}.{i}.2/Conv" for b in (2, 3) for i in range(3)] + dfl_conv)
    assert {n for n in kinds if n.startswith("/model.22/dfl/")} <= set(tail)  # the whole DFL stays in float
    assert "/model.22/cv2.0/cv2.0.1/conv/Conv" not in tail  # the head's inner convs are quantized


def test_int8_quantization(tmp_path, fp32_onnx, tiny_data):
    result = quantize_int8(fp32_onnx, data=tiny_data, calib=6, out=tmp_path / "int8.onnx")
    assert result.file == tmp_path / "int8.onnx" and result.details["calibration_images"] == 6
    assert result.size_bytes < 0.5 * fp32_onnx.stat().st_size
    model = onnx.load(str(result.file))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert {p.key for p in model.metadata_props} >= {"names", "stride", "imgsz"}  # Ultralytics can load it
    x = letterbox(default_images()[0], IMGSZ)
    got, want = run_onnx(result.file, x), run_onnx(fp32_onnx, x)
    assert got.shape == want.shape and np.isfinite(got).all()
    assert np.abs(got[:, 4:] - want[:, 4:]).max() < 0.1  # scores survive (the head tail stays in float)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "INT8 calibration needs exactly one of --data"),
        ({"data": "no.yaml"}, "--data no.yaml: dataset file not found"),
        ({"images": "no-such-folder"}, "calibration images not found: no-such-folder"),
        ({"images": [], "calib": 0}, "--calib must be at least 1, got 0"),
    ],
)
def test_int8_bad_calibration_input(tmp_path, fp32_onnx, kwargs, message):
    with pytest.raises(Exception, match=message):
        quantize_int8(fp32_onnx, out=tmp_path / "int8.onnx", **kwargs)
    assert not (tmp_path / "int8.onnx").exists()


def test_cli_export_int8(tmp_path, weights, tiny_data):
    out = tmp_path / "m.onnx"
    args = ["export", str(weights("yolo11n.yaml")), "--imgsz", str(IMGSZ), "--out", str(out)]
    result = runner.invoke(app, [*args, "--int8", "--data", str(tiny_data), "--calib", "4", "--json"])
    assert result.exit_code == 0, result.output
    files = [r["file"] for r in json.loads(result.stdout)["results"]]
    assert files == [str(out), str(tmp_path / "m_int8.onnx")] and all(Path(f).is_file() for f in files)


@pytest.mark.slow
def test_int8_of_trained_model_keeps_detections(tmp_path):
    """On real BCCD images, INT8 with the head tail in float finds what FP32 finds; quantizing the tail loses it."""
    pt = shared_weights("yolov8n-bccd.pt")
    images = sorted((SHARED / "datasets" / "BCCD" / "JPEGImages").glob("*.jpg"))
    if not images:
        pytest.skip("the BCCD images are only on the developers' machines")
    fp32 = export_onnx(pt, out=tmp_path / "v8.onnx", imgsz=384, images=images[:4])
    assert fp32.parity.passed and fp32.parity.relative_diff < 1e-5
    kept = quantize_int8(fp32.file, images=images[::3], calib=64, out=tmp_path / "kept.onnx").file
    lost = quantize_int8(fp32.file, images=images[::3], calib=64, out=tmp_path / "lost.onnx", exclude_head=False).file
    for path in images[1::25]:  # not calibration images
        x = letterbox(path, 384)
        want = run_onnx(fp32.file, x)[0]
        confident = want[4:].max(axis=0) > 0.5
        assert confident.sum() >= 3
        got = run_onnx(kept, x)[0]
        assert np.abs(got[4:, confident] - want[4:, confident]).max() < 0.15
        assert np.abs(got[:4, confident] - want[:4, confident]).max() < 10  # pixels at imgsz 384
        assert run_onnx(lost, x)[0][4:, confident].max() < 0.05  # one INT8 scale for pixels and scores
