"""What the pruner may change in an Ultralytics detector, and how its channels are traced.

Layers whose width the network cannot change are left out of torch-pruning's groups:

- the head's final convs: boxes, classes and the DFL, and a task head's mask coefficients and prototypes, keypoints
  or angles (their widths are the output format); YOLO26's one-to-one head branches likewise, while the rest of
  those branches is pruned with the one-to-many ones;
- attention (`qkv`, `proj`, `pe` of `Attention`, and of YOLO12's area attention `AAttn`): its reshape into heads ties
  the channel count to `num_heads` and the head dims, so the attention path keeps its width; the feed-forward hidden
  layer beside it is pruned as usual.

- any tensor that a block splits or chunks without a rewrite for it in `surgery` (YOLOv9's ADown chunks its input;
  a custom block may do the same): torch-pruning cannot map channel indices through such a split, so the convs that
  produce the tensor keep their width (`split_producers`), and everything else prunes as usual.

Tracing runs the model up to the head's raw maps (`head_outputs`), before decoding and post-processing.
`kept_layers` is the one list the pruner, the sensitivity scan and sparse training all ignore. `time_limit` bounds
torch-pruning's graph work, which can loop without end on a block it cannot follow.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn
from ultralytics.nn.modules.block import AAttn, Attention, Proto, Proto26
from ultralytics.nn.modules.conv import Conv
from ultralytics.nn.modules.head import Detect

from yolo_prune.errors import UnsupportedModelError
from yolo_prune.pruning.cost import conv_shapes, example_input

# The top-level blocks of every model Ultralytics ships (detect, segment, pose, OBB), after surgery
# (tests/pruning/test_architectures.py prunes them all). A model that holds other blocks and stalls torch-pruning is
# told which ones they are.
TESTED_BLOCKS = frozenset(
    "A2C2f ADown AConv Bottleneck C3 C3Ghost C3f Concat Conv ConvTranspose2d Detect GhostConv MaxPool2d OBB OBB26 Pose "
    "Pose26 SCDown SPP SPPELAN SPPF Segment Segment26 Sequential Upsample ZeroPad2d v10Detect".split()
)
GRAPH_SECONDS = 300  # one trial of yolov3-spp (62 M parameters) takes about 3 s here


def _tensors(value: object) -> list[torch.Tensor]:
    """The tensors in a head's raw prediction dict, in key order, without `feats` (the head's own inputs)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in sorted(value) if key != "feats" for t in _tensors(value[key])]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def head_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Run `model` and return the raw maps of its head: boxes and scores, and a task head's mask coefficients and
    prototypes, keypoints or angles (both branches of an end-to-end head).

    Tracing stops here, before decoding and YOLO26's top-k post-processing, which hold no prunable channels.
    """
    out = model(x)
    return _tensors(out[1] if isinstance(out, tuple) else out)


def trace_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """`head_outputs` for torch-pruning's trace, with the branches that only run in training included.

    YOLO26's `Proto26` computes a semantic-segmentation map (an auxiliary loss) only in training mode. Its own
    `training` flag decides, so it alone is switched, its BatchNorm statistics held; the rest of the model stays in
    eval mode, where YOLO26's one-to-one head still sees the features that training detaches from it.
    """
    protos = [m for m in model.modules() if isinstance(m, Proto26) and not m.training]
    norms = [m for p in protos for m in p.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0  # running statistics stay as they are
    for p in protos:
        p.train()
    try:
        return head_outputs(model, x)
    finally:
        for p in protos:
            p.eval()
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)


def _output_convs(head: Detect) -> list[nn.Module]:
    """The convs of a head whose output channels are its output format.

    They are the bare `nn.Conv2d` at the end of each branch (boxes, classes, mask coefficients, keypoints and their
    sigmas, angles; the DFL), as opposed to the hidden `Conv` blocks (conv + BN + activation) before them; plus the
    last conv of the mask prototypes (their count is the mask coefficients' count) and the semantic head's classes.
    Pose26's keypoint features feed a sigma branch that only runs in training, so they keep their width too.
    """
    wrapped = {m.conv for m in head.modules() if isinstance(m, Conv)}
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d) and m not in wrapped]
    proto = getattr(head, "proto", None)
    if isinstance(proto, Proto):
        convs.append(proto.cv3.conv)
    if getattr(head, "cv4_sigma", None) is not None:
        for branch in ("cv4", "one2one_cv4"):
            convs.extend(features[-1].conv for features in getattr(head, branch, None) or [])
    return convs


def unprunable_layers(model: nn.Module) -> list[nn.Module]:
    """Modules whose output channels must stay as they are (see the module docstring for why)."""
    layers: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, Detect):
            layers.extend(_output_convs(module))
        elif isinstance(module, (Attention, AAttn)):
            layers.extend((module.qkv, module.proj, module.pe))
    return layers


def check_outputs(original: nn.Module, pruned: nn.Module, x: torch.Tensor) -> None:
    """The pruned head must produce outputs of exactly the original's shapes (a failure is a bug, not bad input)."""
    with torch.no_grad():
        want = [t.shape for t in head_outputs(original, x)]
        got = [t.shape for t in head_outputs(pruned, x)]
    if want != got:
        raise RuntimeError(f"pruning changed the head's output shapes from {want} to {got}")


def split_producers(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    """The convs whose output reaches a `split`/`chunk` in `model`'s traced graph, through channel-wise ops only.

    The walk goes back from each split through BatchNorm, activations, pooling, element-wise ops, concatenations and
    depthwise convs (all channel-preserving, so they are kept too) to the first dense conv or linear layer on each
    path. Keeping these widths leaves the split's channel indices as they are.
    """
    graph = tp.DependencyGraph().build_dependency(model, x, forward_fn=trace_outputs)
    kept: dict[nn.Module, None] = {}
    seen = set()
    stack = [node for module, node in graph.module2node.items() if isinstance(module, tp.ops._SplitOp)]
    while stack:
        node = stack.pop()
        for parent in node.inputs:
            if parent in seen:
                continue
            seen.add(parent)
            module = parent.module
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                kept[module] = None
                if not (isinstance(module, nn.Conv2d) and module.groups == module.in_channels > 1):
                    continue  # a dense layer: the channels start here
            stack.append(parent)
    return list(kept)


def kept_layers(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    """Every module whose output channels stay: the output format, attention, and the producers of unmapped splits.

    Blocks are expanded to all their modules: torch-pruning's `get_all_groups` compares the convs themselves, so an
    Ultralytics `Conv` block (attention's `qkv`) in the list would not keep its conv (the pruner expands the list
    itself; the sensitivity scan did not, and hung in torch-pruning on attention).
    """
    kept: dict[nn.Module, None] = {}
    for layer in [*unprunable_layers(model), *split_producers(model, x)]:
        kept.update(dict.fromkeys(layer.modules()))
    return list(kept)


@contextlib.contextmanager
def time_limit(model: nn.Module, seconds: float | None = None) -> Iterator[None]:
    """Fail with a one-line `UnsupportedModelError` when the body runs longer than `seconds` (`GRAPH_SECONDS`).

    Uses SIGALRM, so it guards the main thread on Unix (the CLI); elsewhere the body runs unguarded.
    """
    seconds = GRAPH_SECONDS if seconds is None else seconds
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum, _frame):
        untested = sorted({type(m).__name__ for m in getattr(model, "model", [])} - TESTED_BLOCKS)
        blocks = f"blocks no tested model has: {', '.join(untested)}" if untested else "all its blocks are tested ones"
        raise UnsupportedModelError(
            f"torch-pruning's dependency graph did not finish within {seconds:g} s on this model ({blocks}); "
            "a block whose channels it cannot follow is the likely cause"
        )

    outer = signal.getitimer(signal.ITIMER_REAL)[0]  # a timer of the caller's (pytest-timeout, a script's alarm)
    if outer and outer < seconds:
        yield  # the caller's timer fires first anyway
        return
    previous = signal.signal(signal.SIGALRM, stop)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # give the caller's timer back what it had left
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3))


@dataclass
class Group:
    """One prunable dependency group: its root conv, the layers it touches, and its channel count."""

    name: str
    layers: list[str]
    channels: int
    macs_per_channel: int  # MACs removed per channel of this group (convs only, additive estimate)


def _group_macs_per_channel(DG, group, hw: dict[nn.Module, int]) -> int:
    macs = 0
    for dep, _ in group:
        m = dep.target.module
        if not isinstance(m, nn.Conv2d) or m not in hw:
            continue
        k = m.kernel_size[0] * m.kernel_size[1] * hw[m]
        if DG.is_out_channel_pruning_fn(dep.handler):
            macs += k * (m.in_channels // m.groups)
        elif m.groups == 1:
            macs += k * m.out_channels
    return macs


def build_groups(model: nn.Module, imgsz: int) -> tuple[tp.DependencyGraph, list[tuple[Group, object]]]:
    """Dependency graph of `model` (already made prunable) and its prunable groups with their full channel indices."""
    for p in model.parameters():
        p.requires_grad_(True)
    x = example_input(model, imgsz)
    modules = dict(model.named_modules())  # output H*W of every conv (spatial sizes do not change with pruning)
    hw = {modules[name]: math.prod(shape.out_hw) for name, shape in conv_shapes(model, imgsz).items()}
    names = {m: n for n, m in model.named_modules()}
    found = []
    with time_limit(model):
        DG = tp.DependencyGraph().build_dependency(model, x, forward_fn=trace_outputs)
        for group in DG.get_all_groups(ignored_layers=kept_layers(model, x), root_module_types=(nn.Conv2d,)):
            root = group[0].dep.target.module
            if root.out_channels < 2:
                continue
            layers = sorted({names[d.target.module] for d, _ in group if d.target.module in names})
            group_info = Group(names[root], layers, root.out_channels, _group_macs_per_channel(DG, group, hw))
            found.append((group_info, group))
    return DG, found
