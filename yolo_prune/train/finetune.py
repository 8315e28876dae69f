"""Fine-tune a pruned detector with Ultralytics' own trainer (EMA, augmentation, LR schedule, AMP on GPU,
`best.pt`/`last.pt`, multi-GPU DDP, native knowledge distillation), through the subclasses in `trainers`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from yolo_prune.checks import check_at_least, check_imgsz
from yolo_prune.data.datasets import check_model, check_split
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.load import task_of
from yolo_prune.train.device import check_device
from yolo_prune.train.trainers import (
    TRAINERS,
    KeepsPrunedModel,
    MaskedDetectionTrainer,
    PrunedDetectionTrainer,
    SparseDetectionTrainer,
)


@dataclass
class FinetuneConfig:
    """Training options; anything else Ultralytics accepts goes in `overrides` (checked against its schema)."""

    epochs: int = 10
    batch: int = 16
    imgsz: int = 640
    device: str | None = None  # None: Ultralytics' choice (the first GPU when there is one, else the CPU)
    workers: int = 2
    lr0: float | None = None
    distill: bool = False
    distill_weight: float | None = None
    patience: int = 0  # 0 disables early stopping: the epoch budget is the budget
    seed: int = 0  # Ultralytics' training seed (its default); benchmarks repeat rows with another one
    overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_at_least("--epochs", self.epochs, 1)
        check_at_least("--batch", self.batch, 1)
        check_imgsz(self.imgsz)
        check_at_least("--workers", self.workers, 0)
        if self.lr0 is not None and not self.lr0 > 0:
            raise ConfigError(f"--lr0 must be positive, got {self.lr0}")
        if not 0 <= self.seed < 2**32:  # NumPy's seed range, which Ultralytics seeds
            raise ConfigError(f"--seed must be from 0 to 2**32 - 1, got {self.seed}")
        if self.distill_weight is not None:
            if not self.distill:
                raise ConfigError("--distill-weight weighs the distillation loss: it needs --distill")
            if not self.distill_weight > 0:
                raise ConfigError(f"--distill-weight must be positive, got {self.distill_weight}")
        check_device(self.device)
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
        "seed": config.seed,
        "project": str(save_dir.parent.resolve()),
        "name": save_dir.name,
        "exist_ok": True,
        "pretrained": False,
        "plots": False,
        # AMP is a GPU feature; Ultralytics' AMP check returns False on the CPU, but would download a model to test
        # a GPU, so an explicit CPU device turns it off outright.
        "amp": config.device != "cpu",
        "verbose": False,
        # Ultralytics' default optimizer, "auto", ignores lr0: it picks AdamW at 0.002 * 5 / (4 + classes) for runs
        # under 10,000 iterations (every fine-tune measured here) and MuSGD at 0.01 beyond. A learning rate given is
        # AdamW's, auto's choice for fine-tunes (with Ultralytics' momentum 0.937 as beta1, where auto sets 0.9).
        **({"lr0": config.lr0, "optimizer": "AdamW"} if config.lr0 is not None else {}),
        # One optimizer step per batch. Ultralytics accumulates gradients up to a nominal batch of 64 (`nbs`), made
        # for training from scratch; a 30-epoch fine-tune on a few hundred images then takes about 100 steps, and a
        # pruned yolov8n-bccd recovered 1.4 points more with a step per batch (docs/benchmarks.md section 23).
        "nbs": config.batch,
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
    trainer_class: type[KeepsPrunedModel] | None = None,
) -> FinetuneResult:
    """Train `model` (pruned, kept as it is) on `data` with Ultralytics' trainer; results go to `save_dir`.

    With `config.distill`, `teacher` (a checkpoint path, typically the unpruned model) guides the training through
    Ultralytics' native distillation (`distill_model`, `dis`). `source` names the checkpoint `model` came from.
    `trainer_class` (default: the pruned-model trainer of the model's task, see `trainers.TRAINERS`) picks the
    training flavour: `SparseDetectionTrainer` for sparse training before pruning, `MaskedDetectionTrainer` to hold
    the zeros of an unstructured model (both for detection).
    """
    if config.distill and not teacher:
        raise ConfigError("--distill needs a teacher checkpoint")
    task = task_of(model)
    if trainer_class is None:
        trainer_class = TRAINERS[task]
    elif task != "detect" and issubclass(trainer_class, PrunedDetectionTrainer):
        what = {SparseDetectionTrainer: "sparse training", MaskedDetectionTrainer: "unstructured pruning"}
        raise ConfigError(f"{what.get(trainer_class, trainer_class.__name__)} is for detection models, not {task}")
    save_dir = Path(save_dir)
    trainer = trainer_class(overrides={**train_args(config, data, save_dir, teacher, source), "task": task})
    check_model(trainer.data, model)
    # Checkpoints loaded from Ultralytics come with every parameter frozen; the trainer would warn about each one and
    # unfreeze it anyway (it freezes the DFL itself).
    for p in model.parameters():
        p.requires_grad_(True)
    trainer.model = model
    return _run(trainer)


def resume(last: str | Path, *, trainer_class: type[KeepsPrunedModel] | None = None) -> FinetuneResult:
    """Continue an interrupted fine-tune from its `last.pt`, with the pruned module it holds (`trainer_class`
    default: the trainer of the task the run was started with)."""
    last = Path(last)
    if not last.is_file():
        raise ConfigError(f"nothing to resume: {last} not found")
    if trainer_class is None:
        import torch

        task = (torch.load(last, map_location="cpu", weights_only=False).get("train_args") or {}).get("task", "detect")
        trainer_class = TRAINERS.get(task, PrunedDetectionTrainer)
    trainer = trainer_class(overrides={"resume": str(last)})
    return _run(trainer)


def _run(trainer: KeepsPrunedModel) -> FinetuneResult:
    # The trainer's datasets, scanned before training: a split with nothing to learn from fails here in one line.
    check_split(trainer.data, "train", task=trainer.args.task, need_boxes=True)
    check_split(trainer.data, trainer.args.split, task=trainer.args.task)
    start = time.perf_counter()
    trainer.train()
    return FinetuneResult(
        save_dir=Path(trainer.save_dir),
        best=Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last),
        last=Path(trainer.last),
        epochs=trainer.epochs,
        seconds=time.perf_counter() - start,
    )
