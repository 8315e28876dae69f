"""Export (ONNX with parity check, INT8, TorchScript, OpenVINO) and `bench`, through the API and the CLI."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from tests.conftest import SHARED, shared_weights
from yolo_prune import PruneConfig, load_model, prune, save_checkpoint
from yolo_prune.app.cli import app
from yolo_prune.deploy import export as export_module
from yolo_prune.deploy.bench import bench, onnx_cost
from yolo_prune.deploy.export import export_format, export_onnx
from yolo_prune.deploy.parity import DEFAULT_TOLERANCE, default_images, letterbox
from yolo_prune.deploy.quantize import head_tail_nodes, quantize_int8
from yolo_prune.errors import ExportError
from yolo_prune.pruning.cost import measure

runner = CliRunner()
IMGSZ = 64
ANCHORS = (IMGSZ // 8) ** 2 + (IMGSZ // 16) ** 2 + (IMGSZ // 32) ** 2


def lively(model: nn.Module, imgsz: int = IMGSZ) -> nn.Module:
    """Give a random-init model the BatchNorm statistics of real images, so that its outputs depend on the input.

    Straight from its YAML, a model's activations shrink layer after layer and its output hardly depends on the
    image, which would make any parity check pass. Normalized on the bus and zidane images (and their mirror
    images), every conv's output has unit variance, as in a trained network. (Random BatchNorm scales and shifts on
    top of that make a network so badly conditioned that float32 itself is only accurate to ~3e-5 in score; see
    `export.DEFAULT_TOLERANCE`.)
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over the calibration batch
    x = torch.from_numpy(np.concatenate([letterbox(p, imgsz) for p in default_images()]))
    model.train()
    with torch.no_grad():
        model(torch.cat([x, x.flip(-1)]))
    for bn in bns:
        bn.momentum = 0.03
    return model.eval()


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """`weights(yaml, pruned=True)`: a lively random-init checkpoint, pruned to 50% MACs at IMGSZ (cached)."""
    root = tmp_path_factory.mktemp("weights")
    cache: dict[tuple[str, bool], Path] = {}

    def make(yaml: str, pruned: bool = True) -> Path:
        if (yaml, pruned) not in cache:
            torch.manual_seed(0)  # the random init
            model = lively(load_model(yaml))
            if pruned:
                model, _ = prune(model, PruneConfig(target_macs=0.5, imgsz=IMGSZ))
            path = root / f"{Path(yaml).stem}-{'pruned' if pruned else 'full'}" / "model.pt"
            cache[(yaml, pruned)] = save_checkpoint(model, path)
        return cache[(yaml, pruned)]

    return make


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_lively_models_depend_on_the_image(weights):
    model = load_model(weights("yolov8n.yaml"))
    bus, zidane = (torch.from_numpy(letterbox(p, IMGSZ)) for p in default_images())
    with torch.no_grad():
        assert (model(bus)[0] - model(zidane)[0]).abs().max() > 0.5  # pixels


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml"])
def test_onnx_export_of_pruned_model_passes_parity(tmp_path, weights, yaml):
    pt = weights(yaml)
    digest, before = sha256(pt), sorted(pt.parent.iterdir())
    out = tmp_path / "exported" / "model.onnx"
    result = export_onnx(pt, out=out, imgsz=IMGSZ)

    assert result.file == out and out.is_file() and result.size_bytes == out.stat().st_size
    assert [Path(p).name for p in result.parity.images] == ["bus.jpg", "zidane.jpg"]
    assert result.parity.passed and result.parity.tolerance == DEFAULT_TOLERANCE
    assert 0 <= result.parity.relative_diff < 1e-5, result.parity
    assert result.parity.max_abs_diff == max(result.parity.box_abs_diff, result.parity.score_abs_diff)
    assert run_onnx(out, letterbox(default_images()[0], IMGSZ)).shape == (1, 84, ANCHORS)
    assert sha256(pt) == digest and sorted(pt.parent.iterdir()) == before  # input untouched, nothing beside it
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no temporary files left


def test_yolo26_end2end_export_matches_topk_output(tmp_path, weights):
    result = export_onnx(weights("yolo26n.yaml"), out=tmp_path / "e2e.onnx", imgsz=IMGSZ, end2end=True)
    assert result.parity.passed and result.parity.relative_diff < 1e-5
    # x1 y1 x2 y2 score class for min(300, anchors) candidates
    assert run_onnx(result.file, letterbox(default_images()[1], IMGSZ)).shape == (1, ANCHORS, 6)


def test_dynamic_export_is_checked_on_a_batch(tmp_path, weights):
    result = export_onnx(weights("yolov8n.yaml"), out=tmp_path / "dyn.onnx", imgsz=IMGSZ, dynamic=True)
    assert result.parity.passed
    x = np.concatenate([letterbox(p, 2 * IMGSZ) for p in default_images()])
    assert run_onnx(result.file, x).shape == (2, 84, 4 * ANCHORS)


def _corrupt_first_conv(path: Path) -> None:
    model = onnx.load(str(path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weight = next(t for t in model.graph.initializer if t.name == conv.input[1])
    values = onnx.numpy_helper.to_array(weight) * 1.5
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(model, str(path))


@pytest.fixture
def corrupting_exporter(monkeypatch):
    """Make every export come out with a wrong first-conv weight, as a broken exporter would."""
    real = export_module._run_exporter

    def run_and_corrupt(*args, **kwargs):
        path = real(*args, **kwargs)
        _corrupt_first_conv(path)
        return path

    monkeypatch.setattr(export_module, "_run_exporter", run_and_corrupt)


def test_parity_failure_raises_and_keeps_the_file(tmp_path, weights, corrupting_exporter):
    out = tmp_path / "bad.onnx"
    with pytest.raises(
        ExportError, match=r"parity check failed: .*bad\.onnx differs .* the file is kept at .*bad\.onnx"
    ):
        export_onnx(weights("yolo11n.yaml"), out=out, imgsz=IMGSZ)
    assert out.is_file()


def test_tolerance_is_what_decides(tmp_path, weights):
    pt = weights("yolov8n.yaml")
    ok = export_onnx(pt, out=tmp_path / "a.onnx", imgsz=IMGSZ)
    assert ok.parity.relative_diff > 0  # the two runtimes do round differently
    with pytest.raises(ExportError, match="above the tolerance"):
        export_onnx(pt, out=tmp_path / "b.onnx", imgsz=IMGSZ, tolerance=ok.parity.relative_diff / 2)
    assert (tmp_path / "b.onnx").is_file()


def test_bench_refuses_a_model_whose_export_fails_parity(weights, corrupting_exporter):
    with pytest.raises(ExportError, match=r"^cannot bench .*model\.pt: parity check failed") as failure:
        bench([weights("yolov8n.yaml")], imgsz=IMGSZ, runs=1, warmup=0)
    assert "kept at" not in str(failure.value)  # the temporary file is gone with its folder


def test_torchscript_export_passes_parity(tmp_path, weights):
    result = export_format(weights("yolo11n.yaml"), "torchscript", IMGSZ, out=tmp_path / "m.torchscript")
    assert result.format == "torchscript" and result.file.is_file() and result.parity.passed


@pytest.mark.skipif(importlib.util.find_spec("openvino") is not None, reason="openvino is installed here")
def test_missing_openvino_is_a_clean_error(tmp_path, weights):
    with pytest.raises(ExportError, match=r"^openvino export needs the 'openvino' package, which is not installed"):
        export_format(weights("yolov8n.yaml"), "openvino", IMGSZ, out=tmp_path / "ov")
    assert not (tmp_path / "ov").exists()


@pytest.fixture(scope="session")
def fp32_onnx(tmp_path_factory, weights) -> Path:
    return export_onnx(weights("yolov8n.yaml"), out=tmp_path_factory.mktemp("fp32") / "v8.onnx", imgsz=IMGSZ).file


def test_head_tail_is_only_the_head(fp32_onnx):
    graph = onnx.load(str(fp32_onnx))
    tail = head_tail_nodes(graph)
    assert all(name.startswith("/model.22/") for name in tail), tail
    convs = sorted(n for n in tail if n.endswith("Conv"))
    assert convs == sorted(
        [f"/model.22/cv{b}.{i}/cv{b}.{i}.2/Conv" for b in (2, 3) for i in range(3)] + ["/model.22/dfl/conv/Conv"]
    )
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
        ({"data": "no.yaml"}, "dataset file not found: no.yaml"),
        ({"images": "no-such-folder"}, "calibration images not found: no-such-folder"),
        ({"images": [], "calib": 0}, "--calib must be at least 1, got 0"),
    ],
)
def test_int8_bad_calibration_input(tmp_path, fp32_onnx, kwargs, message):
    with pytest.raises(Exception, match=message):
        quantize_int8(fp32_onnx, out=tmp_path / "int8.onnx", **kwargs)
    assert not (tmp_path / "int8.onnx").exists()


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


def test_cli_export_json_and_table(tmp_path, weights):
    out = tmp_path / "m.onnx"
    result = runner.invoke(
        app, ["export", str(weights("yolov8n.yaml")), "--imgsz", str(IMGSZ), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["results"][0]["file"] == str(out) and payload["results"][0]["parity"]["passed"] is True
    table = runner.invoke(app, ["export", str(weights("yolov8n.yaml")), "--imgsz", str(IMGSZ), "--out", str(out)])
    assert table.exit_code == 0 and "parity max abs diff" in table.stdout and " yes" in table.stdout


def test_cli_export_int8(tmp_path, weights, tiny_data):
    out = tmp_path / "m.onnx"
    args = ["export", str(weights("yolo11n.yaml")), "--imgsz", str(IMGSZ), "--out", str(out)]
    result = runner.invoke(app, [*args, "--int8", "--data", str(tiny_data), "--calib", "4", "--json"])
    assert result.exit_code == 0, result.output
    files = [r["file"] for r in json.loads(result.stdout)["results"]]
    assert files == [str(out), str(tmp_path / "m_int8.onnx")] and all(Path(f).is_file() for f in files)


def test_cli_parity_failure_is_one_line_naming_the_file(tmp_path, weights, corrupting_exporter):
    out = tmp_path / "bad.onnx"
    result = runner.invoke(app, ["export", str(weights("yolov8n.yaml")), "--imgsz", str(IMGSZ), "--out", str(out)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: parity check failed") and str(out) in errors[0]
    assert out.is_file()


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


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "missing.pt"], "error: model file not found: missing.pt"),
        (["export", "model.onnx"], "error: model.onnx: expected a .pt checkpoint"),
        (["export", "{pt}", "--format", "tflite"], "error: unknown export format 'tflite'; choose one of onnx,"),
        (["export", "{pt}", "--int8"], "error: --int8 needs --data DATA"),
        (["export", "{pt}", "--int8", "--data", "no.yaml"], "error: dataset file not found: no.yaml"),
        (["export", "{pt}", "--int8", "--data", "{data}", "--calib", "0"], "error: --calib must be at least 1, got 0"),
        (["export", "{pt}", "--data", "{data}"], "error: --data is only used by --int8"),
        (
            ["export", "{pt}", "--format", "torchscript", "--simplify"],
            "error: --simplify is for --format onnx, not torchscript",
        ),
        (["export", "{pt}", "--format", "torchscript", "--int8"], "error: --int8 is for --format onnx"),
        (["export", "{pt}", "--imgsz", "100"], "error: --imgsz must be a positive multiple of 32"),
        (["bench", "{pt}", "--runs", "0"], "error: --runs must be at least 1, got 0"),
        (["bench", "{pt}", "missing.onnx"], "error: model file not found: missing.onnx"),
        (["bench", "{pt}", "notes.txt"], "error: notes.txt: expected a .pt checkpoint or an .onnx file"),
        (["bench", "{pt}", "--threads", "0"], "error: --threads must be at least 1, got 0"),
    ],
)
def test_cli_bad_input_is_one_line_error_and_writes_nothing(tmp_path, weights, tiny_data, args, message):
    pt = weights("yolov8n.yaml")
    args = [a.replace("{pt}", str(pt)).replace("{data}", str(tiny_data)) for a in args]
    if args[0] == "export":
        args += ["--out", str(tmp_path / "out" / "m.onnx")]
    before = sorted(pt.parent.iterdir())
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and sorted(pt.parent.iterdir()) == before


@pytest.mark.skipif(importlib.util.find_spec("openvino") is not None, reason="openvino is installed here")
def test_cli_unavailable_format_is_one_line(tmp_path, weights):
    out = tmp_path / "ov"
    result = runner.invoke(app, ["export", str(weights("yolov8n.yaml")), "--format", "openvino", "--out", str(out)])
    assert result.exit_code == 1 and not out.exists()
    assert result.stderr.strip() == (
        "error: openvino export needs the 'openvino' package, which is not installed (pip install openvino)"
    )


@pytest.mark.parametrize("command", ["export", "bench"])
def test_commands_have_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


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
