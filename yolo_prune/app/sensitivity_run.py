"""`yolo-prune sensitivity`: scan every dependency group of a model and write `sensitivity.json` and `.png`."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from yolo_prune._version import __version__
from yolo_prune.app import plots
from yolo_prune.app.folders import check_out_dir, default_run_dir
from yolo_prune.atomic import write_json
from yolo_prune.cache import cache_dir
from yolo_prune.checks import check_at_least, check_fraction, check_imgsz
from yolo_prune.data.datasets import batches, check_model, resolve_dataset
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.load import check_source, load_model, task_of
from yolo_prune.pruning.objective import detection_loss
from yolo_prune.pruning.sensitivity import scan
from yolo_prune.train.validate import validate

LOGGER = logging.getLogger("yolo_prune")
METRICS = ("loss", "map")
# What a loss scan measures, in the cache key: raised when it changes, so that no older table is reused
# (3: an end-to-end head measured on the branch it runs, `objective.detection_loss`; MACs shares of the exported
# network, whose other branch is not scanned, `cost.as_deployed`; 4: images spread evenly over the train split, not its
# first ones, `datasets.batches`).
SCAN_MEASURE = 4


def run_sensitivity(
    source: str,
    data: str | None,
    *,
    ratios: tuple[float, ...] = (0.25, 0.5, 0.75),
    metric: str = "loss",
    batches_count: int = 4,
    imgsz: int = 640,
    batch: int = 8,
    out_dir: str | Path | None = None,
) -> dict:
    """Scan every dependency group of `source` at `ratios`; return the table (also `out_dir/sensitivity.json`).

    `metric="loss"`: detection loss on `batches_count` batches of train images spread evenly over the split (fast;
    no augmentation);
    `metric="map"`: mAP50-95 on the val split (slow: one validation per group and ratio).
    """
    if not data:
        raise ConfigError(f"the sensitivity scan measures {metric} on a dataset: pass --data DATA.yaml")
    if metric not in METRICS:
        raise ConfigError(f"unknown --metric '{metric}'; choose loss or map")
    check_at_least("--batches", batches_count, 1)
    check_at_least("--batch", batch, 1)
    check_imgsz(imgsz)
    if not ratios:
        raise ConfigError("--ratios names no ratio")
    for r in ratios:
        check_fraction("--ratios", r)
    check_source(source)
    out = Path(out_dir) if out_dir is not None else default_run_dir(source, "runs/sensitivity")
    check_out_dir(out)
    dataset = resolve_dataset(data, splits=("train", "val"))
    model = load_model(source)
    check_model(dataset, model)
    if metric == "loss":
        fixed = list(batches(dataset, "train", imgsz, batch, batches_count, task_of(model)))

        def evaluate(m) -> float:
            return detection_loss(m, fixed)
    else:

        def evaluate(m) -> float:
            return validate(m, data, split="val", imgsz=imgsz, batch=batch)["map50_95"]

    LOGGER.info(f"scanning {source}: metric {metric}, ratios {', '.join(map(str, ratios))}")
    table = scan(model, evaluate, ratios=tuple(ratios), imgsz=imgsz, higher_is_better=metric == "map")
    table.update(model=str(source), data=str(data), metric=metric, batches=batches_count, batch=batch)
    table["files"] = save_table(table, out)
    return table


def scan_key(weights: Path, data: str, settings: dict) -> str:
    """A scan's identity: the weights' bytes, the dataset YAML (its path and text), the scan settings (which
    include the train split's label fingerprint), the package version and `SCAN_MEASURE`."""
    digest = hashlib.sha256(weights.read_bytes())
    yaml = Path(data).resolve()
    digest.update(f"{yaml}\n{yaml.read_text(encoding='utf-8')}\n{json.dumps(settings, sort_keys=True)}".encode())
    digest.update(f"{__version__}\n{SCAN_MEASURE}".encode())
    return digest.hexdigest()[:24]


def cached_scan(weights: str | Path, data: str, settings: dict, run_scan) -> tuple[dict, bool]:
    """The table of `run_scan()`, or the one a scan with the same key left in `cache_dir()`; and whether it was
    reused. Only checkpoints (.pt) are cached: a YAML model is random every time."""
    weights = Path(weights)
    if weights.suffix.lower() != ".pt" or not weights.is_file():
        return run_scan(), False
    path = cache_dir() / "sensitivity" / f"{scan_key(weights, data, settings)}.json"
    if path.is_file():
        try:
            return load_table(path), True
        except ConfigError:
            pass  # a damaged cache entry is scanned again
    table = run_scan()
    try:
        write_json(path, table)
    except OSError as e:  # a read-only home costs the reuse, not the run
        LOGGER.warning(f"could not cache the sensitivity scan in {path.parent}: {e.strerror or e}")
    return table, False


def save_table(table: dict, out: Path) -> dict[str, str]:
    """Write a scan's `sensitivity.json` and `sensitivity.png` into `out`; return their paths."""
    write_json(out / "sensitivity.json", table)
    plots.sensitivity_heatmap(table, out / "sensitivity.png")
    return {"table": str(out / "sensitivity.json"), "plot": str(out / "sensitivity.png")}


def load_table(path: str | Path) -> dict:
    """A sensitivity table written by `save_table` (or `yolo-prune sensitivity`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sensitivity table not found: {path}")
    try:
        table = json.loads(path.read_text())
        table["groups"], table["ratios"]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is not a sensitivity table ({type(e).__name__})") from e
    return table
