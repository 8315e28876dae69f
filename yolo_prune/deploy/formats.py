"""Deployment formats as records: what Ultralytics' exporter calls each, where the file goes, what it needs, and how
to run the result (for the parity check, and for timing it as a runtime of `bench`). A new format is one `Format`
entry in `FORMATS` plus its test.

Every runner computes in float32, whatever the runtime would pick by itself on this CPU (ncnn's and MNN's fp16/bf16
paths, OpenVINO's bf16): the parity check tests the export, not a runtime's precision choice, and a timing of the
same file must run what was checked. `threads` sets the runtime's CPU threads (None: its own default).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from yolo_prune.errors import ConfigError

if TYPE_CHECKING:  # the CLI lists the formats: that must not load torch or numpy
    import numpy as np

Runner = Callable[["np.ndarray"], list["np.ndarray"]]  # every output of the model, in order
EDGE_EXTRA = "pip install 'yolo-prune[edge]'"  # the optional extra that installs every edge runtime


@dataclass(frozen=True)
class Format:
    """One export format."""

    name: str  # Ultralytics' `format=` value and the CLI's --format
    suffix: str  # the default output beside the weights: `<stem><suffix>` (a folder for some formats)
    runner: Callable[[Path, int | None], Runner] | None  # loads the export to run NCHW float32 batches; None: no
    # runtime on this platform (the export is checked by loading it, `loader`)
    packages: tuple[tuple[str, str], ...] = ()  # (import name, pip requirement) beyond the base install
    options: tuple[str, ...] = ("dynamic",)  # exporter options it takes
    runtime: str | None = None  # the `bench` runtime that runs it, where there is one
    loader: Callable[[Path], str] | None = None  # where no runtime exists: loads the export, says what it holds
    aliases: tuple[str, ...] = ()
    int8_packages: tuple[tuple[str, str], ...] = ()  # what its INT8 export needs beyond `packages`
    gpu: bool = False  # made on a CUDA GPU (TensorRT builds its engine for the GPU it runs on)

    def default_out(self, weights: Path) -> Path:
        """Where Ultralytics itself would write the export: beside the weights."""
        return weights.with_name(weights.stem + self.suffix)


@contextlib.contextmanager
def quiet_output(*fds: int) -> Iterator[None]:
    """File descriptors `fds` (default: 1, stdout) into a discarded temporary file meanwhile: converters and runtimes
    (pnnx, litert-torch, coremltools, MNN) print progress there from C code and subprocesses, hundreds of lines per
    export, which would flood a terminal and corrupt a `--json` stdout."""
    fds = fds or (1,)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    try:
        with tempfile.TemporaryFile() as sink:
            for fd in fds:
                os.dup2(sink.fileno(), fd)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
    finally:
        for copy in saved.values():
            os.close(copy)


def disk_size(path: Path) -> int:
    """Bytes on disk of a model file, or of every file in a model folder (OpenVINO, NCNN, ...)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _onnx_runner(path: Path, threads: int | None = None) -> Runner:
    from yolo_prune.deploy.ort_session import open_session, session_options

    session = open_session(path, session_options(threads))
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _torchscript_runner(path: Path, threads: int | None = None) -> Runner:
    import torch

    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            y = module(torch.from_numpy(x))
        return [t.numpy() for t in y] if isinstance(y, (list, tuple)) else [y.numpy()]

    return run


def _openvino_runner(path: Path, threads: int | None = None) -> Runner:
    import numpy as np
    import openvino as ov

    # f32 explicitly: on CPUs with bf16 units OpenVINO otherwise runs in bf16 (boxes off by pixels).
    config = {"INFERENCE_PRECISION_HINT": "f32", **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
    xml = path if path.suffix == ".xml" else next(path.glob("*.xml"))
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    return lambda x: [np.asarray(v) for v in compiled(x).values()]


def ncnn_net(param: str | Path, weights: str | Path | bytes, threads: int | None = None):
    """An ncnn `Net` in float32 (fp16/bf16 storage and arithmetic off) with `threads` threads, loaded from a .param
    file (or its text) and a .bin file (or its bytes)."""
    import ncnn

    net = ncnn.Net()
    for option in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage", "use_bf16_packed"):
        setattr(net.opt, option, False)
    if threads:
        net.opt.num_threads = threads
    if isinstance(param, Path):
        net.load_param(str(param))
    else:
        net.load_param_mem(str(param))
    if isinstance(weights, bytes):
        net.load_model_mem(weights)
    else:
        net.load_model(str(weights))
    return net


def _ncnn_runner(path: Path, threads: int | None = None) -> Runner:
    import ncnn
    import numpy as np

    param = path if path.suffix == ".param" else next(path.glob("*.param"))
    net = ncnn_net(param, param.with_suffix(".bin"), threads)
    inputs, outputs = net.input_names(), sorted(net.output_names())

    def run(x: np.ndarray) -> list[np.ndarray]:
        results = []
        for sample in x:  # ncnn runs one image at a time
            with net.create_extractor() as ex:
                ex.input(inputs[0], ncnn.Mat(np.ascontiguousarray(sample)))
                results.append([np.array(ex.extract(name)[1]) for name in outputs])
        return [np.stack(y) for y in zip(*results)]

    return run


def _mnn_runner(path: Path, threads: int | None = None) -> Runner:
    import numpy as np
    from ultralytics.utils.files import import_execstack

    # Ultralytics' import clears an executable-stack flag that newer glibc refuses on MNN's libraries; importing MNN
    # prints "The device supports: ..." from C.
    with quiet_output():
        MNN = import_execstack("MNN", "_mnncengine*.so", "_tools*.so")
    config = {"precision": "high", "backend": "CPU", **({"numThread": threads} if threads else {})}
    with quiet_output():  # "MNN use high precision", from C
        runtime = MNN.nn.create_runtime_manager((config,))
        net = MNN.nn.load_module_from_file(str(path), [], [], runtime_manager=runtime, rearrange=True)

    def run(x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x)
        return [y.read().copy() for y in net.onForward([MNN.expr.const(x.ctypes.data, list(x.shape))])]

    return run


def _executorch_runner(path: Path, threads: int | None = None) -> Runner:
    import torch
    from executorch.runtime import Runtime

    if threads:  # XNNPACK's thread pool is process-wide
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(threads)
    pte = path if path.suffix == ".pte" else next(path.rglob("*.pte"))
    method = Runtime.get().load_program(str(pte)).load_method("forward")
    return lambda x: [t.numpy() for t in method.execute([torch.from_numpy(x)])]


def _litert_runner(path: Path, threads: int | None = None) -> Runner:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path), **({"num_threads": threads} if threads else {}))
    interpreter.allocate_tensors()
    source, outputs = interpreter.get_input_details()[0], interpreter.get_output_details()

    def run(x: np.ndarray) -> list[np.ndarray]:
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        ys = [interpreter.get_tensor(o["index"]).copy() for o in outputs]
        # Ultralytics exports LiteRT boxes normalised to [0, 1] (so that INT8 keeps the scores' resolution) and
        # scales them back by the input size when it predicts (`nn/backends/litert.py`); so does this runner.
        for y in ys:
            if y.ndim == 3:
                y[:, [0, 2]] *= x.shape[3]
                y[:, [1, 3]] *= x.shape[2]
        return ys

    return run


def _coreml_loader(path: Path) -> str:
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    inputs = ", ".join(i.name for i in spec.description.input)
    return f"CoreML spec version {spec.specificationVersion}, inputs: {inputs}"


def _engine_loader(path: Path) -> str:
    from ultralytics.nn.backends.base import BaseBackend

    metadata = BaseBackend.read_metadata(path)
    return f"TensorRT engine for imgsz {metadata.get('imgsz')}, batch {metadata.get('batch')}"


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("onnx", ".onnx", _onnx_runner, options=("dynamic", "opset", "simplify"), runtime="onnxruntime-cpu"),
        Format("torchscript", ".torchscript", _torchscript_runner),
        Format(
            "openvino",
            "_openvino_model",
            _openvino_runner,
            (("openvino", "openvino>=2024.0.0"),),
            options=("dynamic", "int8"),
            runtime="openvino-cpu",
            int8_packages=(("nncf", "nncf>=2.14.0"),),
        ),
        Format("ncnn", "_ncnn_model", _ncnn_runner, (("ncnn", "ncnn"), ("pnnx", "pnnx")), runtime="ncnn-cpu"),
        Format("mnn", ".mnn", _mnn_runner, (("MNN", "MNN>=2.9.6"),), runtime="mnn-cpu"),
        Format(
            "executorch",
            "_executorch_model",
            _executorch_runner,
            (("executorch", "executorch"),),
            options=(),
            runtime="executorch-cpu",
        ),
        Format(
            "tflite",
            ".tflite",
            _litert_runner,
            (("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert>=2.1.4")),
            options=("int8",),
            runtime="litert-cpu",
            aliases=("litert",),
            int8_packages=(("ai_edge_quantizer", "ai-edge-quantizer>=0.10.0"),),  # litert_int8.quantize_litert
        ),
        Format("coreml", ".mlpackage", None, (("coremltools", "coremltools>=9.0"),), options=(), loader=_coreml_loader),
        Format(
            "engine",
            ".engine",
            None,
            (("tensorrt", "tensorrt>=7.0.0"),),
            options=("dynamic", "int8"),
            loader=_engine_loader,
            aliases=("tensorrt",),
            gpu=True,
        ),
    )
}


def format_of(path: Path) -> Format | None:
    """The format of an exported model file or folder, by its name (as Ultralytics writes it); None if unknown."""
    name = path.name.lower()
    return next((f for f in FORMATS.values() if name.endswith(f.suffix.lower())), None)


def get_format(name: str) -> Format:
    """The format registered as `name` or one of its aliases (any case); unknown names fail listing the valid ones."""
    wanted = name.lower()
    for spec in FORMATS.values():
        if wanted == spec.name or wanted in spec.aliases:
            return spec
    raise ConfigError(f"unknown --format '{name}'; choose one of {', '.join(FORMATS)}")
