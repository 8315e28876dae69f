"""Readable tables and JSON for results. This module only formats and writes what the stages return."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from yolo_prune.atomic import write_text


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned numbers and left-aligned text."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: Sequence[str], raw: Sequence[object] | None = None) -> str:
        out = []
        for i, v in enumerate(values):
            numeric = raw is not None and isinstance(raw[i], (int, float)) and not isinstance(raw[i], bool)
            out.append(v.rjust(widths[i]) if numeric else v.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(c, r) for c, r in zip(cells, rows))])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "| " + " | ".join(headers) + " |"
    sep = "|" + "|".join("---" for _ in headers) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join([head, sep, *body])


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def gmacs(macs: int) -> float:
    return macs / 1e9


def millions(n: int) -> float:
    return n / 1e6


def cost_rows(report: dict) -> list[list[object]]:
    """Rows of the before/after summary for a prune report (see `pipeline.run_prune`)."""
    before, after = report["before"], report["after"]
    rows = [
        [f"GMACs @{before['imgsz']}", gmacs(before["macs"]), gmacs(after["macs"]), after["macs"] / before["macs"]],
        ["params (M)", millions(before["params"]), millions(after["params"]), after["params"] / before["params"]],
    ]
    for key, label in (("map50", "mAP50"), ("map50_95", "mAP50-95")):
        if before.get(key) is not None or after.get(key) is not None:
            b, a = before.get(key), after.get(key)
            rows.append([label, b, a, (a / b) if a is not None and b else None])
    return rows


COST_HEADERS = ("", "before", "after", "after/before")


def layer_rows(before: list[dict], after: list[dict]) -> list[list[object]]:
    """Per top-level layer: index, block, output channels and parameters before and after."""
    return [
        [b["index"], a["type"], b["out_channels"], a["out_channels"], b["params"], a["params"]]
        for b, a in zip(before, after)
    ]


LAYER_HEADERS = ("layer", "block", "out ch before", "out ch after", "params before", "params after")


def write_json(path: str | Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def history_rows(report: dict) -> tuple[tuple[str, ...], list[list[object]]]:
    """Headers and rows of the per-step table: the original, then every pruning step."""
    points = [report["before"], *report["history"]]
    headers = ("stage", "MACs %", "GMACs", "params (M)", "mAP50", "mAP50-95")
    rows = [
        [
            p["label"],
            round(100 * p["macs_fraction"], 1),
            gmacs(p["macs"]),
            millions(p["params"]),
            p.get("map50"),
            p.get("map50_95"),
        ]
        for p in points
    ]
    return headers, rows
