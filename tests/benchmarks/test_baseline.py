"""benchmarks/baseline.py refuses bad input in one line before it trains anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "baseline.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_a_missing_dataset_or_a_bad_number_is_one_line_and_writes_nothing(tmp_path, tiny_data):
    out = tmp_path / "run"
    missing = _run("yolov8n.yaml", "--data", str(tmp_path / "none.yaml"), "--out", str(out))
    assert missing.returncode == 2 and "--data" in missing.stderr and "no such dataset YAML" in missing.stderr
    bad = _run("yolov8n.yaml", "--data", str(tiny_data), "--out", str(out), "--epochs", "0")
    assert bad.returncode == 2 and "--epochs and --batch must be at least 1" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr and not out.exists()
