"""One plan per prune run: what was asked, checked and resolved once, the same for the CLI and the Python API.

`plan_prune` turns the user's `PruneConfig` (and fine-tuning, steps, sparse training) into a frozen `RunPlan`: bad
combinations are refused before any work, the runtime is checked, and the allocation left unnamed becomes the best
measured one for what was given (`pruning.allocation.default_allocation`). What the plan implies (whether the run
scans sensitivity, needs timers, which dataset splits it reads) is asked of the plan, never worked out again. The
run's state (`app.state.RunState`) is the plan plus its progress.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from yolo_prune.deploy.runtimes import get_runtime
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.allocation import Allocation, default_allocation, get_allocation
from yolo_prune.pruning.allocation import names as allocation_names
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.importance import get_criterion
from yolo_prune.train.finetune import FinetuneConfig

LATENCY_BATCH_OPTION = "--latency-batch"  # the CLI option behind `PruneConfig.latency_batch`, named in its errors


@dataclass(frozen=True)
class RunPlan:
    """A prune run as resolved: `config.allocation` is always named."""

    source: str
    config: PruneConfig
    train: FinetuneConfig | None = None
    steps: int = 1
    sparse_epochs: int = 0
    split: str = "val"

    @property
    def allocation(self) -> type[Allocation]:
        return get_allocation(self.config.allocation)

    @property
    def uses_table(self) -> bool:
        """The allocation is driven by a sensitivity table: the given file, or a scan of the data."""
        kind = self.allocation
        return kind.needs_table or (kind.uses_table and bool(self.config.data or self.config.sensitivity))

    @property
    def scans(self) -> bool:
        return self.uses_table and not self.config.sensitivity

    @property
    def timed(self) -> bool:
        """The run times on its runtime: widths the runtime runs fast (picked by timings, or rounded to its blocks
        when no --round-to is given), or a speed target."""
        config = self.config
        in_blocks = self.allocation.blocks_from_runtime(config.round_to)
        speed = config.target_speedup is not None or config.target_latency is not None
        return self.allocation.needs_widths or in_blocks or speed

    @property
    def training(self) -> bool:
        return self.train is not None or self.sparse_epochs > 0

    @property
    def splits(self) -> tuple[str, ...]:
        """The dataset splits the run reads: `split` for mAP, and train when it trains, scans or takes gradients."""
        if not self.config.data:
            return ()
        train = self.training or self.scans or get_criterion(self.config.method).needs_gradients
        return ("train", self.split) if train else (self.split,)


def plan_prune(
    source: str,
    config: PruneConfig,
    *,
    train: FinetuneConfig | None = None,
    steps: int = 1,
    sparse_epochs: int = 0,
    split: str = "val",
) -> RunPlan:
    """The plan of a prune run, or a one-line `ConfigError` for what cannot run."""
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    if steps > 1 and config.target_macs is None:
        raise ConfigError("--steps needs --target-macs (each step prunes to an intermediate MACs target)")
    if sparse_epochs < 0:
        raise ConfigError(f"--sparse-epochs must be 0 or more, got {sparse_epochs}")
    if (train is not None or sparse_epochs) and not config.data:
        raise ConfigError(f"{'--epochs' if train is not None else '--sparse-epochs'} trains: it needs --data DATA.yaml")
    if train is not None and train.epochs < steps:
        raise ConfigError(f"--epochs ({train.epochs}) must be at least --steps ({steps})")
    if config.sensitivity is not None and not Path(config.sensitivity).is_file():
        raise ConfigError(f"--sensitivity {config.sensitivity}: file not found")
    get_runtime(config.runtime, config.threads, config.latency_batch, LATENCY_BATCH_OPTION)  # usable here
    if config.allocation is None:
        has_data = bool(config.data or config.sensitivity)
        chosen = default_allocation(has_data=has_data, has_ratio=config.ratio is not None)
        config = replace(config, allocation=chosen)
    plan = RunPlan(str(source), config, train, steps, sparse_epochs, split)
    if config.sensitivity is not None and not plan.uses_table:
        readers = [get_allocation(name) for name in allocation_names()]
        takers = " or ".join(kind.name for kind in readers if kind.needs_table or kind.uses_table)
        raise ConfigError(f"--sensitivity is read by --allocation {takers}, not {config.allocation}")
    return plan
