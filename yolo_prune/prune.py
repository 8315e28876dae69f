"""Structured channel pruning of a YOLO detector with torch-pruning's dependency graph.

The model is first made prunable by `surgery.make_prunable` (lossless). A `MetaPruner` then removes whole channels,
group by group: every conv, BatchNorm, concat slot and residual that shares a channel loses it together, so the
result is a smaller dense network. Layers whose width the network cannot change are left out of the groups:

- the head's final class/box convs and the DFL (their widths are the output format);
- attention (`Attention.qkv`, `.proj`, `.pe`): its reshape into heads ties the channel count to `num_heads` and the
  head dims, so the attention path keeps its width; the feed-forward hidden layer beside it is pruned as usual.

`--target-macs` is met by search: each trial prunes a fresh copy of the model at one channel ratio and measures it;
the next ratio is interpolated from the trials that bracket the target, until one lands within `tolerance`.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn
from ultralytics.nn.modules.block import Attention
from ultralytics.nn.modules.head import Detect

from yolo_prune.config import PruneConfig
from yolo_prune.cost import ModelCost, conv_widths, example_input, measure
from yolo_prune.errors import TargetUnreachableError
from yolo_prune.importance import get_criterion
from yolo_prune.objective import detection_loss
from yolo_prune.surgery import make_prunable

LOGGER = logging.getLogger("yolo_prune")
MAX_TRIALS = 10


@dataclass
class PruneResult:
    """What one prune did: costs before and after, the channel ratio found, the search and the per-conv widths."""

    before: ModelCost
    after: ModelCost
    ratio: float
    method: str
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
            "ratio": self.ratio,
            "method": self.method,
            "trials": self.trials,
            "rewrites": self.rewrites,
            "seconds": self.seconds,
            "layers": {
                name: {"before": self.widths_before.get(name), "after": width}
                for name, width in self.widths_after.items()
            },
            **self.extra,
        }


def head_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Run `model` and return the raw box and class maps of its head (both branches of an end-to-end head).

    Tracing stops here, before decoding and YOLO26's top-k post-processing, which hold no prunable channels.
    """
    out = model(x)
    preds = out[1] if isinstance(out, tuple) else out
    branches = [preds["one2many"], preds["one2one"]] if "one2many" in preds else [preds]
    return [branch[key] for branch in branches for key in ("boxes", "scores")]


def unprunable_layers(model: nn.Module) -> list[nn.Module]:
    """Modules whose output channels must stay as they are (see the module docstring for why)."""
    layers: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, Detect):
            for branch in ("cv2", "cv3", "one2one_cv2", "one2one_cv3"):
                heads = getattr(module, branch, None)
                if heads is not None:
                    layers.extend(head[-1] for head in heads)
            layers.append(module.dfl)
        elif isinstance(module, Attention):
            layers.extend((module.qkv, module.proj, module.pe))
    return layers


def _copy_with_grads(model: nn.Module) -> nn.Module:
    """Deep-copy `model` keeping each parameter's `.grad` (deepcopy drops them; Taylor importance needs them)."""
    clone = copy.deepcopy(model)
    for src, dst in zip(model.parameters(), clone.parameters()):
        if src.grad is not None:
            dst.grad = src.grad.clone()
    return clone


def _prune_copy(
    model: nn.Module,
    ratio: float,
    config: PruneConfig,
    importance: tp.importance.Importance,
    group_ratios: dict[str, float] | None = None,
) -> nn.Module:
    """Return a copy of `model` with `ratio` of the channels of every prunable group removed.

    With `group_ratios` (root conv name -> ratio), each named group loses its own share instead (capped at
    `config.max_layer_ratio`) and the other groups keep their channels.
    """
    clone = _copy_with_grads(model)
    ratio_dict = None
    if group_ratios is not None:
        modules = dict(clone.named_modules())
        cap = config.max_layer_ratio
        ratio_dict = {modules[n]: min(r, cap) for n, r in group_ratios.items() if r > 0 and n in modules}
    pruner = tp.pruner.MetaPruner(
        clone,
        example_input(clone, config.imgsz),
        importance=importance,
        pruning_ratio=0.0 if group_ratios is not None else ratio,
        pruning_ratio_dict=ratio_dict,
        global_pruning=config.allocation == "global",
        max_pruning_ratio=config.max_layer_ratio,
        round_to=config.round_to,
        ignored_layers=unprunable_layers(clone),
        forward_fn=head_outputs,
    )
    pruner.step()
    for p in clone.parameters():
        p.grad = None
    return clone


def _next_ratio(
    trials: list[tuple[float, int]], target: int, current_macs: int, cap: float, linear: bool = False
) -> float:
    """Interpolate the search variable expected to land on `target` MACs from the trials so far.

    For a channel ratio, MACs shrink roughly with the square of the kept width, so the interpolation runs on
    sqrt(MACs). For a MACs budget (`linear`), MACs shrink roughly linearly with it.
    """
    f = (lambda v: float(v)) if linear else math.sqrt
    below = [t for t in trials if t[1] <= target]
    above = [t for t in trials if t[1] > target] + [(0.0, current_macs)]
    lo = max(above, key=lambda t: t[0])  # largest value still above the target
    if not below:
        if linear:  # extrapolate along the line through (0, current) and the best point above
            slope = (1.0 - lo[1] / current_macs) / lo[0] if lo[0] > 0 else 1.0
            guess = (1.0 - target / current_macs) / max(slope, 1e-3)
        else:  # extrapolate from the best point above through (ratio 1, 0 MACs)
            guess = 1.0 - (1.0 - lo[0]) * math.sqrt(target / lo[1])
        return min(guess, cap)
    hi = min(below, key=lambda t: t[0])  # smallest value already below
    s_lo, s_hi, s_t = f(lo[1]), f(hi[1]), f(target)
    if s_lo == s_hi:
        return (lo[0] + hi[0]) / 2
    guess = lo[0] + (hi[0] - lo[0]) * (s_lo - s_t) / (s_lo - s_hi)
    # Keep strictly inside the bracket so the search always makes progress.
    margin = 0.05 * (hi[0] - lo[0])
    return min(max(guess, lo[0] + margin), hi[0] - margin)


def prune(
    model: nn.Module,
    config: PruneConfig,
    *,
    base_macs: int | None = None,
    gradient_batches: Callable[[], Iterable[dict]] | None = None,
    allocation: Callable[[float], dict[str, float]] | None = None,
) -> tuple[nn.Module, PruneResult]:
    """Prune `model` as `config` says and return the pruned copy with a `PruneResult`. `model` is not modified.

    `base_macs` is what `config.target_macs` is a fraction of (default: this model's MACs; an iterative schedule
    passes the original's). `gradient_batches` yields Ultralytics training batches for criteria that need loss
    gradients (`taylor`). For `config.allocation == "sensitivity"`, `allocation` maps a share of MACs to save to
    per-group ratios (root conv name -> ratio; see `sensitivity.allocate`), and the search runs over that share.
    """
    start = time.perf_counter()
    criterion = get_criterion(config.method)
    work = copy.deepcopy(model).float().eval()
    # Tracing follows autograd: every parameter must require grad (checkpoints from Ultralytics' trainer come frozen).
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    for p in work.parameters():
        p.requires_grad_(True)
    rewrites = make_prunable(work).counts
    before = measure(work, config.imgsz)
    base = base_macs or before.macs
    if criterion.needs_gradients:
        if gradient_batches is None:
            raise TargetUnreachableError(f"method '{config.method}' needs data batches for its gradients")
        work.zero_grad(set_to_none=True)
        detection_loss(work, gradient_batches(), backward=True)
    importance = criterion.factory()
    by_budget = config.allocation == "sensitivity"
    if by_budget and allocation is None:
        raise TargetUnreachableError("allocation 'sensitivity' needs per-group ratios from a sensitivity table")

    def candidate_for(x: float) -> nn.Module:
        if by_budget:
            return _prune_copy(work, 0.0, config, importance, allocation(x))
        return _prune_copy(work, x, config, importance)

    trials: list[dict] = []
    if config.ratio is not None:
        best = candidate_for(config.ratio)
        best_cost, best_ratio = measure(best, config.imgsz), config.ratio
        trials.append({"ratio": best_ratio, "macs": best_cost.macs, "macs_fraction": best_cost.macs / base})
    else:
        target = int(config.target_macs * base)
        if target >= before.macs:
            raise TargetUnreachableError(
                f"the model already has {before.macs / base:.1%} of the base MACs, at or below the target "
                f"{config.target_macs:.1%}"
            )
        best, best_cost, best_ratio, points = None, None, 0.0, []
        for _ in range(MAX_TRIALS):
            cap = 1.0 if by_budget else config.max_layer_ratio
            ratio = _next_ratio(points, target, before.macs, cap, linear=by_budget)
            if any(abs(ratio - r) < 1e-4 for r, _ in points):
                break  # the search cannot move any more (e.g. channel rounding makes MACs a step function)
            candidate = candidate_for(ratio)
            cost = measure(candidate, config.imgsz)
            points.append((ratio, cost.macs))
            trials.append({"ratio": round(ratio, 5), "macs": cost.macs, "macs_fraction": cost.macs / base})
            what = "MACs budget" if by_budget else "channel ratio"
            LOGGER.info(f"  trial {len(trials)}: {what} {ratio:.4f} -> {cost.macs / base:.2%} of base MACs")
            if best is None or abs(cost.macs - target) < abs(best_cost.macs - target):
                best, best_cost, best_ratio = candidate, cost, ratio
            if abs(cost.macs - target) <= config.tolerance * base:
                break
        # Within 3% of the base MACs, and for small targets within 10% of the target itself.
        if abs(best_cost.macs - target) > min(0.03 * base, 0.1 * target):
            hint = (
                "; with --round-to, every layer of one width jumps at once under uniform allocation: try --allocation "
                "global"
                if config.round_to and config.allocation == "uniform"
                else ""
            )
            raise TargetUnreachableError(
                f"could not reach {config.target_macs:.1%} of the MACs: the closest was {best_cost.macs / base:.1%} "
                f"(no layer loses more than {config.max_layer_ratio:.0%} of its channels; the head's output convs "
                f"and attention keep theirs){hint}"
            )

    _check_outputs(work, best, config.imgsz)
    for name, p in best.named_parameters():
        p.requires_grad_(name not in frozen)
    result = PruneResult(
        before=before,
        after=best_cost,
        ratio=best_ratio,
        method=config.method,
        trials=trials,
        widths_before=conv_widths(work),
        widths_after=conv_widths(best),
        rewrites=rewrites,
        seconds=time.perf_counter() - start,
        base_macs=base,
        extra={
            "allocation": config.allocation,
            **({"group_ratios": allocation(best_ratio)} if by_budget else {}),
        },
    )
    return best, result


def _check_outputs(original: nn.Module, pruned: nn.Module, imgsz: int) -> None:
    """The pruned head must produce outputs of exactly the original's shapes."""
    x = example_input(original, imgsz)
    with torch.no_grad():
        want = [t.shape for t in head_outputs(original, x)]
        got = [t.shape for t in head_outputs(pruned, x)]
    if want != got:
        raise RuntimeError(f"pruning changed the head's output shapes from {want} to {got}")
