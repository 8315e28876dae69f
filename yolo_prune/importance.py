"""Channel-importance criteria by name: a registry of plain factories over torch-pruning's `Importance` classes.

`prune()` receives an `Importance` object and never branches on these names; only the CLI and `PruneConfig` use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    return tp.importance.GroupMagnitudeImportance(p=1)


@register("l2", "L2 norm of each channel's weights across its whole dependency group")
def l2() -> tp.importance.Importance:
    return tp.importance.GroupMagnitudeImportance(p=2)


@register("bn", "absolute BatchNorm scale (gamma) of each channel, as in network slimming")
def bn() -> tp.importance.Importance:
    return tp.importance.BNScaleImportance()


@register("lamp", "layer-adaptive magnitude (LAMP) scores, comparable across layers")
def lamp() -> tp.importance.Importance:
    return tp.importance.LAMPImportance(p=2)


@register("taylor", "first-order Taylor estimate of the loss change (weight x gradient); needs --data", True)
def taylor() -> tp.importance.Importance:
    return tp.importance.GroupTaylorImportance()


@register("random", "random scores: the floor any real criterion has to beat")
def random() -> tp.importance.Importance:
    return tp.importance.RandomImportance()


def names() -> list[str]:
    return list(_CRITERIA)


def get_criterion(name: str) -> Criterion:
    """Return the criterion registered as `name`; unknown names fail listing the valid ones."""
    try:
        return _CRITERIA[name]
    except KeyError:
        raise ConfigError(f"unknown method '{name}'; choose one of: {', '.join(_CRITERIA)}") from None
