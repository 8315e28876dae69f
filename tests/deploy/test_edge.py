"""The edge formats (NCNN, OpenVINO, MNN, ExecuTorch, LiteRT, CoreML): each exported from a pruned checkpoint with
the parity check, each runnable one timed as a runtime of `bench`, ncnn's and OpenVINO's conv timers; the errors a
user meets when a package is missing. Skipped, naming the extra, where the edge packages are not installed."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from conftest import IMGSZ
from typer.testing import CliRunner

from yolo_prune.app.cli import app
from yolo_prune.deploy.bench import bench
from yolo_prune.deploy.export import export_format
from yolo_prune.deploy.formats import FORMATS, format_of, quiet_output
from yolo_prune.deploy.runtimes import RUNTIMES, get_runtime
from yolo_prune.errors import ConfigError, ExportError
from yolo_prune.pruning.cost import ConvShape

runner = CliRunner()
EDGE = {"ncnn": "ncnn-cpu", "openvino": "openvino-cpu", "mnn": "mnn-cpu", "executorch": "executorch-cpu"}
EDGE["tflite"] = "litert-cpu"


def installed(fmt: str) -> bool:
    return all(importlib.util.find_spec(module) for module, _ in FORMATS[fmt].packages)


def needs(fmt: str):
    return pytest.mark.skipif(not installed(fmt), reason=f"{fmt} is not installed: pip install 'yolo-prune[edge]'")


@pytest.mark.parametrize("fmt", list(EDGE))
def test_edge_export_passes_parity_and_benches_in_its_runtime(tmp_path, weights, fmt):
    if not installed(fmt):
        pytest.skip(f"{fmt} is not installed: pip install 'yolo-prune[edge]'")
    pt = weights("yolov8n.yaml")
    before = sorted(pt.parent.iterdir())
    out = FORMATS[fmt].default_out(tmp_path / "model.pt")
    result = export_format(pt, fmt, IMGSZ, out=out)
    assert result.file == out and out.exists() and result.size_bytes > 100_000
    assert result.parity.passed and result.parity.relative_diff < 1e-5, result.parity
    assert sorted(pt.parent.iterdir()) == before and sorted(tmp_path.iterdir()) == [out]  # nothing else written
    assert format_of(out) is FORMATS[fmt]

    rows = bench([pt, out], imgsz=IMGSZ, runs=3, warmup=1, threads=1, runtime=EDGE[fmt])
    assert [r.model for r in rows] == [str(pt), str(out)] and all(r.median_ms > 0 for r in rows)
    assert rows[0].macs is not None and rows[1].macs is None  # a checkpoint is costed in PyTorch, an export is not
    assert rows[0].file_bytes == pytest.approx(result.size_bytes, rel=0.05)  # the same model, exported to time it


@needs("coreml")
def test_coreml_exports_and_its_spec_loads(tmp_path, weights):
    result = export_format(weights("yolov8n.yaml"), "coreml", IMGSZ, out=tmp_path / "m.mlpackage")
    assert result.parity is None and result.file.is_dir()
    assert result.details["loaded"].startswith("CoreML spec version ") and "inputs: image" in result.details["loaded"]


def test_a_missing_package_is_one_line_naming_the_extra(tmp_path, weights, monkeypatch):
    missing = dataclasses.replace(FORMATS["mnn"], packages=(("no_such_module_here", "no-such-package"),))
    monkeypatch.setitem(FORMATS, "mnn", missing)
    with pytest.raises(ExportError, match=r"^mnn needs the 'no-such-package' package, which is not installed \(pip"):
        export_format(weights("yolov8n.yaml"), "mnn", IMGSZ, out=tmp_path / "m.mnn")
    assert not any(tmp_path.iterdir())
    with pytest.raises(ConfigError, match=r"^--runtime mnn-cpu: mnn needs the 'no-such-package' package"):
        get_runtime("mnn-cpu")
    result = runner.invoke(app, ["bench", str(weights("yolov8n.yaml")), "--runtime", "mnn-cpu"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().endswith("which is not installed (pip install 'yolo-prune[edge]')")


def test_int8_is_refused_where_the_format_has_none_and_needs_data(tmp_path, weights):
    pt = str(weights("yolov8n.yaml"))
    result = runner.invoke(app, ["export", pt, "--format", "ncnn", "--int8", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --int8 is for --format onnx, openvino, tflite, engine, not ncnn"
    result = runner.invoke(app, ["export", pt, "--format", "openvino", "--int8", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and result.stderr.strip().startswith("error: --int8 needs --data DATA")
    assert not any(tmp_path.iterdir())


@needs("tflite")
def test_litert_int8_keeps_the_head_decoding_float(tmp_path, weights, tiny_data):
    """LiteRT INT8 quantizes the network but not the head's final convs and box decoding (DFL, anchors, sigmoid,
    output concat): one INT8 scale per tensor there cost 6.9 points mAP50-95 on BCCD (`deploy/litert_int8.py`).
    Walked back from the output through every op up to the first convs met, every tensor is float32 and no
    DEQUANTIZE is met; Ultralytics' own INT8 feeds the output concat from DEQUANTIZE ops of int8 tensors."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from yolo_prune.deploy.runtimes.exported import _precision

    fp32, out = tmp_path / "m.tflite", tmp_path / "model_int8.tflite"  # INT8: named after the checkpoint, model.pt
    args = ["export", str(weights("yolov8n.yaml")), "--format", "tflite", "--imgsz", str(IMGSZ), "--out", str(fp32)]
    result = runner.invoke(app, [*args, "--int8", "--data", str(tiny_data), "--calib", "4", "--json"])
    assert result.exit_code == 0, result.output  # the one-format export once failed on an unset --simplify
    fp32_row, int8_row = json.loads(result.stdout)["results"]
    assert fp32_row["file"] == str(fp32) and int8_row["file"] == str(out) and int8_row["precision"] == "int8"
    assert sorted(tmp_path.iterdir()) == [fp32, out] and _precision(out) == "int8"

    interpreter = Interpreter(str(out), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    producer = {t: op for op in ops for t in op["outputs"]}
    convs = [op for op in ops if op["op_name"] == "CONV_2D"]
    assert sum(dtypes[op["inputs"][1]] == np.int8 for op in convs) > len(convs) // 2  # the network is INT8

    seen, stack, final_convs = set(), [producer[o["index"]] for o in interpreter.get_output_details()], 0
    while stack:
        op = stack.pop()
        if op["index"] in seen:
            continue
        seen.add(op["index"])
        assert op["op_name"] != "DEQUANTIZE", "an int8 tensor feeds the head's decoding"
        assert all(dtypes[t] in (np.float32, np.int32) for t in [*op["inputs"], *op["outputs"]] if t >= 0), op
        if op["op_name"] == "CONV_2D":
            final_convs += 1
            continue
        stack.extend(producer[t] for t in op["inputs"] if t in producer)
    assert final_convs == 6  # box and class convs of the three levels, all float
    assert len(seen) > 20
    assert int8_row["calibration_images"] == 4  # --calib of the 8 train images


@pytest.mark.parametrize("runtime", ["mnn-cpu", "executorch-cpu", "litert-cpu"])
def test_runtimes_without_a_conv_timer_model_convs_on_onnxruntime(tmp_path, runtime):
    if not installed(RUNTIMES[runtime].format):
        pytest.skip(f"{runtime} is not installed: pip install 'yolo-prune[edge]'")
    timer = RUNTIMES[runtime].layer_timer(2, 1, tmp_path)
    assert timer.runtime == "onnxruntime-cpu" and timer.threads == 2  # what the width table will say it timed on


@needs("ncnn")
def test_the_ncnn_conv_timer_runs_the_conv_pytorch_runs(tmp_path):
    """The one-conv network the timer writes is that conv: same weights, same output (grouped and strided too)."""
    import ncnn

    from yolo_prune.deploy.formats import ncnn_net
    from yolo_prune.deploy.runtimes.ncnn_runtime import conv_network

    for s in (ConvShape(8, 12, 3, 2, 1, 1, 1, 16, 16, True), ConvShape(16, 16, 3, 1, 1, 16, 1, 8, 8, False)):
        param, blob = conv_network(s)
        net = ncnn_net(param, blob, 1)
        x = np.random.default_rng(1).random((s.cin, s.h, s.w), dtype=np.float32)
        with net.create_extractor() as ex:
            ex.input("in0", ncnn.Mat(x))
            got = np.array(ex.extract("out" if s.act else "conv")[1])
        n = s.cout * (s.cin // s.groups) * s.k * s.k
        values = np.frombuffer(blob[4:], dtype=np.float32)
        conv = torch.nn.Conv2d(s.cin, s.cout, s.k, s.stride, s.pad, s.dilation, s.groups)
        conv.weight.data = torch.from_numpy(values[:n].reshape(conv.weight.shape).copy())
        conv.bias.data = torch.from_numpy(values[n:].copy())
        want = conv(torch.from_numpy(x)[None])
        want = (torch.nn.functional.silu(want) if s.act else want)[0].detach().numpy()
        assert got.shape == want.shape == (s.cout, *s.out_hw)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("runtime", ["ncnn-cpu", "openvino-cpu"])
def test_edge_conv_timers_time_and_cache_shapes(tmp_path, runtime):
    if not installed(runtime.split("-")[0]):
        pytest.skip(f"{runtime} is not installed: pip install 'yolo-prune[edge]'")
    shapes = [ConvShape(16, c, 3, 1, 1, 1, 1, 32, 32, True) for c in (8, 16, 32)]
    timer = RUNTIMES[runtime].layer_timer(1, 1, tmp_path)
    ms = timer(shapes)
    assert len(ms) == 3 and all(m > 0 for m in ms) and timer.timed == 3
    again = RUNTIMES[runtime].layer_timer(1, 1, tmp_path)
    assert again(shapes) == ms and again.timed == 0  # read from the cache file
    assert json.loads(timer.path.read_text())["runtime"] == runtime


@needs("ncnn")
def test_prune_for_ncnn_chooses_widths_with_its_timer_and_names_it(tmp_path, weights):
    out = tmp_path / "run"
    args = ["prune", str(weights("yolov8n.yaml", pruned=False)), "--target-macs", "0.5", "--imgsz", str(IMGSZ)]
    result = runner.invoke(
        app, [*args, "--runtime", "ncnn-cpu", "--threads", "1", "--round-to", "8", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["runtime"] == "ncnn-cpu" and report["config"]["allocation"] == "latency"


def test_quiet_output_swallows_what_c_code_prints(capfd):
    with quiet_output(1, 2):
        import os

        os.write(1, b"from C on stdout\n")
        os.write(2, b"from C on stderr\n")
    print("after")
    sys.stdout.flush()
    captured = capfd.readouterr()
    assert captured.out == "after\n" and captured.err == ""


@needs("mnn")
def test_mnn_export_never_runs_pip_and_bench_json_stays_parseable(tmp_path, weights, monkeypatch):
    """MNN's converter imports a telemetry module that shells out to `pip install` when its SDK is missing, and MNN
    prints from C on stdout: neither may reach the user (or a `--json` stdout)."""
    import os
    import subprocess

    def no_shell(command):
        raise AssertionError(f"os.system called: {command}")

    monkeypatch.setattr(os, "system", no_shell)
    assert export_format(weights("yolov8n.yaml"), "mnn", IMGSZ, out=tmp_path / "m.mnn").parity.passed
    pt = str(weights("yolov8n.yaml"))
    command = [sys.executable, "-m", "yolo_prune", "bench", pt, "--runtime", "mnn-cpu", "--runs", "1", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"][0]["model"] == pt


@pytest.mark.parametrize(
    "args, precision",
    [({"quantize": 8}, "int8"), ({"int8": True}, "int8"), ({"quantize": "w8a16"}, "w8a16"), ({}, "fp32")],
)
def test_bench_labels_an_export_by_how_ultralytics_quantized_it(tmp_path, args, precision):
    from yolo_prune.deploy.runtimes.exported import _precision

    folder = tmp_path / "m_openvino_model"
    folder.mkdir()
    (folder / "metadata.yaml").write_text(json.dumps({"task": "detect", "args": args}))  # JSON is YAML
    assert _precision(folder) == precision
