"""Ultralytics' task trainers (detect, segment, pose, OBB), subclassed at their documented hooks for pruned models.

The one thing the stock trainers get wrong for a pruned model is the model itself: `Model.train()` rebuilds the
network from its YAML (full widths) and copies over only the tensors whose shapes still match, so the pruned weights
are silently dropped. The trainers here are handed the pruned module directly (`BaseTrainer.setup_model` keeps a
module it is given) and override the `get_model` hook (`KeepsPrunedModel`) so that resuming from `last.pt` also keeps
the pruned module instead of rebuilding it. `SparseDetectionTrainer` and `MaskedDetectionTrainer` add one training
flavour each, for detection. They live in an importable module so that
Ultralytics' multi-GPU launcher can rebuild them in its worker processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer

from yolo_prune.pruning.cost import example_input
from yolo_prune.pruning.structure import kept_layers, trace_outputs
from yolo_prune.pruning.unstructured import prunable_convs


class KeepsPrunedModel:
    """Mixin for an Ultralytics trainer: train the (pruned) module it is given and never rebuild it from the YAML."""

    def get_model(self, cfg=None, weights=None, verbose: bool = True):
        # On resume, Ultralytics passes the module stored in last.pt as `weights`: that *is* the pruned network.
        if isinstance(weights, nn.Module):
            model = weights.float()
            for p in model.parameters():
                p.requires_grad_(True)
            return model
        return super().get_model(cfg=cfg, weights=weights, verbose=verbose)

    def save_model(self):
        # Ultralytics writes last.pt and best.pt in place, so a process killed during a save leaves a truncated
        # last.pt that `--resume` cannot read. Let it write to temporary names, then rename them into place (atomic
        # on one filesystem): an interrupted run always keeps a readable last.pt from the previous epoch.
        last, best = Path(self.last), Path(self.best)
        self.last, self.best = last.with_name(f".{last.name}.partial"), best.with_name(f".{best.name}.partial")
        try:
            saved = super().save_model()
        finally:
            partial_last, partial_best = self.last, self.best
            self.last, self.best = last, best
        for partial, final in ((partial_last, last), (partial_best, best)):
            if partial.exists():
                os.replace(partial, final)
        return saved


class PrunedDetectionTrainer(KeepsPrunedModel, DetectionTrainer):
    """Ultralytics' `DetectionTrainer` for a pruned detector."""


class PrunedSegmentationTrainer(KeepsPrunedModel, SegmentationTrainer):
    """Ultralytics' `SegmentationTrainer` for a pruned segmentation model."""


class PrunedPoseTrainer(KeepsPrunedModel, PoseTrainer):
    """Ultralytics' `PoseTrainer` for a pruned pose model."""


class PrunedOBBTrainer(KeepsPrunedModel, OBBTrainer):
    """Ultralytics' `OBBTrainer` for a pruned oriented-box model."""


# Ultralytics task name -> the trainer that fine-tunes a pruned model of that task.
TRAINERS: dict[str, type[KeepsPrunedModel]] = {
    "detect": PrunedDetectionTrainer,
    "segment": PrunedSegmentationTrainer,
    "pose": PrunedPoseTrainer,
    "obb": PrunedOBBTrainer,
}


class SparseDetectionTrainer(PrunedDetectionTrainer):
    """Sparse training before pruning: group-lasso on BatchNorm scales over torch-pruning's dependency groups.

    Each optimizer step first adds the regulariser's gradient (torch-pruning's `BNScalePruner.regularize`), pushing
    whole channel groups that the pruner would remove together towards zero, so that removing them later costs less.
    """

    sparsity_reg = 5e-4  # regularisation strength; a class attribute so DDP workers (rebuilt from the class) see it

    def _setup_train(self):
        super()._setup_train()
        import torch_pruning as tp
        from ultralytics.utils.torch_utils import unwrap_model

        model = unwrap_model(self.model)
        self.regularizer = tp.pruner.BNScalePruner(
            model,
            example_input(model, 64),
            importance=tp.importance.BNScaleImportance(),
            reg=self.sparsity_reg,
            group_lasso=True,
            ignored_layers=kept_layers(model, example_input(model, 64)),
            forward_fn=trace_outputs,
        )
        model.train()  # tracing leaves the model in eval mode

    def optimizer_step(self):
        from ultralytics.utils.torch_utils import unwrap_model

        # Gradients are still scaled by the AMP scaler here (Ultralytics unscales inside optimizer_step).
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else 1.0
        self.regularizer.regularize(unwrap_model(self.model), reg=self.sparsity_reg * scale)
        super().optimizer_step()


class MaskedDetectionTrainer(PrunedDetectionTrainer):
    """Fine-tunes a sparsified model while holding its zeros: after every optimizer step the weights that were zero
    at the start are zeroed again, in the model and in its EMA. The masks are read off the model itself when
    training starts, so DDP workers (rebuilt from the class) find them too."""

    def _setup_train(self):
        super()._setup_train()
        from ultralytics.utils.torch_utils import unwrap_model

        self.zero_masks = {n: m.weight == 0 for n, m in prunable_convs(unwrap_model(self.model))}

    @torch.no_grad()
    def _apply_masks(self, model: nn.Module) -> None:
        for name, m in prunable_convs(model):
            mask = self.zero_masks.get(name)
            if mask is not None:
                m.weight.masked_fill_(mask.to(m.weight.device), 0.0)

    def optimizer_step(self):
        super().optimizer_step()
        from ultralytics.utils.torch_utils import unwrap_model

        self._apply_masks(unwrap_model(self.model))
        if self.ema is not None:
            self._apply_masks(self.ema.ema)
