"""PyTorch on the CPU (`torch-cpu`) or a CUDA GPU in FP16 (`torch-cuda-fp16`): the checkpoint's fused module.

A checkpoint is timed as Ultralytics predicts with it (BatchNorm folded into the convs), at any batch. CUDA runs
asynchronously, so every timed call is followed by a synchronize; while timing, the CPU runs `threads` intra-op
threads and a GPU runs cuDNN's autotuner (each conv shape picks its fastest kernel), as a deployment would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from yolo_prune.deploy.runtimes.base import Loaded, Runtime
from yolo_prune.deploy.timer_cache import CachedTimer, cpu_machine, wall_ms
from yolo_prune.errors import ConfigError

if TYPE_CHECKING:  # listing the runtimes must not load torch
    from yolo_prune.pruning.cost import ConvShape


class TorchRuntime(Runtime):
    suffixes = (".pt",)
    timed = "checkpoints"
    batches = True

    def __init__(self, name: str, device: str, half: bool):
        self.name, self.device, self.half = name, device, half

    def check(self, threads: int | None, batch: int, batch_option: str) -> None:
        super().check(threads, batch, batch_option)
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(f"--runtime {self.name} needs a CUDA GPU, and PyTorch sees none on this machine")
            if threads is not None:
                raise ConfigError(f"--threads sets CPU threads; --runtime {self.name} runs on the GPU")

    def describe(self, threads: int | None) -> str:
        import torch

        if self.device == "cuda":
            return f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}, {'FP16' if self.half else 'FP32'}"
        return f"PyTorch {torch.__version__} CPU, {threads or 'default'} threads"

    def load(
        self, paths: Sequence[Path], imgsz: int, threads: int | None, batch: int, tmp: Path, fast_dfl: bool = True
    ) -> list[Loaded]:
        from yolo_prune.pruning.cost import measure
        from yolo_prune.pruning.load import load_model

        x = self.tensor((batch, 3, imgsz, imgsz))
        loaded = []
        for path in paths:
            model = load_model(path)
            cost = measure(model, imgsz)
            module = self.prepare(model.fuse(verbose=False))  # BatchNorm folded, as Ultralytics predicts
            precision = "fp16" if self.half else "fp32"
            loaded.append(Loaded(partial(module, x), None, precision, (cost.macs, cost.params, "pytorch")))
        return loaded

    def deployable(self, weights: Path, imgsz: int) -> Path:
        return weights

    def layer_timer(self, threads: int | None = None, batch: int = 1, cache: Path | None = None) -> TorchTimer:
        return TorchTimer(self, threads, batch, cache)

    def prepare(self, module):
        """`module` in eval mode on this runtime's device and precision (moved in place, as `nn.Module.to` does)."""
        module = module.eval().to(self.device)
        return module.half() if self.half else module.float()

    def tensor(self, shape: tuple[int, ...]):
        """A random input of `shape` on this runtime's device and precision (the same values every call)."""
        import torch

        generator = torch.Generator().manual_seed(0)
        x = torch.rand(shape, generator=generator).to(self.device)
        return x.half() if self.half else x

    def synchronize(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    @contextlib.contextmanager
    def timing(self, threads: int | None) -> Iterator[None]:
        """`threads` intra-op threads on the CPU, cuDNN's autotuner on a GPU; PyTorch's own settings restored after."""
        import torch

        saved_threads, saved_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
        try:
            if self.device == "cpu" and threads:
                torch.set_num_threads(threads)
            if self.device == "cuda":
                torch.backends.cudnn.benchmark = True
            with torch.inference_mode():
                yield
        finally:
            torch.set_num_threads(saved_threads)
            torch.backends.cudnn.benchmark = saved_benchmark

    def unreachable_hint(self, batch: int) -> str:
        """On a GPU at small batches a nano model's convs cost mostly their kernel launches, which pruning keeps
        (docs/benchmarks.md section 13)."""
        if self.device != "cuda":
            return ""
        return (
            f"; on a GPU at batch {batch} a small conv's time is mostly its launch, which pruning keeps: "
            "it pays at large batches (--latency-batch; docs/benchmarks.md section 13)"
        )


RUNTIMES = (TorchRuntime("torch-cpu", "cpu", half=False), TorchRuntime("torch-cuda-fp16", "cuda", half=True))


class TorchTimer(CachedTimer):
    """Times conv shapes as PyTorch modules (Conv2d, then SiLU when the shape has it) on a torch runtime, on inputs
    of `batch` images: a GPU at batch 1 spends most of a small conv's time launching it, so a prune for a GPU server
    times the batch it will serve.

    Each shape is timed with the device synchronized around every run, so the figure is the kernels' time plus
    PyTorch's per-call overhead, which a deployed PyTorch model pays as well.
    """

    def __init__(self, runtime: TorchRuntime, threads: int | None = None, batch: int = 1, cache: Path | None = None):
        import torch

        runtime.check(threads, batch, "--batch")
        self.spec, self.runtime, self.threads, self.batch = runtime, runtime.name, threads, batch
        hardware = torch.cuda.get_device_name() if runtime.device == "cuda" else cpu_machine()
        precision = "fp16" if runtime.half else "fp32"
        self.machine = (
            f"{hardware}, torch {torch.__version__}, {precision}, threads {threads or 'default'}, batch {batch}"
        )
        self._open(cache)

    def _time(self, s: ConvShape) -> float:
        from torch import nn

        conv = nn.Conv2d(s.cin, s.cout, s.k, s.stride, s.pad, s.dilation, s.groups, bias=True)
        module = self.spec.prepare(nn.Sequential(conv, nn.SiLU()) if s.act else conv)
        x = self.spec.tensor((self.batch, s.cin, s.h, s.w))
        with self.spec.timing(self.threads):
            for _ in range(3):  # warm-up; on a GPU, cuDNN's autotuner picks the kernel here
                module(x)
            self.spec.synchronize()
            wall = wall_ms(lambda: (module(x), self.spec.synchronize()))
        return float(np.median(wall))
