"""INT8 LiteRT for CPU deployment: ai-edge-quantizer's static INT8 of an exported FP32 .tflite, with the detection
head's final convs and box decoding kept in float (the LiteRT counterpart of `quantize.quantize_int8` for ONNX).

Why not Ultralytics' own LiteRT INT8 (8.4.190, `utils/export/litert.py`): it quantizes every op with one recipe,
`static_wi8_ai8` (per-channel INT8 weights, per-tensor INT8 activations), graph input and output left float. That
includes the box decoding after the head's convs, and each of its tensors gets one INT8 scale: the DFL's
softmax-weighted sum over 16 bins (0..~117, a step of 0.46 bin), the anchor arithmetic in grid units (0..48 at
imgsz 384, a step of 0.19 cell, i.e. 6 px for the stride-32 level) and the pixel boxes (a step of 2 px at 384).
Measured on the fine-tuned 50%-MACs yolov8n (BCCD val, imgsz 384, mAP50-95; FP32 .tflite 0.5988): Ultralytics' INT8
0.5296; the same recipe with only the DFL in float 0.5600, with only the decoding after the DFL in float 0.5834, with
only the class scores' path in float 0.5465 (the shared output scale is not the cause: Ultralytics already
normalizes boxes to [0, 1]); with the decoding and DFL in float 0.5969, and with the head's final convs in float
too (this module) 0.5989. Those ops hold well under 1% of the MACs: at imgsz 640 it ran as fast as Ultralytics' INT8,
2.3x faster than FP32 on a 2-core x86 CPU (XNNPACK, 2 threads). Measurements: docs/benchmarks.md section 16.

Everything goes through ai-edge-quantizer's public recipe API; nothing in a library is patched.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

from yolo_prune.atomic import atomic_path
from yolo_prune.errors import ExportError, first_line


def quantize_litert(fp32: Path, out: Path, images: Sequence[Path], *, metadata_args: dict | None = None) -> dict:
    """Write `out`, the static INT8 twin of the FP32 LiteRT detector `fp32`, calibrated on letterboxed `images`.

    Per-channel INT8 weights and per-tensor INT8 activations (Ultralytics' recipe), graph input and output float;
    the ops that `head_tail_scopes` names stay float. The FP32 file's Ultralytics metadata is carried over with
    `metadata_args` merged into its `args` (so that `bench` and Ultralytics see an INT8 export). Returns details
    for `ExportResult`: how many calibration images and float ops.
    """
    from ai_edge_quantizer import qtyping, quantizer, recipe
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils

    from yolo_prune.deploy.parity import letterbox

    metadata = _metadata(fp32)
    imgsz = int(metadata.get("imgsz", [0])[0])
    signature, input_name = _signature(fp32)
    keep_float = head_tail_scopes(tfl_flatbuffer_utils.read_model(str(fp32)))
    samples = [{input_name: letterbox(path, imgsz)} for path in images]
    no_quantize = recipe.AlgorithmName.NO_QUANTIZE
    try:
        qt = quantizer.Quantizer(str(fp32))
        qt.load_quantization_recipe(recipe.static_wi8_ai8())
        for op in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
            qt.update_quantization_recipe(regex=".*", operation_name=op, algorithm_key=no_quantize)
        for scope in keep_float:  # later entries win: these ops stay float whatever the recipe above says
            qt.update_quantization_recipe(
                regex=f"^{re.escape(scope)}$",
                operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                algorithm_key=no_quantize,
            )
        calibration = qt.calibrate({signature: samples})
        quantized = qt.quantize(calibration_result=calibration)
    except Exception as e:  # the quantizer raises many kinds; each is a one-line failure of this export
        raise ExportError(f"INT8 quantization of {fp32} failed: {first_line(e)}") from e
    metadata["args"] = {**metadata.get("args", {}), **(metadata_args or {})}
    with atomic_path(out) as target:
        target.write_bytes(bytes(quantized.quantized_model))
        # Ultralytics' LiteRT files carry their metadata as a zip entry appended to the flatbuffer
        with zipfile.ZipFile(target, "a", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("metadata.json", json.dumps(metadata))
    return {"calibration_images": len(samples), "float_ops": len(keep_float)}


def head_tail_scopes(model) -> list[str]:
    """The quantizer's scope names of the detection head's final convs and every op after them (the box decoding),
    in a LiteRT flatbuffer model (`tfl_flatbuffer_utils.read_model`).

    Found by walking back from the graph outputs through every op that is not a conv fed by an activation: the walk
    stops at the head's final 1x1 convs (fed by SiLU, x * sigmoid(x)) and passes through the DFL (a softmax and a sum,
    or a conv fed by a softmax), as `quantize.head_tail_nodes` does for ONNX. Structural, so it holds whatever
    litert-torch names the tensors. Raises `ExportError` if the walk reaches the graph input (no such head).
    """
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils

    ops_ = qtyping.BuiltinOperator
    convs = {ops_.CONV_2D, ops_.DEPTHWISE_CONV_2D}
    activations = {ops_.MUL, ops_.LOGISTIC, ops_.RELU, ops_.RELU6, ops_.HARD_SWISH, ops_.LEAKY_RELU}
    graph = model.subgraphs[0]
    producer = {t: i for i, op in enumerate(graph.operators) for t in op.outputs}

    def code(i: int) -> int:
        return model.operatorCodes[graph.operators[i].opcodeIndex].builtinCode

    seen: set[int] = set()
    stack = [producer[t] for t in graph.outputs if t in producer]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        inputs = [t for t in graph.operators[i].inputs if t >= 0]
        if any(t in graph.inputs for t in inputs):
            raise ExportError("cannot find the detection head's final convs in the LiteRT graph (reached its input)")
        fed = producer.get(inputs[0]) if inputs else None
        if code(i) in convs and fed is not None and code(fed) in activations:
            continue  # a final conv of the head: kept float, but what feeds it is the network proper
        stack.extend(producer[t] for t in inputs if t in producer)
    return [tfl_flatbuffer_utils.get_op_scope(graph.operators[i], graph.tensors) for i in sorted(seen)]


def _metadata(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError) as e:
        raise ExportError(f"{path} has no Ultralytics metadata: {first_line(e)}") from e


def _signature(path: Path) -> tuple[str, str]:
    """The model's signature key and its single input's name (litert-torch: 'serving_default', 'args_0')."""
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=str(path)).get_signature_list()
    if len(signatures) != 1:
        raise ExportError(f"{path}: expected one signature, found {len(signatures)}")
    ((key, io),) = signatures.items()
    if len(io["inputs"]) != 1:
        raise ExportError(f"{path}: expected one input, found {len(io['inputs'])}")
    return key, io["inputs"][0]
