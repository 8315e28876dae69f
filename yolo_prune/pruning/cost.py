"""What a model costs: MACs at an input size, parameters, and the width of every conv.

MACs are counted by torch-pruning's op counter (multiply-accumulates, one per multiply-add; Ultralytics' "GFLOPs"
are twice this number).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

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


def as_deployed(model: nn.Module) -> nn.Module:
    """`model` as the exporter runs it. An end-to-end head (YOLO26's) has two branches, and the model runs one of
    them: the one-to-many branch with NMS after it (Ultralytics' default), or the one-to-one branch when `end2end` is
    set (`export --end2end`). The exporter calls the head's `fuse()`, which removes the other, so on the device its
    convs cost nothing (yolo26n at 384: 8% of the MACs of both). Costs are counted on this, so that a MACs target,
    the sensitivity allocation's shares and the latency model see the network that ships. Returns `model` itself
    when there is nothing to remove, else a fused copy (`model` is not modified)."""
    if not any(_has_both_branches(m) for m in model.modules()):
        return model
    work = copy.deepcopy(model)
    for head in [m for m in work.modules() if _has_both_branches(m)]:
        head.fuse()  # Ultralytics' own: drops the branch the model does not run
    return work


def _has_both_branches(m: nn.Module) -> bool:
    """An Ultralytics head with a one-to-one and a one-to-many branch (its `fuse()` keeps the one the model runs)."""
    return getattr(m, "one2one_cv2", None) is not None and getattr(m, "cv2", None) is not None


def measure(model: nn.Module, imgsz: int) -> ModelCost:
    """Count MACs and parameters of `model` for one `imgsz` x `imgsz` image, as exported (`as_deployed`)."""
    deployed = as_deployed(model)
    macs, params = tp.utils.count_ops_and_params(deployed, example_input(deployed, imgsz))
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


@dataclass(frozen=True)
class ConvShape:
    """One conv as the runtime sees it: channels, kernel, stride, padding, groups, input size, SiLU after it."""

    cin: int
    cout: int
    k: int
    stride: int
    pad: int
    groups: int
    dilation: int
    h: int
    w: int
    act: bool

    @property
    def key(self) -> str:
        """A stable text key (the timers' cache keys)."""
        return "x".join(str(int(v)) for v in asdict(self).values())

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width."""
        span = self.dilation * (self.k - 1) + 1
        return (self.h + 2 * self.pad - span) // self.stride + 1, (self.w + 2 * self.pad - span) // self.stride + 1

    @property
    def macs(self) -> int:
        ho, wo = self.out_hw
        return self.cin // self.groups * self.cout * self.k * self.k * ho * wo

    def with_widths(self, cin: int, cout: int) -> ConvShape:
        groups = cin if self.groups > 1 else 1  # depthwise stays depthwise
        return ConvShape(cin, cout, self.k, self.stride, self.pad, groups, self.dilation, self.h, self.w, self.act)


def _square(v) -> int:
    return int(v[0]) if isinstance(v, tuple) else int(v)


def conv_shapes(model: nn.Module, imgsz: int) -> dict[str, ConvShape]:
    """Every conv of `model` by module name, with its input size for one `imgsz` image.

    A conv counts as followed by SiLU when it is the `conv` of an Ultralytics `Conv` block whose `act` is SiLU (the
    exporter writes that pair as Conv, Sigmoid, Mul and onnxruntime fuses it). Only the convs the exported model runs
    are listed (`as_deployed`): the head branch the model does not run costs nothing there.
    """
    model = as_deployed(model)
    modules = dict(model.named_modules())
    shapes: dict[str, ConvShape] = {}
    hooks = []
    for name, m in modules.items():
        if not isinstance(m, nn.Conv2d):
            continue
        parent = modules.get(name.rpartition(".")[0])
        act = getattr(parent, "conv", None) is m and isinstance(getattr(parent, "act", None), nn.SiLU)

        def hook(mod, inputs, _out, name=name, act=act):
            x = inputs[0]
            shapes[name] = ConvShape(
                mod.in_channels,
                mod.out_channels,
                _square(mod.kernel_size),
                _square(mod.stride),
                _square(mod.padding) if not isinstance(mod.padding, str) else _square(mod.kernel_size) // 2,
                mod.groups,
                _square(mod.dilation),
                int(x.shape[2]),
                int(x.shape[3]),
                act,
            )

        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(example_input(model, imgsz))
    finally:
        for h in hooks:
            h.remove()
    return shapes
