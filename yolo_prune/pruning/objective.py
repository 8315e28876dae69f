"""The training loss of a model on fixed batches: the signal behind Taylor importance and the sensitivity scan.

`detection_loss` is the model's own Ultralytics loss: detection, or segmentation, pose or OBB for those models.
Ultralytics' `model.loss` reads its gains (`box`, `cls`, `dfl`, `pose`, `kobj`) from `model.args` as a namespace, while
checkpoints carry a plain dict (or nothing). `detection_loss` lends the model a namespace for the call and puts
everything back afterwards. BatchNorm stays in eval mode, so measuring never changes the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn


@contextlib.contextmanager
def _loss_ready(model: nn.Module) -> Iterator[None]:
    from ultralytics.cfg import get_cfg

    saved_args = getattr(model, "args", None)
    gains = {k: v for k, v in dict(saved_args or {}).items() if k in ("box", "cls", "dfl", "pose", "kobj")}
    model.args = get_cfg(overrides=gains)
    model.criterion = None
    try:
        yield
    finally:
        if saved_args is None:
            del model.args
        else:
            model.args = saved_args
        model.criterion = None


def prepare(batch: dict) -> dict:
    """An Ultralytics dataloader batch with its uint8 images scaled to [0, 1], as the trainer does."""
    batch = dict(batch)
    if batch["img"].dtype == torch.uint8:
        batch["img"] = batch["img"].float() / 255
    return batch


def detection_loss(model: nn.Module, batches: Iterable[dict], *, backward: bool = False) -> float:
    """Sum of the detection loss over `batches`; with `backward`, its gradients are added to every parameter's `.grad`
    (frozen parameters such as the DFL conv included, then frozen again)."""
    model.eval()
    frozen = [p for p in model.parameters() if not p.requires_grad] if backward else []
    for p in frozen:
        p.requires_grad_(True)
    total = 0.0
    try:
        with _loss_ready(model), torch.set_grad_enabled(backward):
            for batch in batches:
                loss, _ = model.loss(prepare(batch))
                loss = loss.sum()
                if backward:
                    loss.backward()
                total += float(loss.detach())
    finally:
        for p in frozen:
            p.requires_grad_(False)
    return total
