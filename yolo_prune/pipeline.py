"""The stages put together: what one CLI command or API call runs end to end.

Each function takes paths and options, runs the stages in order (load -> prune -> ...), writes its run folder and
returns the report it wrote. The stages themselves live in their own modules and know nothing of each other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from yolo_prune.checkpoint import save_checkpoint
from yolo_prune.config import PruneConfig
from yolo_prune.cost import layer_table, measure
from yolo_prune.datasets import batches, resolve_dataset
from yolo_prune.errors import ConfigError
from yolo_prune.importance import get_criterion
from yolo_prune.load import load_model
from yolo_prune.prune import prune
from yolo_prune.report import write_json

LOGGER = logging.getLogger("yolo_prune")


def default_run_dir(model: str, root: str | Path = "runs/prune") -> Path:
    """`runs/prune/<model stem>`, or `<stem>2`, `<stem>3`, ... when that exists already."""
    base = Path(root) / Path(model).stem
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}{n}")
        n += 1
    return candidate


def model_info(source: str, imgsz: int = 640) -> dict:
    """MACs, parameters and per-layer widths of a model file."""
    model = load_model(source)
    return {
        "model": str(source),
        **measure(model, imgsz).to_dict(),
        "layers": layer_table(model),
        "names": dict(model.names),
    }


def run_prune(source: str, config: PruneConfig, out_dir: str | Path | None = None) -> dict:
    """Load `source`, prune it as `config` says, write `pruned.pt` and `report.json` to `out_dir`; return the report."""
    out = Path(out_dir) if out_dir is not None else default_run_dir(source)
    weights = out / "pruned.pt"
    if Path(source).exists() and weights.resolve() == Path(source).resolve():
        raise ConfigError(f"--out would overwrite the input model {source}; choose another folder")
    data = resolve_dataset(config.data, splits=("train",)) if config.data else None

    LOGGER.info(f"loading {source}")
    model = load_model(source)
    gradient_batches = None
    if get_criterion(config.method).needs_gradients:

        def gradient_batches():
            return batches(data, "train", config.imgsz, config.batch, config.grad_batches)

    LOGGER.info(f"pruning with {config.method} importance")
    pruned, result = prune(model, config, gradient_batches=gradient_batches)
    report = {
        "model": str(source),
        "config": config.to_dict(),
        "before": {**result.before.to_dict(), "layers": layer_table(model)},
        "after": {**result.after.to_dict(), "layers": layer_table(pruned)},
        "prune": result.to_dict(),
        "files": {"weights": str(weights), "report": str(out / "report.json")},
    }
    save_checkpoint(pruned, weights, {"config": config.to_dict(), "base_macs": result.base_macs, "source": str(source)})
    write_json(out / "report.json", report)
    return report
