"""`PruneConfig`: the one schema for what to prune and how, shared by the CLI and the Python API."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from yolo_prune.checks import check_at_least, check_fraction, check_imgsz, check_threads
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.allocation import CHANNEL_RATIO, DEFAULT_FOR_RATIO, get_allocation
from yolo_prune.pruning.importance import get_criterion


@dataclass
class PruneConfig:
    """Options for one structured prune; checked on construction.

    Exactly one of `target_macs` (fraction of the original MACs to keep, e.g. 0.5), `ratio` (fraction of channels
    to remove from every prunable group) and `target_speedup` (how many times faster the latency model must predict
    the pruned convs to run, e.g. 2.0; needs a `LayerTimer`) or `target_latency` (milliseconds end to end, which a
    prune run turns into a speedup by timing the original) is set. `method` names an importance criterion
    (`pruning.importance`) and `allocation` a way to spread the budget (`pruning.allocation`); both are checked
    against their registries.
    """

    target_macs: float | None = None
    ratio: float | None = None
    target_speedup: float | None = None
    target_latency: float | None = None  # ms end to end; a prune run (`app.prune_run`) turns it into a speedup
    method: str = "l2"
    allocation: str | None = None  # how the budget is spread over groups (pruning.allocation); None: the default
    sensitivity: str | None = None  # sensitivity.json for allocation "sensitivity" (else scanned on the fly)
    round_to: int | None = None
    runtime: str = "onnxruntime-cpu"  # where latency is measured (`deploy.runtimes.RUNTIMES`)
    threads: int | None = None  # its intra-op threads (None: the runtime's default)
    latency_batch: int = 1  # images per call where latency is measured (above 1: torch runtimes; checked there)
    imgsz: int = 640
    max_layer_ratio: float = 0.9  # never remove more than this share of one layer's channels
    tolerance: float = 0.01  # the search stops within this fraction of the original's MACs (or predicted ms)
    data: str | None = None  # dataset YAML, for gradient-based criteria
    grad_batches: int = 4  # batches of `data` whose loss gradients feed gradient-based criteria
    batch: int = 16  # images per batch of `data` for the scan and gradients (the CLI's --batch, shared with training)

    def __post_init__(self) -> None:
        targets = (self.target_macs, self.ratio, self.target_speedup, self.target_latency)
        if sum(t is not None for t in targets) != 1:
            raise ConfigError("give exactly one of --target-macs, --target-speedup, --target-latency and --ratio")
        if self.target_speedup is not None and not self.target_speedup > 1.0:
            raise ConfigError(f"--target-speedup must be above 1 (the original runs at 1x), got {self.target_speedup}")
        if self.target_latency is not None and not self.target_latency > 0:
            raise ConfigError(f"--target-latency must be a positive number of milliseconds, got {self.target_latency}")
        check_fraction("--target-macs", self.target_macs)
        check_fraction("--ratio", self.ratio)
        criterion = get_criterion(self.method)
        if criterion.needs_gradients and not self.data:
            raise ConfigError(f"--method {self.method} needs loss gradients: pass --data DATA.yaml")
        # None: `prune()` spreads the budget uniformly; a prune run (`app.prune_run`) picks `default_allocation`
        allocation = get_allocation(self.allocation or DEFAULT_FOR_RATIO)
        if allocation.variable != CHANNEL_RATIO and self.ratio is not None:
            raise ConfigError(f"--allocation {allocation.name} needs --target-macs or --target-speedup")
        if allocation.needs_table and not (self.sensitivity or self.data):
            raise ConfigError(f"--allocation {allocation.name} needs --sensitivity FILE or --data DATA.yaml to scan")
        if self.round_to is not None and self.round_to < 1:
            raise ConfigError(f"--round-to must be a positive integer, got {self.round_to}")
        check_threads(self.threads)
        check_imgsz(self.imgsz)
        check_at_least("--batch", self.batch, 1)
        # Python API only (no CLI option): named as the field
        if not 0.0 < self.max_layer_ratio < 1.0:
            raise ConfigError(f"PruneConfig.max_layer_ratio must be between 0 and 1, got {self.max_layer_ratio}")
        if self.grad_batches < 1:
            raise ConfigError(f"PruneConfig.grad_batches must be at least 1, got {self.grad_batches}")

    def to_dict(self) -> dict:
        return asdict(self)
