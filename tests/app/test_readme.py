"""The README's Python quick start runs, as printed (sizes shrunk), on the demo's baseline and tiny synthetic data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "readme_example.py"


def test_the_readme_python_example_runs(tmp_path):
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_PRUNE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "prune" / "best" / "pruned.pt").is_file()
    assert "runs/prune/best/pruned.pt" in done.stdout.strip().splitlines()[-1]
