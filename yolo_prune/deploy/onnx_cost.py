"""The cost of an exported ONNX graph: MACs and parameters counted from its nodes, for files that have no PyTorch
checkpoint beside them (`bench` of an .onnx file, INT8 exports)."""

from __future__ import annotations

import math
from pathlib import Path


def onnx_cost(path: str | Path, imgsz: int) -> tuple[int | None, int | None, str]:
    """MACs and parameters of the Conv/ConvInteger/QLinearConv/MatMul/Gemm nodes of an ONNX graph at `imgsz`.

    Shapes come from ONNX shape inference with the input fixed to (1, 3, imgsz, imgsz); weights behind a
    DequantizeLinear (QDQ INT8 files) are followed to their initializers. BatchNorm is folded into the convs in an
    exported graph, and the DFL's fixed conv is counted (in a `--stock-dfl` export; the default export computes it as
    a weighted sum, see `head.fast_dfl`), so the figures differ slightly from the PyTorch count of the same model.
    Returns (None, None, reason) when some shape cannot be inferred.
    """
    import onnx

    model = onnx.load(str(path))
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 3, imgsz, imgsz)):
        if not dim.dim_value:
            dim.dim_value = value  # replaces a symbolic (dynamic) dimension
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as e:  # an invalid graph: no count rather than no benchmark
        return None, None, f"onnx shape inference failed ({type(e).__name__})"
    graph = inferred.graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*graph.value_info, *graph.input, *graph.output)
    }
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    # Weights are initializers, or initializers behind a DequantizeLinear; attention's MatMuls multiply activations.
    constants = {t.name for t in graph.initializer}
    constants |= {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in constants}
    macs = params = 0
    for node in graph.node:
        spec = _WEIGHTED_OPS.get(node.op_type)
        if spec is None:
            continue
        x_in, w_in, b_in = spec
        out, w = shapes.get(node.output[0]), shapes.get(node.input[w_in])
        if not out or not w or 0 in out or 0 in w:
            return None, None, f"shape of {node.name or node.op_type} unknown after shape inference"
        if node.op_type in ("MatMul", "MatMulInteger", "Gemm"):
            a = shapes.get(node.input[x_in]) or []
            transposed = any(at.name == "transA" and at.i for at in node.attribute)
            if not a or 0 in a:
                return None, None, f"shape of {node.name or node.op_type} unknown after shape inference"
            k = a[-2] if transposed else a[-1]
        else:
            k = math.prod(w[1:])  # (C_out, C_in / groups, kh, kw): MACs per output element
        macs += math.prod(out) * k
        if node.input[w_in] not in constants:
            continue
        params += math.prod(w)
        if b_in is not None and len(node.input) > b_in and node.input[b_in]:
            params += math.prod(shapes.get(node.input[b_in]) or [0])
    return macs, params, "onnx graph"


# op type -> (data input index, weight input index, bias input index or None)
_WEIGHTED_OPS: dict[str, tuple[int, int, int | None]] = {
    "Conv": (0, 1, 2),
    "ConvInteger": (0, 1, None),
    "QLinearConv": (0, 3, 8),
    "MatMul": (0, 1, None),
    "MatMulInteger": (0, 1, None),
    "Gemm": (0, 1, 2),
}
