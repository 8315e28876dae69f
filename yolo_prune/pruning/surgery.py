"""Lossless rewrites that make Ultralytics blocks prunable by torch-pruning's dependency graph.

torch-pruning follows channels through `torch.cat`, but its index mapping through `chunk`/`split` of a single conv's
output breaks on Ultralytics' CSP blocks, which split the output of their first conv `cv1` into two halves that then
feed different consumers: C2f (and its subclasses C3k2, C2fCIB, C2fPSA), C2, C2PSA, PSA (YOLOv10), RepNCSPELAN4 and
ELAN1 (YOLOv9). The rewrites here replace that one conv with two convs, one per half, so every channel has a single,
traceable producer. The rewritten model computes exactly the same function (the weights are sliced, not re-learned).

All of these blocks take one of two shapes, and each shape is a stock Ultralytics block:

- a *chain*: `y = [a, b]`, each block of a chain applied to the last entry and appended, then `out(cat(y))`. That is
  C3f, which computes `y = [cv2(x), cv1(x)]` with two convs (`_as_c3f`);
- a *side branch*: one half passes through, the other goes through `m`, then `out(cat(...))`. That is C3, which
  computes `cv3(cat(m(cv1(x)), cv2(x)))` (`_as_c3`; the output conv's input channels are reordered when the block
  concatenates the pass-through half first).

Each rewrite is a named rule in `REWRITES`; `make_prunable()` applies them all and reports how many modules each
rule touched. Every replacement is a *stock* Ultralytics block assembled from the original's pieces.
Ultralytics pickles whole modules into checkpoints, so this is what lets a pruned checkpoint load in plain
Ultralytics, in any process, without yolo_prune installed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from ultralytics.nn.modules.block import C2, C2PSA, C3, PSA, C2f, C3f, PSABlock, RepNCSPELAN4
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


def _as_c3f(block: nn.Module, first: Conv, chain: nn.Module, out: Conv) -> nn.Module:
    """A chain block as C3f: `first`'s halves become C3f's `cv2` (a) and `cv1` (b), `chain` its `m`."""
    a, b = split_conv(first, (first.conv.out_channels // 2,) * 2)
    return _stock(C3f, block, cv1=b, cv2=a, cv3=out, m=chain)


def _as_c3(block: nn.Module, first: Conv, m: nn.Module, out: Conv, *, through_first: bool) -> nn.Module:
    """A side-branch block as C3: the half that goes through `m` becomes C3's `cv1`, the pass-through half its `cv2`.

    C3 concatenates (m(...), pass-through); a block that concatenates (pass-through, m(...)) gets its output conv's
    input channels swapped to match (`through_first`).
    """
    half = first.conv.out_channels // 2
    a, b = split_conv(first, (half, half))
    if not through_first:  # cat(m(a), b): a goes through m
        return _stock(C3, block, cv1=a, cv2=b, cv3=out, m=m)
    swapped = copy.deepcopy(out)
    order = torch.cat((torch.arange(half, 2 * half), torch.arange(0, half)))
    with torch.no_grad():
        swapped.conv.weight = nn.Parameter(out.conv.weight[:, order].clone())
    return _stock(C3, block, cv1=b, cv2=a, cv3=swapped, m=m)


def _rewrite_c2f(block: nn.Module) -> nn.Module | None:
    """C2f / C3k2 / C2fCIB / C2fPSA -> C3f.

    C2f runs `y = cv1(x).chunk(2)`, extends `y` with every block of `m` applied to the last entry, then `cv2(cat(y))`:
    a chain.
    """
    # Only blocks that really run C2f's chunked forward; C2fAttn (YOLO-World) has its own.
    if not isinstance(block, C2f) or type(block).forward is not C2f.forward:
        return None
    return _as_c3f(block, block.cv1, block.m, block.cv2)


def _rewrite_elan(block: nn.Module) -> nn.Module | None:
    """RepNCSPELAN4 / ELAN1 (YOLOv9) -> C3f.

    It runs `y = cv1(x).chunk(2)`, then appends `cv2(y[-1])` and `cv3(` of that `)`, then `cv4(cat(y))`: a chain of
    `cv2` and `cv3`.
    """
    if not isinstance(block, RepNCSPELAN4) or type(block).forward is not RepNCSPELAN4.forward:
        return None
    return _as_c3f(block, block.cv1, nn.ModuleList([block.cv2, block.cv3]), block.cv4)


def _rewrite_c2(block: nn.Module) -> nn.Module | None:
    """C2 (YOLOv8-P6's head) -> C3. It runs `a, b = cv1(x).chunk(2)` and `cv2(cat(m(a), b))`."""
    if type(block) is not C2:
        return None
    return _as_c3(block, block.cv1, block.m, block.cv2, through_first=False)


def _rewrite_c2psa(block: nn.Module) -> nn.Module | None:
    """C2PSA -> C3. It runs `a, b = cv1(x).split(2)` and `cv2(cat(a, m(b)))`."""
    if type(block) is not C2PSA:
        return None
    return _as_c3(block, block.cv1, block.m, block.cv2, through_first=True)


def _rewrite_psa(block: nn.Module) -> nn.Module | None:
    """PSA (YOLOv10) -> C3 around a stock PSABlock.

    PSA runs `a, b = cv1(x).split(2)`, `b = b + attn(b)`, `b = b + ffn(b)`, then `cv2(cat(a, b))`: the side branch is
    exactly what a PSABlock with its shortcut computes from the same `attn` and `ffn`.
    """
    if type(block) is not PSA:
        return None
    inner = _stock(PSABlock, block, attn=block.attn, ffn=block.ffn)
    inner.add = True
    del inner.yolo_prune_source  # only top-level replacements name what they replaced
    return _as_c3(block, block.cv1, inner, block.cv2, through_first=True)


# Rule name -> function(module) returning a replacement module, or None when the rule does not apply.
REWRITES: dict[str, Callable[[nn.Module], nn.Module | None]] = {
    "c2f_to_c3f": _rewrite_c2f,
    "elan_to_c3f": _rewrite_elan,
    "c2_to_c3": _rewrite_c2,
    "c2psa_to_c3": _rewrite_c2psa,
    "psa_to_c3": _rewrite_psa,
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
