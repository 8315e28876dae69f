"""Export formats are records: the registry answers names, default files and which options a format takes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from yolo_prune.deploy.export import export_format
from yolo_prune.deploy.formats import FORMATS, format_of, get_format
from yolo_prune.errors import ConfigError, ExportError


def test_formats_by_name_and_their_default_files():
    assert list(FORMATS) == [
        "onnx",
        "torchscript",
        "openvino",
        "ncnn",
        "mnn",
        "executorch",
        "tflite",
        "coreml",
        "engine",
    ]
    assert get_format("ONNX") is FORMATS["onnx"] and get_format("LiteRT") is FORMATS["tflite"]
    weights = Path("runs/x/pruned.pt")
    assert [f.default_out(weights).name for f in FORMATS.values()] == [
        "pruned.onnx",
        "pruned.torchscript",
        "pruned_openvino_model",
        "pruned_ncnn_model",
        "pruned.mnn",
        "pruned_executorch_model",
        "pruned.tflite",
        "pruned.mlpackage",
        "pruned.engine",
    ]
    assert all(format_of(f.default_out(weights)) is f for f in FORMATS.values())
    assert format_of(Path("notes.txt")) is None
    assert FORMATS["openvino"].packages == (("openvino", "openvino>=2024.0.0"),)
    assert [f.runtime for f in FORMATS.values() if f.runtime] == [
        "onnxruntime-cpu",
        "openvino-cpu",
        "ncnn-cpu",
        "mnn-cpu",
        "executorch-cpu",
        "litert-cpu",
    ]
    assert get_format("TensorRT") is FORMATS["engine"]
    with pytest.raises(ConfigError, match="^unknown --format 'trt'; choose one of onnx, torchscript, openvino"):
        get_format("trt")


def test_an_option_a_format_does_not_take_is_refused_naming_who_takes_it(tmp_path):
    weights = tmp_path / "m.pt"
    weights.write_bytes(b"not read: the options are checked first")
    with pytest.raises(ConfigError, match="^--opset is for --format onnx, not torchscript$"):
        export_format(weights, "torchscript", 64, opset=12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_tensorrt_without_a_gpu_is_one_line_and_writes_nothing(tmp_path, weights):
    with pytest.raises(
        ExportError, match="^--format engine builds for a CUDA GPU, and PyTorch sees none on this machine$"
    ):
        export_format(weights("yolov8n.yaml"), "tensorrt", 64, out=tmp_path / "m.engine")
    assert not any(tmp_path.iterdir())
