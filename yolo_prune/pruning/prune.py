"""Structured channel pruning of a YOLO detector with torch-pruning's dependency graph.

The model is first made prunable by `surgery.make_prunable` (lossless). A `MetaPruner` then removes whole channels,
group by group: every conv, BatchNorm, concat slot and residual that shares a channel loses it together, so the
result is a smaller dense network. What keeps its width is decided in `structure`.

Two strategies are injected: the channel **importance** (a torch-pruning `Importance` object; `importance.py` names
the built-in ones) and the **allocation** of the budget over groups (`allocation.py`). `--target-macs` (MACs) and
`--target-speedup` (the latency model's milliseconds, `latency.py`, timed by an injected `LayerTimer`) are met by
`search`: each trial prunes a fresh copy at one value of the allocation's variable and measures it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch_pruning as tp
from torch import nn

from yolo_prune.errors import ConfigError, TargetUnreachableError
from yolo_prune.pruning.allocation import (
    CHANNEL_RATIO,
    DEFAULT_FOR_RATIO,
    Allocation,
    create_allocation,
    get_allocation,
)
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.cost import ModelCost, conv_widths, example_input, measure
from yolo_prune.pruning.importance import get_criterion, needs_gradients
from yolo_prune.pruning.latency import LayerTimer, predict_ms, width_table
from yolo_prune.pruning.objective import detection_loss
from yolo_prune.pruning.search import search
from yolo_prune.pruning.structure import check_outputs, kept_layers, time_limit, trace_outputs
from yolo_prune.pruning.surgery import make_prunable

# How far the latency model's prediction may miss a speedup target: 3% alone; 10% for a caller that measures end to end
# and aims again (`aim_only`), as the prediction steps by whole blocks (docs/benchmarks.md, "Why the defaults").
PREDICTED_TOLERANCE = 0.03
AIM_SLACK = 0.10


@dataclass
class PruneResult:
    """What one prune did: costs before and after, the value the search found, the trials and the per-conv widths.

    `variable` names what `value` is: a channel ratio (uniform and global allocation), a share of MACs to save
    (sensitivity allocation) or a share of the latency model's largest saving (latency allocation).
    """

    before: ModelCost
    after: ModelCost
    variable: str
    value: float
    method: str
    allocation: str
    trials: list[dict]
    widths_before: dict[str, int]
    widths_after: dict[str, int]
    rewrites: dict[str, int]
    seconds: float
    base_macs: int = 0  # MACs the target fraction refers to (the original model's, in iterative schedules)
    extra: dict = field(default_factory=dict)

    @property
    def macs_fraction(self) -> float:
        """Pruned MACs as a fraction of `base_macs`."""
        return self.after.macs / self.base_macs

    def to_dict(self) -> dict:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "base_macs": self.base_macs,
            "macs_fraction": self.macs_fraction,
            "search": {"variable": self.variable, "value": self.value},
            # `ratio` kept for readers of 0.1.0 reports: the channel ratio, or null when the search varied a MACs budget
            "ratio": self.value if self.variable == CHANNEL_RATIO else None,
            "method": self.method,
            "allocation": self.allocation,
            "trials": self.trials,
            "rewrites": self.rewrites,
            "seconds": self.seconds,
            "layers": {
                name: {"before": self.widths_before.get(name), "after": width}
                for name, width in self.widths_after.items()
            },
            **self.extra,
        }


def _copy_with_grads(model: nn.Module) -> nn.Module:
    """Deep-copy `model` keeping each parameter's `.grad` (deepcopy drops them; Taylor importance needs them)."""
    clone = copy.deepcopy(model)
    for src, dst in zip(model.parameters(), clone.parameters()):
        if src.grad is not None:
            dst.grad = src.grad.clone()
    return clone


def _prune_copy(
    model: nn.Module,
    value: float,
    config: PruneConfig,
    importance: tp.importance.Importance,
    allocation: Allocation,
    kept: set[str],
) -> nn.Module:
    """Return a copy of `model` pruned at `value` of the allocation's variable; the modules named in `kept` keep
    their width."""
    clone = _copy_with_grads(model)
    x = example_input(clone, config.imgsz)
    with time_limit(clone):
        pruner = tp.pruner.MetaPruner(
            clone,
            x,
            importance=importance,
            max_pruning_ratio=config.max_layer_ratio,
            round_to=None if allocation.rounds_widths else config.round_to,
            ignored_layers=[m for name, m in clone.named_modules() if name in kept],
            forward_fn=trace_outputs,
            **allocation.pruner_args(value, clone, config.max_layer_ratio),
        )
        pruner.step()
    for p in clone.parameters():
        p.grad = None
    return clone


def prune(
    model: nn.Module,
    config: PruneConfig,
    *,
    importance: tp.importance.Importance | None = None,
    allocation: Allocation | None = None,
    base_macs: int | None = None,
    gradient_batches: Callable[[], Iterable[dict]] | None = None,
    timer: LayerTimer | None = None,
    earlier: Sequence[dict] = (),
    aim_only: bool = False,
) -> tuple[nn.Module, PruneResult]:
    """Prune `model` as `config` says and return the pruned copy with a `PruneResult`. `model` is not modified.

    This is the bare engine: an unnamed allocation is uniform here, nothing is measured end to end and nothing is
    written. `yolo_prune.run_prune` is the run `yolo-prune prune` makes, with its defaults (`app.plan`).

    `importance` (default: the criterion `config.method` names) scores channels; any torch-pruning `Importance`
    works, and one that reads `.grad` (Taylor) gets loss gradients from `gradient_batches`, which yields Ultralytics
    training batches. `allocation` (default: the one `config.allocation` names, or uniform) spreads the budget; a
    sensitivity allocation is built from its table (`create_allocation("sensitivity", table)`), a latency one from
    `timer`. `base_macs` is what
    `config.target_macs` is a fraction of (default: this model's MACs; an iterative schedule passes the original's).
    `timer` times conv shapes on the target runtime (`latency.LayerTimer`): the `latency` allocation and
    `config.target_speedup` need one, and with one the result records the latency model's prediction. `earlier`
    are the trials (`PruneResult.trials`) of an earlier prune of the same model with the same allocation and options
    but another target: the search starts from what they measured. `aim_only` says that the caller measures a
    speedup target end to end and corrects its aim (a prune run does): the closest predicted candidate is then kept
    when the latency model's steps skip over the target, unless it misses by more than `AIM_SLACK`.
    """
    start = time.perf_counter()
    method = config.method if importance is None else type(importance).__name__
    if importance is None:
        importance = get_criterion(config.method).factory()
    if config.target_latency is not None:
        raise ConfigError("a --target-latency is met by a prune run (yolo_prune.run_prune), which times the original")
    # An unnamed allocation is uniform here (the API's plain default); a prune run picks the measured best first.
    name = allocation.name if allocation is not None else config.allocation or DEFAULT_FOR_RATIO
    if timer is None and (config.target_speedup is not None or get_allocation(name).needs_widths):
        needs = "--target-speedup" if config.target_speedup is not None else f"--allocation {name}"
        raise ConfigError(f"{needs} needs a latency timer for the target runtime (prune(..., timer=...))")
    if config.ratio is not None and get_allocation(name).variable != CHANNEL_RATIO:
        raise ConfigError(f"--allocation {name} needs --target-macs or --target-speedup")
    work = copy.deepcopy(model).float().eval()
    # Tracing follows autograd: every parameter must require grad (checkpoints from Ultralytics' trainer come frozen).
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    for p in work.parameters():
        p.requires_grad_(True)
    rewrites = make_prunable(work).counts
    # What keeps its width is the same for every trial: traced once here, found in each copy by name.
    with time_limit(work):
        layers = set(kept_layers(work, example_input(work, config.imgsz)))
    kept = {name for name, m in work.named_modules() if m in layers}
    before = measure(work, config.imgsz)
    base = base_macs or before.macs
    if allocation is None:
        widths = None
        if get_allocation(name).needs_widths:
            widths = width_table(
                work, config.imgsz, timer, max_layer_ratio=config.max_layer_ratio, round_to=config.round_to
            )
        allocation = create_allocation(name, widths=widths)
    before_ms = predict_ms(work, config.imgsz, timer) if timer is not None else None
    if needs_gradients(importance):
        if gradient_batches is None:
            raise ConfigError(f"importance {type(importance).__name__} needs loss gradients: pass --data DATA.yaml")
        work.zero_grad(set_to_none=True)
        detection_loss(work, gradient_batches(), backward=True)

    def candidate_for(value: float) -> nn.Module:
        return _prune_copy(work, value, config, importance, allocation, kept)

    def macs_of(m: nn.Module) -> tuple[ModelCost, dict]:
        cost = measure(m, config.imgsz)
        return cost, {"macs": cost.macs, "macs_fraction": cost.macs / base}

    if config.ratio is not None:
        best, best_value = candidate_for(config.ratio), config.ratio
        trials = [{"value": best_value, **macs_of(best)[1]}]
    elif config.target_speedup is not None:
        target_ms = before_ms / config.target_speedup

        def ms_of(m: nn.Module) -> tuple[float, dict]:
            ms = predict_ms(m, config.imgsz, timer)
            return ms, {"predicted_ms": ms, "predicted_speedup": before_ms / ms, **macs_of(m)[1]}

        found = search(
            candidate_for,
            ms_of,
            target=target_ms,
            current=before_ms,
            cap=allocation.limit(config.max_layer_ratio),
            linear=allocation.linear,
            tolerance=config.tolerance * before_ms,
            variable=allocation.variable,
            known=[(t["value"], t["predicted_ms"]) for t in earlier if "predicted_ms" in t],
        )
        best, best_value, trials = found.model, found.value, found.trials
        if abs(found.cost - target_ms) > (AIM_SLACK if aim_only else PREDICTED_TOLERANCE) * target_ms:
            raise TargetUnreachableError(
                f"could not reach a predicted {config.target_speedup:.2f}x speedup on {timer.runtime}: the closest "
                f"was {before_ms / found.cost:.2f}x (no layer loses more than {config.max_layer_ratio:.0%} of its "
                f"channels; the head's output convs and attention keep theirs)"
            )
    else:
        target = int(config.target_macs * base)
        if target >= before.macs:
            raise TargetUnreachableError(
                f"the model already has {before.macs / base:.1%} of the base MACs, at or below the target "
                f"{config.target_macs:.1%}"
            )

        def macs_cost(m: nn.Module) -> tuple[float, dict]:
            cost, shown = macs_of(m)
            return cost.macs, shown

        found = search(
            candidate_for,
            macs_cost,
            target=target,
            current=before.macs,
            cap=allocation.limit(config.max_layer_ratio),
            linear=allocation.linear,
            tolerance=config.tolerance * base,
            variable=allocation.variable,
            known=[(t["value"], t["macs"]) for t in earlier if "macs" in t],
        )
        best, best_value, trials = found.model, found.value, found.trials
        # Within 3% of the base MACs, and for small targets within 10% of the target itself.
        if abs(found.cost - target) > min(0.03 * base, 0.1 * target):
            raise TargetUnreachableError(
                f"could not reach {config.target_macs:.1%} of the MACs: the closest was {found.cost / base:.1%} "
                f"(no layer loses more than {config.max_layer_ratio:.0%} of its channels; the head's output convs "
                f"and attention keep theirs){allocation.unreachable_hint(config.round_to)}"
            )
    best_cost = measure(best, config.imgsz)
    extra = allocation.details(best_value)
    if timer is not None:
        after_ms = predict_ms(best, config.imgsz, timer)
        extra["latency_model"] = {
            "runtime": timer.runtime,
            "before_ms": before_ms,
            "after_ms": after_ms,
            "predicted_speedup": before_ms / after_ms,
        }

    check_outputs(work, best, example_input(work, config.imgsz))
    for name, p in best.named_parameters():
        p.requires_grad_(name not in frozen)
    result = PruneResult(
        before=before,
        after=best_cost,
        variable=allocation.variable,
        value=best_value,
        method=method,
        allocation=allocation.name,
        trials=trials,
        widths_before=conv_widths(work),
        widths_after=conv_widths(best),
        rewrites=rewrites,
        seconds=time.perf_counter() - start,
        base_macs=base,
        extra=extra,
    )
    return best, result
