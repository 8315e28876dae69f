"""The state of a prune run, `DIR/state.json`: its plan (`app.plan.RunPlan`) and how far it got. It makes `--resume`
possible.

The file is read with the names 0.1.0 wrote (`tests/fixtures/run-0.1.0` keeps one such folder); fields added since
have defaults, so older files still load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from yolo_prune.app.plan import RunPlan
from yolo_prune.atomic import write_json
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.allocation import get_allocation
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.train.finetune import FinetuneConfig

STATE = "state.json"


@dataclass
class RunState:
    """One prune run: the fields of its plan, then its progress. `history` holds one measured point per finished
    step (see `app.prune_report.measure_point`)."""

    source: str
    config: PruneConfig
    train: FinetuneConfig | None
    steps: int = 1
    sparse_epochs: int = 0
    split: str = "val"
    history: list[dict] = field(default_factory=list)
    before: dict | None = None  # the original model's point, once measured
    sparse_done: str | None = None  # the sparse-trained weights, once trained
    table: str | None = None  # the sensitivity scan this run made and saved, once scanned
    done: bool = False

    @classmethod
    def start(cls, plan: RunPlan) -> RunState:
        return cls(plan.source, plan.config, plan.train, plan.steps, plan.sparse_epochs, plan.split)

    @property
    def plan(self) -> RunPlan:
        return RunPlan(self.source, self.config, self.train, self.steps, self.sparse_epochs, self.split)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["config"] = self.config.to_dict()
        data["train"] = self.train.to_dict() if self.train else None
        return {k: v for k, v in data.items() if v is not None or k == "train"}

    @classmethod
    def from_dict(cls, data: dict) -> RunState:
        try:
            return cls(
                source=data["source"],
                config=PruneConfig(**data["config"]),
                train=FinetuneConfig(**data["train"]) if data.get("train") else None,
                steps=data.get("steps", 1),
                sparse_epochs=data.get("sparse_epochs", 0),
                split=data.get("split", "val"),
                history=list(data.get("history", [])),
                before=data.get("before"),
                sparse_done=data.get("sparse_done"),
                table=data.get("table"),
                done=bool(data.get("done", False)),
            )
        except (KeyError, TypeError) as e:
            raise ConfigError(f"not a yolo_prune run state ({type(e).__name__}: {e})") from None

    def save(self, out: Path) -> None:
        write_json(out / STATE, self.to_dict())

    @classmethod
    def load(cls, out: Path) -> RunState:
        path = out / STATE
        if not path.is_file():
            raise ConfigError(f"--resume {out}: nothing to resume ({path} not found)")
        try:
            data = json.loads(path.read_text())
        except ValueError as e:
            raise ConfigError(f"{path} is not valid JSON ({e})") from None
        return cls.from_dict(data)


def search_of(prune_info: dict) -> tuple[str, float]:
    """(variable, value) of a step's prune.json; 0.1.0 wrote the value as `ratio` whatever it was."""
    if "search" in prune_info:
        return prune_info["search"]["variable"], prune_info["search"]["value"]
    return get_allocation(prune_info.get("allocation", "uniform")).variable, prune_info["ratio"]
