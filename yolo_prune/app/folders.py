"""Run folders: where a run writes when no --out is given, and the checks before anything is written there."""

from __future__ import annotations

import shutil
from pathlib import Path

from yolo_prune.errors import ConfigError


def default_run_dir(model: str, root: str | Path = "runs/prune") -> Path:
    """`runs/prune/<model stem>`, or `<stem>2`, `<stem>3`, ... when that exists already."""
    base = Path(root) / Path(model).stem
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}{n}")
        n += 1
    return candidate


def check_out_dir(out: Path) -> None:
    """`out` is a folder, or can become one: a file there, or a parent that is a file, is a one-line error."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"--out {out}: {path} is a file, not a folder")
            return


def refuse_finished(out: Path, marker: str = "report.json") -> None:
    """A folder holding a finished run is never written into again (and `out` must be a folder)."""
    check_out_dir(out)
    if (out / marker).exists():
        raise ConfigError(f"{out} already holds a finished run; choose another --out")


def remove_failed(out: Path, created: bool, keep: str | None = None) -> None:
    """After a run failed on bad input: remove the folder it created, unless it holds `keep` files (a glob), such as
    the `last.pt` of a fine-tune that a corrected `--resume` may still want."""
    if created and not (keep and any(out.glob(keep))):
        shutil.rmtree(out, ignore_errors=True)
