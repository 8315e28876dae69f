"""What a model costs: MACs at an input size, parameters, and the width of every conv.

MACs are counted by torch-pruning's op counter (multiply-accumulates, one per multiply-add; Ultralytics' "GFLOPs"
are twice this number).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn


@dataclass(frozen=True)
class ModelCost:
    """MACs at `imgsz` (square, batch 1) and the parameter count."""

    macs: int
    params: int
    imgsz: int

    def to_dict(self) -> dict:
        return {"macs": self.macs, "params": self.params, "imgsz": self.imgsz}


def example_input(model: nn.Module, imgsz: int, batch: int = 1) -> torch.Tensor:
    """A random image batch on the model's device, used for tracing and counting."""
    device = next(model.parameters()).device
    return torch.rand(batch, 3, imgsz, imgsz, device=device)


def measure(model: nn.Module, imgsz: int) -> ModelCost:
    """Count MACs and parameters of `model` for one `imgsz` x `imgsz` image."""
    macs, params = tp.utils.count_ops_and_params(model, example_input(model, imgsz))
    return ModelCost(macs=int(macs), params=int(params), imgsz=imgsz)


def conv_widths(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv, keyed by module name (e.g. `model.2.cv1a.conv`)."""
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def layer_table(model: nn.Module) -> list[dict]:
    """One row per top-level Ultralytics layer: index, block type, output channels, parameters.

    Output channels are read off a forward pass (a 64x64 image), so they are right for every kind of block.
    """
    channels: dict[int, int | None] = {}
    hooks = [
        layer.register_forward_hook(
            lambda _m, _i, out, index=index: channels.__setitem__(
                index, out.shape[1] if isinstance(out, torch.Tensor) else None
            )
        )
        for index, layer in enumerate(model.model)
    ]
    try:
        with torch.no_grad():
            model.eval()(example_input(model, 64))
    finally:
        for hook in hooks:
            hook.remove()
    return [
        {
            "index": index,
            "type": getattr(layer, "yolo_prune_source", type(layer).__name__),
            "out_channels": channels.get(index),
            "params": sum(p.numel() for p in layer.parameters()),
        }
        for index, layer in enumerate(model.model)
    ]
