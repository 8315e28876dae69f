"""ONNX exports of pruned segment, pose and OBB models pass the parity check, which also sees their extra outputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import IMGSZ

from yolo_prune.deploy.export import export_onnx
from yolo_prune.deploy.formats import FORMATS
from yolo_prune.errors import ExportError

TASK_YAMLS = ("yolov8n-seg.yaml", "yolo26n-seg.yaml", "yolo11n-pose.yaml", "yolo26n-pose.yaml", "yolo11n-obb.yaml")


@pytest.mark.parametrize("name", [*TASK_YAMLS, "yolo11n-seg.yaml", "yolo26n-obb.yaml"])
def test_pruned_task_models_export_with_parity(tmp_path, weights, name):
    result = export_onnx(weights(name), out=tmp_path / "m.onnx", imgsz=IMGSZ)
    assert result.parity.passed and result.parity.relative_diff < 1e-5
    if "seg" in name or "pose" in name or "obb" in name:
        assert result.parity.extra_abs_diff > 0  # the extras were compared, and differ by rounding only


@pytest.mark.parametrize(
    "name, where",
    [("yolov8n-seg.yaml", "protos"), ("yolov8n-seg.yaml", "coefficients"), ("yolo11n-pose.yaml", "coefficients")],
)
def test_a_wrong_extra_output_fails_the_check(tmp_path, weights, monkeypatch, name, where):
    onnx = FORMATS["onnx"]

    def perturbing(path, threads=None):
        run = onnx.runner(path, None)

        def wrong(x):
            outputs = run(x)
            if where == "protos":
                outputs[1] = outputs[1] * 1.01
            else:  # the channels after boxes and the 80 class scores
                outputs[0] = np.concatenate([outputs[0][:, :84], outputs[0][:, 84:] + 0.05], axis=1)
            return outputs

        return wrong

    monkeypatch.setitem(FORMATS, "onnx", dataclasses.replace(onnx, runner=perturbing))
    with pytest.raises(ExportError, match="parity check failed"):
        export_onnx(weights(name), out=tmp_path / "m.onnx", imgsz=IMGSZ)
