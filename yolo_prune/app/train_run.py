"""`yolo-prune train`: train a model as it is (pruned or not) with the recipe of the fine-tuning steps."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from yolo_prune.app.folders import refuse_finished
from yolo_prune.atomic import write_json
from yolo_prune.checks import check_model_file
from yolo_prune.data.datasets import check_model, check_split, resolve_dataset
from yolo_prune.errors import ConfigError, ModelLoadError
from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.cost import measure
from yolo_prune.pruning.load import check_source, load_model, task_of
from yolo_prune.train.finetune import FinetuneConfig, finetune, resume
from yolo_prune.train.validate import validate

LOGGER = logging.getLogger("yolo_prune")


def run_train(
    source: str,
    data: str,
    train: FinetuneConfig,
    out_dir: str | Path,
    *,
    split: str = "val",
    teacher: str | Path | None = None,
) -> dict:
    """Train `source` as it is (any width, pruned or not; a YAML starts from random weights) on `data`.

    The same trainer and recipe as the fine-tuning steps of a prune run: the control run of a benchmark (the unpruned
    model given the same epochs), the training of a baseline, or the fine-tune of a model pruned without one
    (`prune --epochs 0`), which `teacher` (a trained checkpoint of the same classes, e.g. the unpruned model) may
    distill into (`train.distill` follows it). Writes `out_dir/model.pt` and `report.json`, and returns what
    report.json holds.
    """
    if train.distill and teacher is None:
        raise ConfigError("distillation needs a --teacher checkpoint")
    check_source(source)
    if teacher is not None:
        train = replace(train, distill=True)
        try:
            check_model_file(teacher)
        except ModelLoadError as e:
            raise ConfigError(f"--teacher: {e}") from None
    out = Path(out_dir)
    refuse_finished(out)
    dataset = resolve_dataset(data, splits=("train", split), chosen=split)
    # a YAML is built with the dataset's classes (and keypoints)
    model = load_model(source, names=dataset["names"], kpt_shape=dataset.get("kpt_shape"))
    check_model(dataset, model)
    if teacher is not None:
        taught = load_model(teacher).names
        if taught != model.names:
            raise ConfigError(f"--teacher {teacher} has the classes {taught}, {source} has {model.names}")
    check_split(dataset, "train", task=task_of(model), need_boxes=True)
    check_split(dataset, split, task=task_of(model))
    last = out / "train" / "weights" / "last.pt"
    LOGGER.info(f"training {source} for {train.epochs} epoch(s)")
    if last.exists():
        result = resume(last)
    else:
        taught_by = None if teacher is None else str(teacher)
        result = finetune(model, data, train, out / "train", teacher=taught_by, source=str(source))
    trained = load_model(result.best)
    weights = save_checkpoint(trained, out / "model.pt", {"trained_from": str(source), "train": train.to_dict()})
    LOGGER.info(f"validating on '{split}'")
    metrics = validate(trained, data, split=split, imgsz=train.imgsz, batch=train.batch, device=train.device)
    report = {
        "model": str(source),
        "data": str(data),
        "train": train.to_dict(),
        "teacher": str(teacher) if teacher is not None else None,
        "seconds": result.seconds,
        **measure(trained, train.imgsz).to_dict(),
        **metrics,
        "files": {"weights": str(weights), "train_dir": str(result.save_dir)},
    }
    write_json(out / "report.json", report)
    return report
