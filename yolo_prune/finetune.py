"""Fine-tune a pruned detector with Ultralytics' own `DetectionTrainer` (EMA, augmentation, LR schedule, AMP on GPU,
`best.pt`/`last.pt`, multi-GPU DDP, native knowledge distillation).

The one thing the stock trainer gets wrong for a pruned model is the model itself: `Model.train()` rebuilds the
network from its YAML (full widths) and copies over only the tensors whose shapes still match, so the pruned weights
are silently dropped. `PrunedDetectionTrainer` is handed the pruned module directly (`BaseTrainer.setup_model` keeps
a module it is given) and overrides the documented `get_model` hook so that resuming from `last.pt` also keeps the
pruned module instead of rebuilding it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn
from ultralytics.models.yolo.detect import DetectionTrainer

from yolo_prune.datasets import check_classes
from yolo_prune.errors import ConfigError

LOGGER = logging.getLogger("yolo_prune")


class PrunedDetectionTrainer(DetectionTrainer):
    """A `DetectionTrainer` that trains the (pruned) module it is given and never rebuilds it from the YAML."""

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

        from yolo_prune.cost import example_input
        from yolo_prune.prune import head_outputs, unprunable_layers

        model = unwrap_model(self.model)
        self.regularizer = tp.pruner.BNScalePruner(
            model,
            example_input(model, 64),
            importance=tp.importance.BNScaleImportance(),
            reg=self.sparsity_reg,
            group_lasso=True,
            ignored_layers=unprunable_layers(model),
            forward_fn=head_outputs,
        )
        model.train()  # tracing leaves the model in eval mode

    def optimizer_step(self):
        from ultralytics.utils.torch_utils import unwrap_model

        # Gradients are still scaled by the AMP scaler here (Ultralytics unscales inside optimizer_step).
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else 1.0
        self.regularizer.regularize(unwrap_model(self.model), reg=self.sparsity_reg * scale)
        super().optimizer_step()


@dataclass
class FinetuneConfig:
    """Training options; anything else Ultralytics accepts goes in `overrides` (checked against its schema)."""

    epochs: int = 10
    batch: int = 16
    imgsz: int = 640
    device: str = "cpu"
    workers: int = 2
    lr0: float | None = None
    distill: bool = False
    distill_weight: float | None = None
    patience: int = 0  # 0 disables early stopping: the epoch budget is the budget
    overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch < 1:
            raise ConfigError(f"--batch must be at least 1, got {self.batch}")
        if self.distill_weight is not None and self.distill_weight <= 0:
            raise ConfigError(f"--distill-weight must be positive, got {self.distill_weight}")
        from ultralytics.cfg import DEFAULT_CFG_DICT

        unknown = sorted(set(self.overrides) - set(DEFAULT_CFG_DICT))
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FinetuneResult:
    """Where Ultralytics wrote the run, and how long it took."""

    save_dir: Path
    best: Path
    last: Path
    epochs: int
    seconds: float

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def train_args(config: FinetuneConfig, data: str, save_dir: Path, teacher: str | None, source: str) -> dict:
    """Ultralytics train arguments for `config`, writing into `save_dir`."""
    args = {
        "model": source,  # recorded in the run's args; the module itself is handed to the trainer
        "data": str(data),
        "epochs": config.epochs,
        "batch": config.batch,
        "imgsz": config.imgsz,
        "device": config.device,
        "workers": config.workers,
        "patience": config.patience,
        "project": str(save_dir.parent.resolve()),
        "name": save_dir.name,
        "exist_ok": True,
        "pretrained": False,
        "plots": False,
        "amp": config.device != "cpu",  # AMP is a GPU feature; its check downloads a model
        "verbose": False,
        **({"lr0": config.lr0} if config.lr0 is not None else {}),
        **config.overrides,
    }
    if config.distill:
        args["distill_model"] = teacher
        if config.distill_weight is not None:
            args["dis"] = config.distill_weight
    return args


def finetune(
    model: nn.Module,
    data: str,
    config: FinetuneConfig,
    save_dir: str | Path,
    *,
    teacher: str | None = None,
    source: str = "pruned.pt",
    trainer_class: type[PrunedDetectionTrainer] = PrunedDetectionTrainer,
) -> FinetuneResult:
    """Train `model` (pruned, kept as it is) on `data` with Ultralytics' trainer; results go to `save_dir`.

    With `config.distill`, `teacher` (a checkpoint path, typically the unpruned model) guides the training through
    Ultralytics' native distillation (`distill_model`, `dis`). `source` names the checkpoint `model` came from.
    `trainer_class` picks the training flavour: `SparseDetectionTrainer` for sparse training before pruning,
    `yolo_prune.unstructured.MaskedDetectionTrainer` to hold the zeros of an unstructured model.
    """
    if config.distill and not teacher:
        raise ConfigError("--distill needs a teacher checkpoint")
    save_dir = Path(save_dir)
    trainer = trainer_class(overrides=train_args(config, data, save_dir, teacher, source))
    check_classes(trainer.data, model.names)
    # Checkpoints loaded from Ultralytics come with every parameter frozen; the trainer would warn about each one and
    # unfreeze it anyway (it freezes the DFL itself).
    for p in model.parameters():
        p.requires_grad_(True)
    trainer.model = model
    return _run(trainer)


def resume(last: str | Path, *, trainer_class: type[PrunedDetectionTrainer] = PrunedDetectionTrainer) -> FinetuneResult:
    """Continue an interrupted fine-tune from its `last.pt`, with the pruned module it holds."""
    last = Path(last)
    if not last.is_file():
        raise ConfigError(f"nothing to resume: {last} not found")
    trainer = trainer_class(overrides={"resume": str(last)})
    return _run(trainer)


def _run(trainer: DetectionTrainer) -> FinetuneResult:
    start = time.perf_counter()
    trainer.train()
    return FinetuneResult(
        save_dir=Path(trainer.save_dir),
        best=Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last),
        last=Path(trainer.last),
        epochs=trainer.epochs,
        seconds=time.perf_counter() - start,
    )
