"""Where yolo_prune keeps what it measured for reuse (sensitivity scans, latency tables)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$YOLO_PRUNE_CACHE, else $XDG_CACHE_HOME/yolo_prune, else ~/.cache/yolo_prune."""
    if os.environ.get("YOLO_PRUNE_CACHE"):
        return Path(os.environ["YOLO_PRUNE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yolo_prune"
