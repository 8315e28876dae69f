"""Atomic file writes: an output either appears complete or not at all, never half-written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from yolo_prune.errors import ConfigError, YoloPruneError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file private (0600); give the result the usual permissions for the user's umask
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: object) -> None:
    """`data` as indented JSON (paths and other objects as strings), written atomically."""
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def replace_path(src: Path, dst: Path, *, overwrite: bool = True) -> None:
    """Move the finished file or folder `src` onto `dst` in one rename.

    A folder already at `dst` is first renamed aside and deleted after, so `dst` is never missing or half-replaced.
    With `overwrite=False` a folder `src` only replaces an absent or empty `dst`; otherwise `OSError` is raised.
    """
    old = None
    if overwrite and dst.is_dir() and src.is_dir() and any(dst.iterdir()):
        old = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(out: str | Path, error: type[YoloPruneError] = ConfigError) -> Iterator[Path]:
    """Yield a new hidden folder beside `out` to build an output in; it is removed on exit.

    The caller renames its result onto `out` once complete (`replace_path`), so `out` appears whole or not at all.
    A folder that cannot be made is `error` (an exporter's caller goes on with its other formats on `ExportError`).
    """
    out = Path(out)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        staging.mkdir(parents=True)
    except OSError as e:
        raise error(f"cannot create {out}: {e.strerror or e}") from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
