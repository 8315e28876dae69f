"""The runtimes latency is measured on, by name: onnxruntime on the CPU, or PyTorch on the CPU or a CUDA GPU in FP16.

`bench` times whole models on one of them and `deploy.latency` times single convs on the same one, so a prune's
latency model and its end-to-end check agree on what "fast" means. A runtime here is only the glue both need: how
to put a module and its input on the device in the right precision, how to wait for the device (CUDA runs
asynchronously, so a timer must synchronize before it reads the clock), and the settings to hold while timing
(intra-op threads on a CPU, cuDNN's autotuner on a GPU, as a deployment would run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from yolo_prune.checks import check_threads
from yolo_prune.errors import ConfigError

DEFAULT_RUNTIME = "onnxruntime-cpu"


@dataclass(frozen=True)
class Runtime:
    name: str
    framework: str  # "onnxruntime" (exported ONNX files) or "torch" (the checkpoint's module)
    device: str  # "cpu" or "cuda"
    half: bool  # FP16 weights and inputs

    @property
    def uses_torch(self) -> bool:
        return self.framework == "torch"

    def describe(self, threads: int | None) -> str:
        """A short text naming the runtime and its settings, e.g. for a table's footer."""
        if self.framework == "onnxruntime":
            import onnxruntime

            return f"onnxruntime {onnxruntime.__version__} CPU, {threads or 'default'} intra-op threads"
        import torch

        if self.device == "cuda":
            return f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}, {'FP16' if self.half else 'FP32'}"
        return f"PyTorch {torch.__version__} CPU, {threads or 'default'} threads"

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
        """Wait for the device to finish what was queued (a no-op on the CPU)."""
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    @contextlib.contextmanager
    def timing(self, threads: int | None) -> Iterator[None]:
        """Hold the settings a deployment would run with while timing, and restore PyTorch's afterwards: `threads`
        intra-op threads on the CPU; cuDNN's autotuner on a GPU (each conv shape picks its fastest kernel)."""
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


RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime(DEFAULT_RUNTIME, "onnxruntime", "cpu", half=False),
        Runtime("torch-cpu", "torch", "cpu", half=False),
        Runtime("torch-cuda-fp16", "torch", "cuda", half=True),
    )
}


def get_runtime(name: str, threads: int | None = None, batch: int = 1, batch_option: str = "--batch") -> Runtime:
    """The runtime called `name`, checked to be usable here with `threads` and `batch` images per call (the option
    that set it is `batch_option`, for the message); a one-line `ConfigError` otherwise."""
    runtime = RUNTIMES.get(name)
    if runtime is None:
        raise ConfigError(f"unknown runtime '{name}'; choose one of: {', '.join(RUNTIMES)}")
    check_threads(threads)
    if batch < 1:
        raise ConfigError(f"{batch_option} must be at least 1, got {batch}")
    if batch > 1 and not runtime.uses_torch:
        raise ConfigError(f"{name} times the exported graph at batch 1; {batch_option} {batch} needs a torch runtime")
    if runtime.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"runtime '{name}' needs a CUDA GPU, and PyTorch sees none on this machine")
        if threads is not None:
            raise ConfigError(f"--threads sets CPU threads; runtime '{name}' runs on the GPU")
    return runtime
