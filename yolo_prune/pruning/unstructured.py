"""Unstructured (weight-level) pruning, kept as an honest comparison: zeros are not speed.

`torch.nn.utils.prune.global_unstructured` with L1 magnitude zeroes the smallest conv weights across the whole
network, then the zeros are made permanent. Every channel stays, so MACs and dense-kernel latency are unchanged; what
zeros do buy is a smaller file after standard compression. Fine-tuning holds the zeros with
`yolo_prune.train.trainers.MaskedDetectionTrainer`, which reads the convs to hold from `prunable_convs`.
"""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

from torch import nn
from torch.nn.utils import prune as torch_prune

from yolo_prune.checks import check_fraction

PLAIN_SENTENCE = (
    "Unstructured pruning only zeroes weights: every channel stays, so MACs and dense latency do not change; "
    "zeros shrink the compressed file, not the compute."
)


def prunable_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    # The DFL conv holds fixed (non-learned) weights: zeroing them would break box decoding.
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and ".dfl" not in n]


def sparsify(model: nn.Module, amount: float) -> nn.Module:
    """A copy of `model` with the `amount` smallest-magnitude conv weights (global L1 ranking) set to zero."""
    check_fraction("--unstructured", amount)
    work = copy.deepcopy(model)
    convs = prunable_convs(work)
    torch_prune.global_unstructured(
        [(m, "weight") for _, m in convs], pruning_method=torch_prune.L1Unstructured, amount=amount
    )
    for _, m in convs:
        torch_prune.remove(m, "weight")  # make permanent: a plain weight tensor with zeros in it
    return work


def sparsity(model: nn.Module) -> dict:
    """Zero fraction of every conv weight and overall (measured on the tensors, independent of any report)."""
    layers = {}
    zeros = total = 0
    for name, m in prunable_convs(model):
        z = int((m.weight == 0).sum())
        layers[name] = z / m.weight.numel()
        zeros += z
        total += m.weight.numel()
    return {"overall": zeros / total, "layers": layers}


def gzip_size(path: str | Path) -> int:
    """Size of the file after gzip (level 6): what zeros buy on disk or over the network."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=6))
