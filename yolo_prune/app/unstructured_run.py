"""`yolo-prune prune --unstructured`: the honest comparison. Zero weights, fine-tune holding the zeros, and report
what that buys: sparsity, MACs (unchanged), onnxruntime latency (unchanged) and gzip-compressed size."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from yolo_prune.app.folders import default_run_dir, refuse_finished
from yolo_prune.atomic import write_json
from yolo_prune.checks import check_fraction, check_imgsz
from yolo_prune.data.datasets import check_model, check_split, resolve_dataset
from yolo_prune.deploy.bench import bench
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.cost import measure
from yolo_prune.pruning.load import check_source, load_model, task_of
from yolo_prune.pruning.unstructured import PLAIN_SENTENCE, gzip_size, sparsify, sparsity
from yolo_prune.train.finetune import FinetuneConfig, finetune, resume
from yolo_prune.train.trainers import MaskedDetectionTrainer
from yolo_prune.train.validate import validate

LOGGER = logging.getLogger("yolo_prune")


def run_unstructured(
    source: str,
    amount: float,
    out_dir: str | Path | None = None,
    *,
    data: str | None = None,
    train: FinetuneConfig | None = None,
    imgsz: int = 640,
    split: str = "val",
    latency_runs: int = 30,
) -> dict:
    """Zero the `amount` smallest conv weights of `source` (global L1), optionally fine-tune holding the zeros;
    write `out_dir/pruned.pt` and `report.json` and return what report.json holds."""
    check_fraction("--unstructured", amount)
    check_imgsz(imgsz)
    if train is not None and not data:
        raise ConfigError("--epochs trains: it needs --data DATA.yaml")
    check_source(source)
    out = Path(out_dir) if out_dir is not None else default_run_dir(source)
    refuse_finished(out)
    splits = ("train", split) if train else (split,)
    dataset = resolve_dataset(data, splits=splits, chosen=split) if data else None
    original = load_model(source)
    if dataset is not None:
        check_model(dataset, original)
        for name in splits:
            check_split(dataset, name, task=task_of(original), need_boxes=train is not None and name == "train")
    sparse = sparsify(original, amount)

    if train is not None:
        LOGGER.info(f"fine-tuning for {train.epochs} epoch(s), holding the zeros")
        last = out / "train" / "weights" / "last.pt"
        if last.exists():
            result = resume(last, trainer_class=MaskedDetectionTrainer)
        else:
            result = finetune(
                sparse, data, train, out / "train", source=str(source), trainer_class=MaskedDetectionTrainer
            )
        sparse = load_model(result.best)
    weights = save_checkpoint(sparse, out / "pruned.pt", {"unstructured": amount, "source": str(source)})

    def describe(model, path: Path) -> tuple[dict, dict]:
        cost = measure(model, imgsz)
        measured = sparsity(model)
        nonzero = sum(int((p != 0).sum()) for p in model.parameters())
        info = {
            **cost.to_dict(),
            "nonzero_params": nonzero,
            "sparsity": measured["overall"],
            "file_bytes": path.stat().st_size,
            "gzip_bytes": gzip_size(path),
        }
        if data:
            metrics = validate(model, data, split=split, imgsz=imgsz, batch=train.batch if train else 16)
            info.update(map50=metrics["map50"], map50_95=metrics["map50_95"])
        return info, measured["layers"]

    with tempfile.TemporaryDirectory(prefix="yolo_prune_") as tmp:
        original_path = save_checkpoint(original, Path(tmp) / "original.pt")
        before, _ = describe(original, original_path)
        after, layers = describe(sparse, weights)
        LOGGER.info("timing both models in onnxruntime")
        rows = bench([original_path, weights], imgsz=imgsz, runs=latency_runs)
    before["latency_ms"], after["latency_ms"] = rows[0].median_ms, rows[1].median_ms
    report = {
        "model": str(source),
        "unstructured": amount,
        "train": train.to_dict() if train else None,
        "before": before,
        "after": after,
        "layers": layers,
        "note": PLAIN_SENTENCE,
        "files": {"weights": str(weights), "report": str(out / "report.json")},
    }
    write_json(out / "report.json", report)
    return report
