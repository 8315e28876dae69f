"""`yolo-prune info`: what a model file costs and how wide each layer is."""

from __future__ import annotations

from yolo_prune.pruning.cost import layer_table, measure
from yolo_prune.pruning.load import load_model


def model_info(source: str, imgsz: int = 640) -> dict:
    """MACs, parameters, class names and per-layer widths of a model file."""
    model = load_model(source)
    return {
        "model": str(source),
        **measure(model, imgsz).to_dict(),
        "layers": layer_table(model),
        "names": dict(model.names),
    }
