"""Lossless rewrites that make Ultralytics blocks prunable by torch-pruning's dependency graph.

torch-pruning follows channels through `torch.cat`, but its index mapping through `chunk`/`split` of a single conv's
output breaks on Ultralytics' CSP blocks: C2f (and its subclasses C3k2, C2fCIB, C2fPSA) and C2PSA split the output of
`cv1` into two halves that then feed different consumers. The rewrites here replace that one conv with two convs, one
per half, so every channel has a single, traceable producer. The rewritten model computes exactly the same function
(the weights are sliced, not re-learned).

Each rewrite is a named rule in `REWRITES`; `make_prunable()` applies them all and reports how many modules each
rule touched. Every replacement is a *stock* Ultralytics block (C3f, C3) assembled from the original's pieces.
Ultralytics pickles whole modules into checkpoints, so this is what lets a pruned checkpoint load in plain
Ultralytics, in any process, without yolo_prune installed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from ultralytics.nn.modules.block import C2PSA, C3, C2f, C3f
from ultralytics.nn.modules.conv import Conv

# Attributes that Ultralytics' `parse_model` attaches to every top-level layer and that `BaseModel._predict_once`
# reads (`f`: input layer indices, `i`: layer index, `type`, `np`: parameter count).
_LAYER_ATTRS = ("f", "i", "type", "np")


def split_conv(conv: Conv, sizes: tuple[int, ...]) -> list[Conv]:
    """Split an Ultralytics `Conv` (conv + BN + act, or a fused conv with bias) along its output channels.

    The pieces together compute exactly what `conv` computes, each producing its slice of the output channels.
    """
    pieces = []
    start = 0
    for size in sizes:
        piece = copy.deepcopy(conv)
        end = start + size
        with torch.no_grad():
            piece.conv.weight = nn.Parameter(conv.conv.weight[start:end].clone())
            if conv.conv.bias is not None:
                piece.conv.bias = nn.Parameter(conv.conv.bias[start:end].clone())
            piece.conv.out_channels = size
            bn = getattr(conv, "bn", None)
            if bn is not None:
                piece.bn.weight = nn.Parameter(bn.weight[start:end].clone())
                piece.bn.bias = nn.Parameter(bn.bias[start:end].clone())
                piece.bn.running_mean = bn.running_mean[start:end].clone()
                piece.bn.running_var = bn.running_var[start:end].clone()
                piece.bn.num_features = size
        pieces.append(piece)
        start = end
    if start != conv.conv.out_channels:
        raise ValueError(f"split sizes {sizes} do not add up to {conv.conv.out_channels} channels")
    return pieces


def _copy_layer_attrs(src: nn.Module, dst: nn.Module) -> nn.Module:
    for name in _LAYER_ATTRS:
        if hasattr(src, name):
            setattr(dst, name, getattr(src, name))
    return dst


def _stock(cls: type[nn.Module], source: nn.Module, **parts: nn.Module) -> nn.Module:
    """An instance of the stock Ultralytics block `cls` assembled from existing parts (no weights are created)."""
    block = cls.__new__(cls)
    nn.Module.__init__(block)
    for name, part in parts.items():
        setattr(block, name, part)
    block.yolo_prune_source = type(source).__name__  # what it replaced, for reports
    return block


def _rewrite_c2f(block: nn.Module) -> nn.Module | None:
    """C2f / C3k2 / C2fCIB / C2fPSA -> C3f.

    C2f runs `y = cv1(x).chunk(2)`, extends `y` with every block of `m` applied to the last entry, then
    `cv2(cat(y))`. Ultralytics' own C3f computes `y = [cv2(x), cv1(x)]` and then the same, with two separate convs in
    place of the chunked one; with `cv1`'s two halves as C3f's `cv2` and `cv1`, the function is identical.
    """
    # Only blocks that really run C2f's chunked forward; C2fAttn (YOLO-World) has its own.
    if not isinstance(block, C2f) or type(block).forward is not C2f.forward:
        return None
    first, second = split_conv(block.cv1, (block.c, block.c))
    return _stock(C3f, block, cv1=second, cv2=first, cv3=block.cv2, m=block.m)


def _rewrite_c2psa(block: nn.Module) -> nn.Module | None:
    """C2PSA -> C3.

    C2PSA runs `a, b = cv1(x).split(2)` and `cv2(cat(a, m(b)))`. Ultralytics' C3 computes `cv3(cat(m(cv1(x)), cv2(x)))`:
    with `cv1`'s halves as C3's `cv2` (a) and `cv1` (b), and `cv2`'s input channels swapped to the order (m(b), a),
    the function is identical.
    """
    if type(block) is not C2PSA:
        return None
    a, b = split_conv(block.cv1, (block.c, block.c))
    out = copy.deepcopy(block.cv2)
    c = block.c
    order = torch.cat((torch.arange(c, 2 * c), torch.arange(0, c)))
    with torch.no_grad():
        out.conv.weight = nn.Parameter(block.cv2.conv.weight[:, order].clone())
    return _stock(C3, block, cv1=b, cv2=a, cv3=out, m=block.m)


# Rule name -> function(module) returning a replacement module, or None when the rule does not apply.
REWRITES: dict[str, Callable[[nn.Module], nn.Module | None]] = {
    "c2f_to_c3f": _rewrite_c2f,
    "c2psa_to_c3": _rewrite_c2psa,
}


@dataclass
class SurgeryResult:
    """How many modules each rule rewrote."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def make_prunable(model: nn.Module) -> SurgeryResult:
    """Apply every rule of `REWRITES` to `model` in place (recursively) and return what was rewritten.

    Children are rewritten before their parents are visited, so nested blocks (a C3k inside a C3k2) are handled too.
    Already-rewritten models are left unchanged, so calling this twice is harmless.
    """
    counts = {name: 0 for name in REWRITES}

    def visit(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            visit(child)
            for rule, rewrite in REWRITES.items():
                replacement = rewrite(child)
                if replacement is not None:
                    setattr(parent, name, _copy_layer_attrs(child, replacement))
                    counts[rule] += 1
                    break

    visit(model)
    return SurgeryResult(counts)
