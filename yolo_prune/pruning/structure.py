"""What the pruner may change in an Ultralytics detector, and how its channels are traced.

Layers whose width the network cannot change are left out of torch-pruning's groups:

- the head's final class/box convs and the DFL (their widths are the output format); YOLO26's one-to-one head
  branches likewise, while the rest of those branches is pruned with the one-to-many ones;
- attention (`Attention.qkv`, `.proj`, `.pe`): its reshape into heads ties the channel count to `num_heads` and the
  head dims, so the attention path keeps its width; the feed-forward hidden layer beside it is pruned as usual.

Tracing runs the model up to the head's raw maps (`head_outputs`), before decoding and post-processing.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules.block import Attention
from ultralytics.nn.modules.head import Detect


def head_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Run `model` and return the raw box and class maps of its head (both branches of an end-to-end head).

    Tracing stops here, before decoding and YOLO26's top-k post-processing, which hold no prunable channels.
    """
    out = model(x)
    preds = out[1] if isinstance(out, tuple) else out
    branches = [preds["one2many"], preds["one2one"]] if "one2many" in preds else [preds]
    return [branch[key] for branch in branches for key in ("boxes", "scores")]


def unprunable_layers(model: nn.Module) -> list[nn.Module]:
    """Modules whose output channels must stay as they are (see the module docstring for why)."""
    layers: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, Detect):
            for branch in ("cv2", "cv3", "one2one_cv2", "one2one_cv3"):
                heads = getattr(module, branch, None)
                if heads is not None:
                    layers.extend(head[-1] for head in heads)
            layers.append(module.dfl)
        elif isinstance(module, Attention):
            layers.extend((module.qkv, module.proj, module.pe))
    return layers


def check_outputs(original: nn.Module, pruned: nn.Module, x: torch.Tensor) -> None:
    """The pruned head must produce outputs of exactly the original's shapes (a failure is a bug, not bad input)."""
    with torch.no_grad():
        want = [t.shape for t in head_outputs(original, x)]
        got = [t.shape for t in head_outputs(pruned, x)]
    if want != got:
        raise RuntimeError(f"pruning changed the head's output shapes from {want} to {got}")
