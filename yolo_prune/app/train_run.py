"""`yolo-prune train`: train a model as it is (pruned or not) with the recipe of the fine-tuning steps."""

from __future__ import annotations

import logging
from pathlib import Path

from yolo_prune.app.folders import refuse_finished
from yolo_prune.atomic import write_json
from yolo_prune.data.datasets import check_model, check_split, resolve_dataset
from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.cost import measure
from yolo_prune.pruning.load import check_source, load_model, task_of
from yolo_prune.train.finetune import FinetuneConfig, finetune, resume
from yolo_prune.train.validate import validate

LOGGER = logging.getLogger("yolo_prune")


def run_train(source: str, data: str, train: FinetuneConfig, out_dir: str | Path, *, split: str = "val") -> dict:
    """Train `source` as it is (any width, pruned or not; a YAML starts from random weights) on `data`.

    The same trainer and recipe as the fine-tuning steps of a prune run: the control run of a benchmark (the unpruned
    model given the same epochs), or the training of a baseline. Writes `out_dir/model.pt` and `report.json`, and
    returns what report.json holds.
    """
    check_source(source)
    out = Path(out_dir)
    refuse_finished(out)
    dataset = resolve_dataset(data, splits=("train", split), chosen=split)
    # a YAML is built with the dataset's classes (and keypoints)
    model = load_model(source, names=dataset["names"], kpt_shape=dataset.get("kpt_shape"))
    check_model(dataset, model)
    check_split(dataset, "train", task=task_of(model), need_boxes=True)
    check_split(dataset, split, task=task_of(model))
    last = out / "train" / "weights" / "last.pt"
    LOGGER.info(f"training {source} for {train.epochs} epoch(s)")
    result = resume(last) if last.exists() else finetune(model, data, train, out / "train", source=str(source))
    trained = load_model(result.best)
    weights = save_checkpoint(trained, out / "model.pt", {"trained_from": str(source), "train": train.to_dict()})
    LOGGER.info(f"validating on '{split}'")
    metrics = validate(trained, data, split=split, imgsz=train.imgsz, batch=train.batch, device=train.device)
    report = {
        "model": str(source),
        "data": str(data),
        "train": train.to_dict(),
        "seconds": result.seconds,
        **measure(trained, train.imgsz).to_dict(),
        **metrics,
        "files": {"weights": str(weights), "train_dir": str(result.save_dir)},
    }
    write_json(out / "report.json", report)
    return report
