"""INT8 ONNX for CPU deployment: onnxruntime's static quantization of an exported FP32 detector.

Calibrated on real, letterboxed images (the same preprocessing as the parity check, `parity.letterbox`), with
the detection head's box-decoding tail kept in float (see `quantize_int8` for why and what it measured).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from yolo_prune.atomic import atomic_path
from yolo_prune.checks import check_model_file
from yolo_prune.deploy.calibration import calibration_files
from yolo_prune.deploy.export import ExportResult
from yolo_prune.deploy.parity import letterbox
from yolo_prune.errors import ConfigError, ExportError, first_line

LOGGER = logging.getLogger("yolo_prune")


def quantize_int8(
    onnx_path: str | Path,
    *,
    data: str | Path | None = None,
    images: Sequence[str | Path] | str | Path | None = None,
    calib: int = 100,
    out: str | Path | None = None,
    exclude_head: bool = True,
) -> ExportResult:
    """Quantize an FP32 ONNX detector to static INT8 (QDQ) with onnxruntime; return the INT8 file and its size.

    Calibration feeds `calib` letterboxed images: evenly spread over the 'train' split of the dataset YAML `data`,
    or over `images` (a list of image files or a folder). Weights are INT8 per output channel, activations UINT8 per
    tensor (onnxruntime's recommended pairing for x86 CPUs). `out` defaults to `<stem>_int8.onnx` beside the input.

    `exclude_head` keeps the head's last convs and the box decoding in float: the model's single output tensor holds
    pixel boxes (0..imgsz) beside class probabilities (0..1), so one INT8 scale for it (imgsz/255 ~ 2.5 px at 640)
    would round every score to 0; the DFL softmax, the anchor arithmetic and the raw logits of the final convs are
    just as sensitive. Those nodes hold 1-2% of the MACs, so keeping them in float costs little speed. Measured on
    the trained yolov8n-bccd at imgsz 384 (val mAP50-95, FP32 ONNX 0.579): 0.582 this way, 0.000 with the head
    quantized too. Quantizing only the convs, as Ultralytics' own INT8 ONNX export does, keeps accuracy (0.578)
    but surrounds every float SiLU with Q/DQ pairs and ran 2x slower than FP32 here; this way ran 1.7x faster.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    onnx_path = check_model_file(onnx_path, (".onnx",))
    out = Path(out) if out is not None else onnx_path.with_name(f"{onnx_path.stem}_int8.onnx")
    if out.resolve() == onnx_path.resolve():
        raise ConfigError(f"the INT8 file would overwrite its input {onnx_path}; choose another --out")
    files = calibration_files(data, images, calib)
    source = onnx.load(str(onnx_path))
    imgsz = _static_imgsz(source, onnx_path)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".int8.", dir=out.parent if out.parent.exists() else None) as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        try:
            # Shape inference and graph folding first, as onnxruntime recommends: the quantizer then knows every
            # tensor's shape, and constants are folded instead of quantized.
            quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
            graph = onnx.load(str(prepared))
            excluded = head_tail_nodes(graph) if exclude_head else []
            quantize_static(
                str(prepared),
                str(quantized),
                _CalibrationReader(graph.graph.input[0].name, files, imgsz),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=excluded,
            )
        except Exception as e:  # onnxruntime's quantizer raises many kinds
            raise ExportError(f"INT8 quantization of {onnx_path} failed: {first_line(e)}") from e
        model = onnx.load(str(quantized))
        del model.metadata_props[:]  # keep Ultralytics' metadata (names, stride, imgsz) so YOLO() can load the file
        model.metadata_props.extend(source.metadata_props)
        with atomic_path(out) as target:
            onnx.save(model, str(target))
            shutil.copymode(onnx_path, target)  # the temporary file is private (0600); match the FP32 file
    details = {"calibration_images": len(files), "excluded_nodes": len(excluded), "source": str(onnx_path)}
    result = ExportResult("onnx-int8", out, out.stat().st_size, imgsz, time.perf_counter() - start, None, details)
    LOGGER.info(f"int8: {out} ({result.size_bytes / 1e6:.2f} MB), calibrated on {len(files)} images")
    return result


def head_tail_nodes(model) -> list[str]:
    """Names of the detection head's final convs and every node after them (the box decoding), in an ONNX graph.

    Found by walking back from the graph outputs through everything that is not a conv fed by an activation: that
    stops exactly at the head's final 1x1 convs (fed by SiLU) and passes through the DFL's fixed conv (fed by a
    softmax). The walk is structural, so it works whatever the exporter named the nodes.
    """
    producer = {o: n for n in model.graph.node for o in n.output}
    initializers = {i.name for i in model.graph.initializer}
    activations = {"Mul", "Sigmoid", "Relu", "HardSwish", "LeakyRelu"}
    seen: dict[str, object] = {}
    stack = [producer[o.name] for o in model.graph.output if o.name in producer]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen[node.name] = node
        fed = producer.get(node.input[0]) if node.input else None
        if node.op_type == "Conv" and fed is not None and fed.op_type in activations:
            continue  # a final conv of the head: excluded, but what feeds it is the network proper
        if node.op_type == "Shape":
            continue  # depends on a tensor's shape only (dynamic exports), not on its values
        stack.extend(producer[i] for i in node.input if i in producer and i not in initializers)
    return list(seen)


def _static_imgsz(model, path: Path) -> int:
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or not dims[2] or dims[2] != dims[3]:
        raise ConfigError(
            f"{path}: INT8 calibration needs a fixed square input, found {dims} (export without --dynamic)"
        )
    return dims[2]


class _CalibrationReader:
    """onnxruntime `CalibrationDataReader` protocol: letterboxed images, one per call, then None."""

    def __init__(self, input_name: str, files: Sequence[Path], imgsz: int):
        self.input_name, self.files, self.imgsz = input_name, list(files), imgsz
        self.rewind()

    def get_next(self) -> dict | None:
        path = next(self._iter, None)
        return None if path is None else {self.input_name: letterbox(path, self.imgsz)}

    def rewind(self) -> None:
        self._iter = iter(self.files)
