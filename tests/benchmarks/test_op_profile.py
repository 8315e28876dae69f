"""benchmarks/op_profile.py: onnxruntime's kernel time per op type, read from its profile, models side by side."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from yolo_prune.deploy.runtimes.onnx_runtime import conv_graph
from yolo_prune.pruning.cost import ConvShape

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "op_profile.py"


def test_a_wider_conv_takes_longer_and_the_ratio_says_how_much(tmp_path):
    for name, cout in (("wide", 256), ("narrow", 32)):
        graph = conv_graph(ConvShape(64, cout, 3, 1, 1, 1, 1, 56, 56, True))
        (tmp_path / f"{name}.onnx").write_bytes(graph.SerializeToString())
    args = [str(tmp_path / "wide.onnx"), str(tmp_path / "narrow.onnx"), "--threads", "1", "--runs", "5"]
    args += ["--out", str(tmp_path / "prof")]
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in done.stdout.splitlines()[2:]}
    wide, narrow, ratio = (float(v.strip(" |")) for v in rows["total"])
    # the ratio is of the unrounded times, the printed ms are rounded to 0.01
    assert wide > narrow > 0 and ratio == pytest.approx(wide / narrow, abs=0.02 * wide / narrow**2 + 0.01)
    assert ratio > 2  # 8x the output channels
    assert list(tmp_path.glob("prof/*.json"))  # onnxruntime's profiles, kept to inspect
