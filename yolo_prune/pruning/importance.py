"""Channel-importance criteria by name: a registry of plain factories over torch-pruning's `Importance` classes.

`prune()` takes an `Importance` object (`importance=`; any torch-pruning importance, or one of your own) and only
falls back to these names when none is given. A new criterion is one decorated factory here plus its test;
`PruneConfig` and the CLI's `--method` pick it up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch-pruning loads torch: imported where a criterion is built, so listing names stays light
    import torch_pruning as tp

from yolo_prune.errors import ConfigError


@dataclass(frozen=True)
class Criterion:
    """A named importance criterion: its factory and whether it needs loss gradients (and so data)."""

    name: str
    factory: Callable[[], tp.importance.Importance]
    needs_gradients: bool
    summary: str


_CRITERIA: dict[str, Criterion] = {}


def register(name: str, summary: str, needs_gradients: bool = False):
    """Decorator: register a factory under `name`."""

    def wrap(factory: Callable[[], tp.importance.Importance]):
        _CRITERIA[name] = Criterion(name, factory, needs_gradients, summary)
        return factory

    return wrap


@register("l1", "L1 norm of each channel's weights across its whole dependency group")
def l1() -> tp.importance.Importance:
    import torch_pruning as tp

    return tp.importance.GroupMagnitudeImportance(p=1)


@register("l2", "L2 norm of each channel's weights across its whole dependency group")
def l2() -> tp.importance.Importance:
    import torch_pruning as tp

    return tp.importance.GroupMagnitudeImportance(p=2)


@register("bn", "absolute BatchNorm scale (gamma) of each channel, as in network slimming")
def bn() -> tp.importance.Importance:
    import torch_pruning as tp

    return tp.importance.BNScaleImportance()


@register("lamp", "layer-adaptive magnitude (LAMP) scores, comparable across layers")
def lamp() -> tp.importance.Importance:
    import torch_pruning as tp

    return tp.importance.LAMPImportance(p=2)


@register("taylor", "first-order Taylor estimate of the loss change (weight x gradient); needs --data", True)
def taylor() -> tp.importance.Importance:
    import torch_pruning as tp

    return tp.importance.GroupTaylorImportance()


@register("random", "random scores: the floor any real criterion has to beat")
def random() -> tp.importance.Importance:
    import torch_pruning as tp

    return tp.importance.RandomImportance()


def names() -> list[str]:
    return list(_CRITERIA)


def get_criterion(name: str) -> Criterion:
    """Return the criterion registered as `name`; unknown names fail listing the valid ones."""
    try:
        return _CRITERIA[name]
    except KeyError:
        raise ConfigError(f"unknown --method '{name}'; choose one of: {', '.join(_CRITERIA)}") from None


def needs_gradients(importance: tp.importance.Importance) -> bool:
    """Whether `importance` reads parameter gradients (Taylor criteria), which `prune()` then computes on data.

    An importance class of your own can say so with a `needs_gradients = True` attribute.
    """
    import torch_pruning as tp

    return isinstance(importance, tp.importance.GroupTaylorImportance) or bool(
        getattr(importance, "needs_gradients", False)
    )
