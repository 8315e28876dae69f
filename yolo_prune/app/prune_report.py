"""What a prune run reports: each measured point of its history, and `report.json` with the plots at the end."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from yolo_prune.app import plots
from yolo_prune.app.render import METRIC_KEYS
from yolo_prune.app.state import RunState, search_of
from yolo_prune.atomic import write_json
from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.cost import layer_table, measure
from yolo_prune.train.finetune import FinetuneConfig
from yolo_prune.train.validate import validate

LOGGER = logging.getLogger("yolo_prune")


@dataclass
class PruneReport:
    """What `report.json` holds. `before`/`after` are measured points with their per-layer widths; `prune` is the
    last step's `prune.json`."""

    model: str
    config: dict
    train: dict | None
    steps: int
    sparse_epochs: int
    before: dict
    after: dict
    history: list[dict]
    prune: dict
    files: dict[str, str]

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def search(self) -> tuple[str, float]:
        """(variable, value) the last step's search found."""
        return search_of(self.prune)


def measure_point(model, state: RunState, label: str, base_macs: int | None = None) -> dict:
    """Cost and (with data) mAP of `model`, as one point of the run's history (`base_macs`: default its own)."""
    config, train = state.config, state.train or FinetuneConfig()
    cost = measure(model, config.imgsz)
    point = {"label": label, **cost.to_dict(), "macs_fraction": cost.macs / (base_macs or cost.macs)}
    if config.data:
        LOGGER.info(f"validating {label} on '{state.split}'")
        metrics = validate(
            model, config.data, split=state.split, imgsz=config.imgsz, batch=train.batch, device=train.device
        )
        point.update({k: v for k, v in metrics.items() if k in METRIC_KEYS}, per_class=metrics["per_class"])
    return point


def prune_summary(info: dict) -> dict:
    keys = (
        "search",
        "ratio",
        "macs_fraction",
        "trials",
        "seconds",
        "rewrites",
        "latency_model",
        "speedup",
        "block_probe",
    )
    return {k: info[k] for k in keys if k in info}


def finish(out: Path, state: RunState, original, final, base_macs: int) -> PruneReport:
    weights = out / "pruned.pt"
    metadata = {"config": state.config.to_dict(), "base_macs": base_macs, "source": state.source}
    save_checkpoint(final, weights, metadata)
    last_prune = json.loads((out / f"step{state.steps}" / "prune.json").read_text())
    after = {k: v for k, v in state.history[-1].items() if k not in ("weights", "prune")}
    before_layers, after_layers = layer_table(original), layer_table(final)
    files = {"weights": str(weights), "report": str(out / "report.json")}
    title = f"{Path(state.source).name}: channels"
    plots.layer_widths(before_layers, after_layers, out / "widths.png", title=title)
    if "map50_95" in after:
        points = [state.before, *state.history]
        files["map_vs_macs"] = str(plots.map_vs_macs(points, out / "map_vs_macs.png"))
    report = PruneReport(
        model=state.source,
        config=state.config.to_dict(),
        train=state.train.to_dict() if state.train else None,
        steps=state.steps,
        sparse_epochs=state.sparse_epochs,
        before={**state.before, "layers": before_layers},
        after={**after, "layers": after_layers},
        history=[{k: v for k, v in h.items() if k != "per_class"} for h in state.history],
        prune=last_prune,
        files=files,
    )
    write_json(out / "report.json", report.to_dict())
    state.done = True
    state.save(out)
    return report
