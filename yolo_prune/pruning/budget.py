"""The two knapsacks that spend a pruning budget over dependency groups, greedily, at the least predicted loss.

- `allocate`: per-group channel ratios from a sensitivity scan's table that save a share of the MACs (the
  `sensitivity` allocation), beyond the scanned ratios only once every group is at the largest;
- `choose_widths`: per-group widths from the latency model's width table (`latency.width_table`) that save a share of
  the largest conv-latency saving (the `latency` allocation).

Both take the same sequence of steps for every budget and cut it where the budget is met, so a larger budget never
keeps what a smaller one removed. Plain Python: no torch.
"""

from __future__ import annotations

# Where the runtime shows no gain (a small image, flat timings), the greedy still needs an order that meets a MACs
# target: each option's saving counts its share of the MACs as well, at this weight against its share of the time.
MACS_WEIGHT = 0.1


def allocate(table: dict, macs_to_save: float, max_ratio: float | None = None) -> dict[str, float]:
    """Per-group ratios (from 0 and the scanned ratios) saving at least `macs_to_save` (a fraction of the total MACs)
    with the smallest predicted drop, by greedy marginal cost (drop per MAC saved), MACs savings taken as additive.

    `max_ratio` above the largest scanned ratio lets a budget the scan cannot meet go on: once every group is at the
    largest scanned ratio (never before, so what the scan can meet is allocated as without it), groups step on to
    `max_ratio`, their drop carried on along their last scanned segment (or the mean slope, if steeper). Widths
    rounded up to a runtime's block keep more than the scanned shares, and a narrow model then needs these steps to
    reach its target.

    The last upgrade is taken fractionally (its ratio interpolated) so that the savings meet the budget exactly,
    which makes the result a continuous function of the budget. Returns group name -> ratio (0 for groups left alone).
    """
    ratios = [0.0, *sorted(table["ratios"])]
    last_scanned = len(ratios) - 1
    if max_ratio is not None and max_ratio > ratios[-1]:
        ratios.append(max_ratio)
    choice = {g["group"]: 0 for g in table["groups"]}
    by_name = {g["group"]: g for g in table["groups"]}

    def drop(g: dict, i: int) -> float:
        if i <= last_scanned:
            return g["drop"][str(ratios[i])] if i else 0.0
        # beyond the scan: on along the last scanned segment, or the mean slope from full width where that is steeper
        # (a last segment flattened by the scan's noise must not make the step free)
        d0, d1 = drop(g, last_scanned - 1), drop(g, last_scanned)
        r0, r1 = ratios[last_scanned - 1], ratios[last_scanned]
        return d1 + max((d1 - d0) / (r1 - r0), d1 / r1, 0.0) * (ratios[i] - r1)

    def cost(g: dict, i: int) -> tuple[float, float]:
        return drop(g, i), g["macs_share"] * ratios[i]

    saved = 0.0
    while saved < macs_to_save:
        best, best_rate = None, None
        for name, i in choice.items():
            if i + 1 >= len(ratios):
                continue
            g = by_name[name]
            (d0, s0), (d1, s1) = cost(g, i), cost(g, i + 1)
            if s1 <= s0:
                continue
            rate = (i + 1 > last_scanned, max(d1 - d0, 0.0) / (s1 - s0))  # steps beyond the scan come last
            if best_rate is None or rate < best_rate:
                best, best_rate = name, rate
        if best is None:
            break  # every group is at its largest ratio
        g = by_name[best]
        step = cost(g, choice[best] + 1)[1] - cost(g, choice[best])[1]
        if saved + step > macs_to_save:  # take only the part of this upgrade that the budget needs
            lo = ratios[choice[best]]
            result = {name: ratios[i] for name, i in choice.items()}
            result[best] = lo + (ratios[choice[best] + 1] - lo) * (macs_to_save - saved) / step
            return result
        saved += step
        choice[best] += 1
    return {name: ratios[i] for name, i in choice.items()}


def choose_widths(table: dict, share_to_save: float, per: str = "ms") -> dict[str, int]:
    """The width of every group after saving `share_to_save` (0 to 1) of the largest saving the table offers, at the
    least importance lost, one block down at a time. `per="ms"`: greedy by importance lost per unit saved (HALP's
    knapsack, greedy). `per="channel"`: by importance lost per channel removed, i.e. global ranking by normalised
    importance, in whole blocks, the head's groups (`"head"`) last: L2 norms rank its channels cheap, and cutting its
    branches to half cost 4-5 points of mAP50-95 that keeping them bought back (docs/benchmarks.md section 10). A
    saving is the share of the conv latency plus `MACS_WEIGHT` times the share of the MACs, so that flat timings
    still order the steps; at 1 every group is at its narrowest option.

    The same sequence of steps is taken for every budget, cut where the budget is met, so a larger budget never
    keeps a channel a smaller one removed. Returns group name -> width (full width for groups left alone).
    """
    options = {g["group"]: g["options"] for g in table["groups"]}
    heads = {g["group"]: bool(g.get("head")) for g in table["groups"]}
    total_ms, total_macs = table["total_ms"], table.get("total_macs") or 1

    def saving(option: dict) -> float:
        return option["saved_ms"] / total_ms + MACS_WEIGHT * option.get("saved_macs", 0) / total_macs

    largest = sum(max(saving(o) for o in group) for group in options.values())
    position = dict.fromkeys(options, 0)
    saved, budget = 0.0, share_to_save * largest
    while saved < budget - 1e-12:
        best, best_rate = None, None
        for name, i in position.items():
            # the next option that saves more (one that saves nothing is stepped over, not a dead end)
            later = [j for j in range(i + 1, len(options[name])) if saving(options[name][j]) > saving(options[name][i])]
            if not later:
                continue
            j = later[0]
            gain = saving(options[name][j]) - saving(options[name][i])
            lost = max(options[name][j]["drop"] - options[name][i]["drop"], 0.0)
            if per == "ms":
                rate = (False, lost / gain)
            else:  # per channel; the head's groups only once no other group can go narrower
                rate = (heads[name], lost / (options[name][i]["width"] - options[name][j]["width"]))
            if best_rate is None or rate < best_rate:
                best, best_rate = (name, j, gain), rate
        if best is None:
            break  # every group is at its narrowest option
        name, j, gain = best
        position[name] = j
        saved += gain
    return {name: options[name][i]["width"] for name, i in position.items()}
