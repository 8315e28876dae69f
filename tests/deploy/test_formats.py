"""Export formats are records: the registry answers names, default files and which options a format takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolo_prune.deploy.export import export_format
from yolo_prune.deploy.formats import FORMATS, get_format
from yolo_prune.errors import ConfigError


def test_formats_by_name_and_their_default_files():
    assert list(FORMATS) == ["onnx", "torchscript", "openvino"]
    assert get_format("ONNX") is FORMATS["onnx"]
    weights = Path("runs/x/pruned.pt")
    assert [f.default_out(weights) for f in FORMATS.values()] == [
        Path("runs/x/pruned.onnx"),
        Path("runs/x/pruned.torchscript"),
        Path("runs/x/pruned_openvino_model"),
    ]
    assert FORMATS["openvino"].package == ("openvino", "2024.0.0")
    with pytest.raises(ConfigError, match="unknown export format 'tflite'; choose one of onnx, torchscript, openvino"):
        get_format("tflite")


def test_an_option_a_format_does_not_take_is_refused_naming_who_takes_it(tmp_path):
    weights = tmp_path / "m.pt"
    weights.write_bytes(b"not read: the options are checked first")
    with pytest.raises(ConfigError, match="^--opset is for --format onnx, not torchscript$"):
        export_format(weights, "torchscript", 64, opset=12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
