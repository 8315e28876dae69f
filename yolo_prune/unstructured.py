"""Unstructured (weight-level) pruning, kept as an honest comparison: zeros are not speed.

`torch.nn.utils.prune.global_unstructured` with L1 magnitude zeroes the smallest conv weights across the whole
network, then the zeros are made permanent. Every channel stays, so MACs and dense-kernel latency are unchanged; what
zeros do buy is a smaller file after standard compression. Fine-tuning holds the zeros with `MaskedDetectionTrainer`.
"""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from yolo_prune.errors import ConfigError
from yolo_prune.finetune import PrunedDetectionTrainer

PLAIN_SENTENCE = (
    "Unstructured pruning only zeroes weights: every channel stays, so MACs and dense latency do not change; "
    "zeros shrink the compressed file, not the compute."
)


def _prunable_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    # The DFL conv holds fixed (non-learned) weights: zeroing them would break box decoding.
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and ".dfl" not in n]


def sparsify(model: nn.Module, amount: float) -> nn.Module:
    """A copy of `model` with the `amount` smallest-magnitude conv weights (global L1 ranking) set to zero."""
    if not 0.0 < amount < 1.0:
        raise ConfigError(f"--unstructured must be between 0 and 1 (exclusive), got {amount}")
    work = copy.deepcopy(model)
    convs = _prunable_convs(work)
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
    for name, m in _prunable_convs(model):
        z = int((m.weight == 0).sum())
        layers[name] = z / m.weight.numel()
        zeros += z
        total += m.weight.numel()
    return {"overall": zeros / total, "layers": layers}


def gzip_size(path: str | Path) -> int:
    """Size of the file after gzip (level 6): what zeros buy on disk or over the network."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=6))


class MaskedDetectionTrainer(PrunedDetectionTrainer):
    """Fine-tunes a sparsified model while holding its zeros: after every optimizer step the weights that were zero
    at the start are zeroed again, in the model and in its EMA. The masks are read off the model itself when
    training starts, so DDP workers (rebuilt from the class) find them too."""

    def _setup_train(self):
        super()._setup_train()
        from ultralytics.utils.torch_utils import unwrap_model

        self.zero_masks = {n: m.weight == 0 for n, m in _prunable_convs(unwrap_model(self.model))}

    @torch.no_grad()
    def _apply_masks(self, model: nn.Module) -> None:
        for name, m in _prunable_convs(model):
            mask = self.zero_masks.get(name)
            if mask is not None:
                m.weight.masked_fill_(mask.to(m.weight.device), 0.0)

    def optimizer_step(self):
        super().optimizer_step()
        from ultralytics.utils.torch_utils import unwrap_model

        self._apply_masks(unwrap_model(self.model))
        if self.ema is not None:
            self._apply_masks(self.ema.ema)
