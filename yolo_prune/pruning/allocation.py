"""How a pruning budget is spread over the dependency groups: a registry of `Allocation` strategies by name.

`prune()` searches one variable of an allocation (a channel ratio, or a share of MACs to save) until the MACs target
is met, and asks the allocation what that value means for torch-pruning's pruner. A new allocation is one class here,
decorated with `@register`, plus its test; `PruneConfig`, the CLI's `--allocation` and `prune()` pick it up by name.

- `uniform`: every group loses the same share of its channels;
- `global`: channels are ranked across all groups by normalised importance (torch-pruning's global pruning);
- `sensitivity`: per-group shares from a sensitivity scan (see `yolo_prune.pruning.sensitivity`) that save a MACs
  budget at the least predicted loss (`budget.allocate`);
- `latency`: per-group widths from those the runtime runs fast (`yolo_prune.pruning.latency.width_table`), saving a
  share of the measured conv latency at the least L2 importance lost (`budget.choose_widths`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # listing the allocations must not load torch
    from torch import nn

from yolo_prune.errors import ConfigError
from yolo_prune.pruning.budget import allocate, choose_widths

CHANNEL_RATIO = "channel ratio"
MACS_BUDGET = "MACs budget"
LATENCY_BUDGET = "latency budget"


class Allocation(ABC):
    """One way to spread the budget. Subclasses set the class attributes and `pruner_args`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    variable: ClassVar[str] = CHANNEL_RATIO  # what the search varies
    needs_table: ClassVar[bool] = False  # built from a sensitivity table
    needs_widths: ClassVar[bool] = False  # built from a latency width table (`latency.width_table`)
    rounds_widths: ClassVar[bool] = False  # picks its own widths: torch-pruning's round_to must not round them again
    uses_table: ClassVar[bool] = False  # takes a sensitivity table when there is data to scan, works without one
    # rounded up to the runtime's channel block (and coarser ones, measured end to end) when a prune run times its
    # runtime and no --round-to is given (`speed.candidate_allocations`)
    in_runtime_blocks: ClassVar[bool] = False

    @classmethod
    def blocks_from_runtime(cls, round_to: int | None) -> bool:
        """Its widths are rounded to the runtime's channel block, which only the runtime's timings tell: an
        allocation `in_runtime_blocks` with no --round-to given."""
        return cls.in_runtime_blocks and round_to is None

    @property
    def linear(self) -> bool:
        """Costs fall about linearly in a budget, and with the square of the kept width for a channel ratio."""
        return self.variable != CHANNEL_RATIO

    def limit(self, max_layer_ratio: float) -> float:
        """The largest value the search may try."""
        return 1.0 if self.variable != CHANNEL_RATIO else max_layer_ratio

    @abstractmethod
    def pruner_args(self, value: float, model: nn.Module, max_layer_ratio: float) -> dict:
        """Keyword arguments for `torch_pruning.pruner.MetaPruner` that prune `model` at `value`."""

    def details(self, value: float) -> dict:
        """What the report records about the allocation at `value`, beyond its name."""
        return {}

    def unreachable_hint(self, round_to: int | None) -> str:
        """A suggestion appended to the error when the MACs target cannot be met."""
        return ""


_ALLOCATIONS: dict[str, type[Allocation]] = {}

# The defaults: the best measured recipe for what the user gives, the same for a MACs, speedup or latency target
# (docs/benchmarks.md, "Why the defaults").
DEFAULT_WITH_DATA = "sensitivity"
DEFAULT_WITHOUT_DATA = "latency"
DEFAULT_FOR_RATIO = "uniform"


def default_allocation(*, has_data: bool, has_ratio: bool) -> str:
    """The allocation a prune uses when none is named: the best measured one for what the user gave."""
    if has_ratio:
        return DEFAULT_FOR_RATIO
    return DEFAULT_WITH_DATA if has_data else DEFAULT_WITHOUT_DATA


def register(cls: type[Allocation]) -> type[Allocation]:
    """Class decorator: register an allocation under its `name`."""
    _ALLOCATIONS[cls.name] = cls
    return cls


def names() -> list[str]:
    return list(_ALLOCATIONS)


def get_allocation(name: str) -> type[Allocation]:
    """The allocation class registered as `name`; unknown names fail listing the valid ones."""
    try:
        return _ALLOCATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown --allocation '{name}'; choose one of: {', '.join(_ALLOCATIONS)}") from None


def create_allocation(
    name: str,
    table: dict | None = None,
    widths: dict | None = None,
    round_to: int | None = None,
    max_ratio: float | None = None,
) -> Allocation:
    """An instance of the allocation `name`; `table` is the sensitivity table and `widths` the latency width table
    (`latency.width_table`) for those that need or use one; `round_to` (the block) and `max_ratio` (how far beyond
    the scanned ratios a group may go) are for the sensitivity allocation, which rounds its kept widths up (the others
    leave `--round-to` to torch-pruning, or to their width table)."""
    cls = get_allocation(name)
    if cls.needs_widths:
        if widths is None:
            raise ConfigError(f"allocation '{name}' needs a latency width table (built by timing the model)")
        return cls(widths, table) if cls.uses_table else cls(widths)
    if not cls.needs_table:
        return cls()
    if table is None:
        raise ConfigError(f"allocation '{name}' needs a sensitivity table (--sensitivity FILE or --data to scan)")
    return cls(table, round_to, max_ratio) if cls is Sensitivity else cls(table)


@register
class Uniform(Allocation):
    name = "uniform"
    summary = "every group loses the same share of its channels"

    def pruner_args(self, value: float, model: nn.Module, max_layer_ratio: float) -> dict:
        return {"pruning_ratio": value, "global_pruning": False}

    def unreachable_hint(self, round_to: int | None) -> str:
        if not round_to:
            return ""
        return (
            "; with --round-to, every layer of one width jumps at once under uniform allocation: "
            "try --allocation global"
        )


@register
class Global(Allocation):
    name = "global"
    summary = "channels ranked across all groups by normalised importance"

    def pruner_args(self, value: float, model: nn.Module, max_layer_ratio: float) -> dict:
        return {"pruning_ratio": value, "global_pruning": True}


@register
class Sensitivity(Allocation):
    name = "sensitivity"
    summary = "per-group shares from a sensitivity scan, saving the MACs at the least predicted loss"
    variable = MACS_BUDGET
    needs_table = True
    in_runtime_blocks = True

    def __init__(self, table: dict, round_to: int | None = None, max_ratio: float | None = None):
        """`round_to`: each kept width rounded *up* to a multiple of it, never below the scan's share, so that the
        runtime's channel blocks are filled and the MACs search cuts the insensitive groups further. torch-pruning's
        own `round_to` rounds down, which takes channels from exactly the groups the scan protects (yolov8n-bccd,
        50% MACs, 30 epochs, seed 0: 0.5806 rounded down to 16, 0.5881 up to 16; up to 32, two seeds, 0.5914 at
        1.85x against 0.5943 at 1.63x unrounded; docs/benchmarks.md section 18). `max_ratio`: a budget the scanned
        ratios cannot meet goes on up to this ratio per group (`budget.allocate`); rounded-up widths of a narrow
        model need it (yolov8n-bccd's widths rounded up to 32 reach no lower than 49% of the MACs within the scan)."""
        try:
            table["groups"], table["ratios"]
        except (KeyError, TypeError) as e:
            raise ConfigError(f"not a sensitivity table ({type(e).__name__}: {e})") from None
        self.table = table
        self.round_to = round_to
        self.max_ratio = max_ratio
        self.rounds_widths = bool(round_to and round_to > 1)  # torch-pruning must not round them down again

    def limit(self, max_layer_ratio: float) -> float:
        """The budget at which every group is at its largest ratio. The groups' MACs shares overlap (a conv counts in
        the group of its outputs and in that of its inputs), so it is above 1 (1.94 x the largest ratio for yolov8n):
        a search capped at 1 stopped short of what rounded-up widths need."""
        largest = max(*self.table["ratios"], self.max_ratio or 0.0)
        return max(1.0, sum(g["macs_share"] for g in self.table["groups"]) * largest)

    def pruner_args(self, value: float, model: nn.Module, max_layer_ratio: float) -> dict:
        modules = dict(model.named_modules())
        ratios = {}
        for name, r in allocate(self.table, value, self.max_ratio).items():
            if r <= 0 or name not in modules:
                continue
            ratio = min(r, max_layer_ratio)
            if self.round_to:
                channels = modules[name].weight.shape[0]
                kept = min(channels, math.ceil(channels * (1 - ratio) / self.round_to) * self.round_to)
                if kept >= channels:
                    continue
                # torch-pruning keeps int(channels * (1 - ratio)) channels: half a channel of slack lands on `kept`
                ratio = 1.0 - (kept + 0.5) / channels
            ratios[modules[name]] = ratio
        return {"pruning_ratio": 0.0, "pruning_ratio_dict": ratios, "global_pruning": False}

    def details(self, value: float) -> dict:
        rounded = {"block": self.round_to} if self.round_to else {}
        return {"group_ratios": allocate(self.table, value, self.max_ratio), **rounded}


@register
class Latency(Allocation):
    """Block-aligned widths from the latency model (`latency.width_table`), chosen by what they cost in loss.

    With a sensitivity table (`--data`), the loss of a width is the scanned drop, interpolated between the scanned
    ratios, and steps are taken by loss per millisecond saved: HALP's knapsack with a measured loss. Without one,
    only L2 importance is known, which ranks channels within a layer but does not compare across layers in loss per
    millisecond, so steps are taken by normalised L2 importance per channel, as global pruning ranks, in whole
    blocks, and the head's groups only once every other group is at its narrowest (docs/benchmarks.md, "Why the
    defaults").
    """

    name = "latency"
    summary = (
        "widths in the runtime's channel blocks (timed); with --data the least scanned loss per ms saved, else "
        "global L2 ranking in blocks, the head last"
    )
    variable = LATENCY_BUDGET
    needs_widths = True
    rounds_widths = True
    uses_table = True

    def __init__(self, widths: dict, table: dict | None = None):
        try:
            widths["groups"], widths["total_ms"]
        except (KeyError, TypeError) as e:
            raise ConfigError(f"not a latency width table ({type(e).__name__}: {e})") from None
        self.widths = with_scanned_drops(widths, table) if table is not None else widths
        self.scanned = table is not None
        self.per = "ms" if self.scanned else "channel"  # what the loss is weighed against (`budget.choose_widths`)

    def _chosen(self, value: float) -> dict[str, int]:
        return choose_widths(self.widths, value, per=self.per)

    def pruner_args(self, value: float, model: nn.Module, max_layer_ratio: float) -> dict:
        modules = dict(model.named_modules())
        channels = {g["group"]: g["channels"] for g in self.widths["groups"]}
        # torch-pruning keeps int(channels * (1 - ratio)) channels: half a channel of slack lands on `width` exactly
        ratios = {
            modules[name]: 1.0 - (width + 0.5) / channels[name]
            for name, width in self._chosen(value).items()
            if width < channels[name] and name in modules
        }
        return {"pruning_ratio": 0.0, "pruning_ratio_dict": ratios, "global_pruning": False}

    def details(self, value: float) -> dict:
        loss = "sensitivity scan" if self.scanned else "L2 importance"
        block = {"block": self.widths.get("block"), "block_from": self.widths.get("block_from")}
        return {"runtime": self.widths.get("runtime"), "loss": loss, **block, "group_widths": self._chosen(value)}


def with_scanned_drops(widths: dict, table: dict) -> dict:
    """A copy of the width table whose options' drops are the sensitivity table's, linear between its ratios (0 at
    full width); groups the scan does not name keep their L2 drop scaled to the scan's (its median drop per channel)."""
    ratios = [0.0, *table["ratios"]]
    scanned = {g["group"]: [0.0, *(max(g["drop"][str(r)], 0.0) for r in table["ratios"])] for g in table["groups"]}

    def drop_at(points: list[float], r: float) -> float:
        for (r0, d0), (r1, d1) in zip(zip(ratios, points), zip(ratios[1:], points[1:])):
            if r <= r1:
                return d0 + (d1 - d0) * (r - r0) / (r1 - r0)
        return points[-1]  # beyond the largest scanned ratio: its drop

    groups = []
    for g in widths["groups"]:
        points = scanned.get(g["group"])
        options = [{**o, "drop": drop_at(points, o["ratio"]) if points else o["drop"]} for o in g["options"]]
        groups.append({**g, "options": options})
    return {**widths, "groups": groups, "loss": "sensitivity"}
