"""The runtimes latency is measured on, by name: each module of this package holds one family and lists its
runtimes in a module-level `RUNTIMES` tuple (`onnx_runtime`: onnxruntime on the CPU; `torch_runtime`: PyTorch on
the CPU or a CUDA GPU in FP16). A new runtime is a new module here, with its test; nothing else names it.

`bench` times whole models on one of them and the latency model times single convs on the same one, so a prune's
latency model and its end-to-end check agree on what "fast" means. Listing them loads no runtime library.
"""

from __future__ import annotations

import importlib
import pkgutil

from yolo_prune.deploy.runtimes.base import DEFAULT_RUNTIME, Loaded, Runtime
from yolo_prune.errors import ConfigError

__all__ = ["DEFAULT_RUNTIME", "RUNTIMES", "Loaded", "Runtime", "get_runtime"]


def _discover() -> dict[str, Runtime]:
    found: dict[str, Runtime] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module != "base":
            for runtime in getattr(importlib.import_module(f"{__name__}.{module}"), "RUNTIMES", ()):
                found[runtime.name] = runtime
    return {DEFAULT_RUNTIME: found.pop(DEFAULT_RUNTIME), **found}  # the default first, as `--help` lists them


RUNTIMES: dict[str, Runtime] = _discover()


def get_runtime(name: str, threads: int | None = None, batch: int = 1, batch_option: str = "--batch") -> Runtime:
    """The runtime called `name`, checked to be usable here with `threads` and `batch` images per call (the option
    that set it is `batch_option`, for the message); a one-line `ConfigError` otherwise."""
    runtime = RUNTIMES.get(name)
    if runtime is None:
        raise ConfigError(f"unknown --runtime '{name}'; choose one of: {', '.join(RUNTIMES)}")
    runtime.check(threads, batch, batch_option)
    return runtime
