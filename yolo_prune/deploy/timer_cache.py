"""What every layer timer shares: milliseconds per conv shape, timed once per machine and cached on disk.

`pruning.latency` models a network's latency as the sum of its convs' and asks a `LayerTimer` what a conv shape
costs. Each runtime (`deploy.runtimes`) has a timer built on `CachedTimer`: every figure is cached in
`cache_dir()/latency/<runtime>-<machine>.json`, keyed by the shape (channels, kernel, stride and input size, so one
file serves every imgsz): the first prune of a model at a new size times its shapes (seconds), later ones read them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from yolo_prune.atomic import write_json
from yolo_prune.cache import cache_dir

if TYPE_CHECKING:  # listing the runtimes must not load torch
    from yolo_prune.pruning.cost import ConvShape

LOGGER = logging.getLogger("yolo_prune")

# Per shape: at least 5 timed runs, more until 10 ms were spent (docs/benchmarks.md section 10 has the noise study).
MIN_RUNS, MAX_RUNS, MIN_MS = 5, 15, 10.0
# Part of the cache key: a change to how shapes are timed must not read figures timed the old way.
TIMING_VERSION = 2  # 2: kernel time from the profiler, reorders left out (1 timed the whole session run)
SAVE_EVERY = 100  # shapes timed between cache writes, so an interrupted prune keeps most of what it measured


def _cpu_name() -> str:
    """This machine's processor, as /proc/cpuinfo names it (part of a CPU timer's cache key)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_machine() -> str:
    """The CPU and its core count, for a cache key."""
    return f"{_cpu_name()}, {os.cpu_count()} cpus"


class CachedTimer:
    """A table of milliseconds per conv shape, read from and merged into its cache file.

    A subclass sets `runtime` and `machine` (the runtime, its settings and this machine's hardware: the cache key)
    before calling `_open`, and implements `_time(shape)`.
    """

    runtime: str
    machine: str
    block: int | None = None  # the runtime's channel block, where it reports one

    def _open(self, cache: Path | None) -> None:
        digest = hashlib.sha256(f"{self.machine}, timing v{TIMING_VERSION}".encode()).hexdigest()[:12]
        self.path = (cache or cache_dir()) / "latency" / f"{self.runtime}-{digest}.json"
        self._ms: dict[str, float] = self._read()
        self.timed = 0  # shapes this timer measured (not read from the cache)

    def _read(self) -> dict[str, float]:
        if not self.path.exists():
            return {}
        try:
            return dict(json.loads(self.path.read_text())["ms"])
        except (OSError, ValueError, KeyError, TypeError):
            LOGGER.warning(f"warning: ignoring an unreadable latency cache {self.path}")
            return {}

    def _save(self) -> None:
        """Merge what this timer measured into the cache file (another prune may have added to it meanwhile)."""
        try:
            write_json(
                self.path, {"runtime": self.runtime, "machine": self.machine, "ms": {**self._read(), **self._ms}}
            )
        except OSError as e:  # a read-only cache costs the next prune its timings, not this prune its result
            LOGGER.warning(f"warning: cannot write the latency cache {self.path}: {e}")

    def __call__(self, shapes: Sequence[ConvShape]) -> list[float]:
        missing = {s.key: s for s in shapes if s.key not in self._ms}
        if missing:
            start = time.perf_counter()
            for n, (key, shape) in enumerate(missing.items(), 1):
                self._ms[key] = self._time(shape)
                if n % SAVE_EVERY == 0:
                    self._save()
            self.timed += len(missing)
            LOGGER.info(f"  timed {len(missing)} conv shape(s) in {time.perf_counter() - start:.1f} s")
            self._save()
        return [self._ms[s.key] for s in shapes]

    def _time(self, s: ConvShape) -> float:
        raise NotImplementedError


def wall_ms(run: Callable[[], object]) -> list[float]:
    """Milliseconds of `run` per call, wall clock: at least `MIN_RUNS` calls, more until `MIN_MS` were spent (at most
    `MAX_RUNS`). Warm-up is the caller's: runtimes need different amounts."""
    wall: list[float] = []
    while len(wall) < MIN_RUNS or (len(wall) < MAX_RUNS and sum(wall) < MIN_MS):
        t0 = time.perf_counter_ns()
        run()
        wall.append((time.perf_counter_ns() - t0) / 1e6)
    return wall
