"""benchmarks/distill.py reads finished rows instead of training again and reports means against no distillation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distill.py"


def test_distill_table_from_cached_rows(tmp_path):
    values = {"none-s0": 0.58, "none-s1": 0.56, "w1-s0": 0.55, "w1-s1": 0.55, "w05-s0": 0.57, "w05-s1": 0.575}
    for folder, value in values.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "report.json").write_text(json.dumps({"after": {"map50_95": value}}))
    args = ["--data", "unused.yaml", "--out", str(tmp_path), "--rows", "none,w0.5,w1", "--seeds", "0,1"]
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = {line.split(" | ")[0]: line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert "| 0.5800 | 0.5600 | 0.5700 |" in lines["| none"]
    assert lines["| `--distill-weight 0.5`"].endswith("| 0.5725 | +0.2 points |")
    assert lines["| `--distill-weight 1`"].endswith("| 0.5500 | -2.0 points |")
