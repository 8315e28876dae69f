"""The training loss of a model on fixed batches: the signal behind Taylor importance and the sensitivity scan.

`detection_loss` is the model's own Ultralytics loss: detection, or segmentation, pose or OBB for those models.
Ultralytics' `model.loss` reads its gains (`box`, `cls`, `dfl`, `pose`, `kobj`) from `model.args` as a namespace, while
checkpoints carry a plain dict (or nothing). `detection_loss` lends the model a namespace for the call and puts
everything back afterwards. BatchNorm stays in eval mode, so measuring never changes the model.

An end-to-end head (YOLO26) has two branches, a one-to-many one (read with NMS after it: what Ultralytics validates
and exports by default) and a one-to-one one (NMS-free: `export --end2end`); `model.end2end` says which the model
runs, and the exporter's `fuse()` removes the other (`cost.as_deployed`). Ultralytics' `E2ELoss` weighs them 0.8 /
0.2 when created and 0.1 / 0.9 at the end of training, neither of which is the branch that ships. `detection_loss`
measures the branch the model runs alone (`_on_the_deployed_branch`; docs/benchmarks.md section 25), so that the
scan ranks a group by what it costs the predictions that ship.
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
    model.criterion = _on_the_deployed_branch(model.init_criterion(), model)
    try:
        yield
    finally:
        if saved_args is None:
            del model.args
        else:
            model.args = saved_args
        model.criterion = None


def _on_the_deployed_branch(criterion: object, model: nn.Module) -> object:
    """The criterion of an end-to-end head with all its weight on the branch `model` runs (see the module's
    docstring): the one place this package sets Ultralytics' `E2ELoss` gains, whose schedule is otherwise the
    trainer's. Other criteria are returned as they are."""
    if getattr(criterion, "final_o2m", None) is not None:
        one2one = bool(getattr(model, "end2end", False))
        criterion.o2o = criterion.total if one2one else 0.0
        criterion.o2m = criterion.total - criterion.o2o
    return criterion


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
