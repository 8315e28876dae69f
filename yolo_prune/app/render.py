"""Every table yolo_prune prints or writes, in one place: plain text for the terminal, Markdown for reports.

Each function takes what a run returns and gives back a string; the CLI only echoes it.
"""

from __future__ import annotations

from collections.abc import Sequence


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


# Metric keys of a measured point (see `train.validate`) -> label: box mAP for every task, then the task's own.
METRICS = {
    "map50": "mAP50",
    "map50_95": "mAP50-95",
    "mask_map50": "mask mAP50",
    "mask_map50_95": "mask mAP50-95",
    "pose_map50": "pose mAP50",
    "pose_map50_95": "pose mAP50-95",
}
METRIC_KEYS = tuple(METRICS)


def _metrics_of(points: list[dict]) -> list[str]:
    """The metric keys any of `points` has, in `METRICS` order."""
    return [k for k in METRICS if any(p.get(k) is not None for p in points)]


def cost_rows(report: dict) -> list[list[object]]:
    """Rows of the before/after summary for a prune report (`PruneReport.to_dict()` or report.json)."""
    before, after = report["before"], report["after"]
    rows = [
        [f"GMACs @{before['imgsz']}", gmacs(before["macs"]), gmacs(after["macs"]), after["macs"] / before["macs"]],
        ["params (M)", millions(before["params"]), millions(after["params"]), after["params"] / before["params"]],
    ]
    for key in _metrics_of([before, after]):
        b, a = before.get(key), after.get(key)
        rows.append([METRICS[key], b, a, (a / b) if a is not None and b else None])
    return rows


COST_HEADERS = ("", "before", "after", "after/before")


def layer_rows(before: list[dict], after: list[dict]) -> list[list[object]]:
    """Per top-level layer: index, block, output channels and parameters before and after."""
    return [
        [b["index"], a["type"], b["out_channels"], a["out_channels"], b["params"], a["params"]]
        for b, a in zip(before, after)
    ]


LAYER_HEADERS = ("layer", "block", "out ch before", "out ch after", "params before", "params after")


def history_rows(report: dict) -> tuple[tuple[str, ...], list[list[object]]]:
    """Headers and rows of the per-step table: the original, then every pruning step."""
    points = [report["before"], *report["history"]]
    keys = _metrics_of(points) or ["map50", "map50_95"]
    headers = ("stage", "MACs %", "GMACs", "params (M)", *(METRICS[k] for k in keys))
    rows = [
        [p["label"], round(100 * p["macs_fraction"], 1), gmacs(p["macs"]), millions(p["params"]), *map(p.get, keys)]
        for p in points
    ]
    return headers, rows


def prune_text(report) -> str:
    """Per-layer widths, the per-step history (with data or steps), the cost summary and where it wrote."""
    data = report.to_dict()
    parts = [render_table(LAYER_HEADERS, layer_rows(data["before"]["layers"], data["after"]["layers"]))]
    if len(data["history"]) > 1 or "map50_95" in data["after"]:
        parts.append(render_table(*history_rows(data)))
    parts.append(render_table(COST_HEADERS, cost_rows(data)))
    p = data["prune"]
    variable, value = report.search
    if p.get("speedup"):
        s = p["speedup"]
        per_batch = f" per batch of {s['batch']}" if s.get("batch", 1) > 1 else ""
        parts.append(
            f"speed on {s['runtime']}: {s['measured']:.2f}x end to end (target {s['target']:.2f}x; "
            f"{s['original_ms']:.2f} -> {s['pruned_ms']:.2f} ms{per_batch}, "
            f"{_timed_on(s['runtime'])} timed interleaved; "
            f"{len(s['rounds'])} round(s))"
        )
    elif p.get("latency_model"):
        lm = p["latency_model"]
        parts.append(
            f"latency model on {lm['runtime']}: convs {lm['before_ms']:.2f} -> {lm['after_ms']:.2f} ms "
            f"({lm['predicted_speedup']:.2f}x predicted; `yolo-prune bench` measures it end to end)"
        )
    parts.append(
        f"last step: {variable} {value:.3f} found in {len(p['trials'])} trial(s), {p['seconds']:.1f} s; "
        f"wrote {data['files']['weights']} and {data['files']['report']}"
    )
    return "\n\n".join(parts)


def unstructured_text(report: dict) -> str:
    b, a = report["before"], report["after"]
    rows = [
        ["GMACs", b["macs"] / 1e9, a["macs"] / 1e9],
        ["params (M)", b["params"] / 1e6, a["params"] / 1e6],
        ["nonzero params (M)", b["nonzero_params"] / 1e6, a["nonzero_params"] / 1e6],
        ["conv weight sparsity", b["sparsity"], a["sparsity"]],
        ["file (MB)", b["file_bytes"] / 1e6, a["file_bytes"] / 1e6],
        ["gzip file (MB)", b["gzip_bytes"] / 1e6, a["gzip_bytes"] / 1e6],
    ]
    for key, label in (("latency_ms", "ORT latency (ms, median)"), ("map50", "mAP50"), ("map50_95", "mAP50-95")):
        if a.get(key) is not None:
            rows.append([label, b.get(key), a.get(key)])
    table = render_table(("", "before", "after"), rows)
    return f"{table}\n\n{report['note']}\nwrote {report['files']['weights']} and {report['files']['report']}"


def sensitivity_text(table: dict) -> str:
    """The most and least sensitive groups (by the drop at the middle ratio) and where the table went."""
    mid = str(table["ratios"][len(table["ratios"]) // 2])
    ranked = sorted(table["groups"], key=lambda g: g["drop"][mid])
    headers = ("group", "channels", "MACs share", *(f"drop @{r}" for r in table["ratios"]))

    def row(g: dict) -> list:
        return [g["group"], g["channels"], g["macs_share"], *(g["drop"][str(r)] for r in table["ratios"])]

    return (
        f"most sensitive (by drop at ratio {mid}):\n"
        + render_table(headers, [row(g) for g in ranked[::-1][:8]])
        + "\n\nleast sensitive:\n"
        + render_table(headers, [row(g) for g in ranked[:8]])
        + f"\n\n{len(table['groups'])} groups scanned in {table['seconds']:.0f} s; "
        f"wrote {table['files']['table']} and {table['files']['plot']}"
    )


def train_text(report: dict, imgsz: int, split: str) -> str:
    return (
        f"{report['files']['weights']}: {report['macs'] / 1e9:.3f} GMACs @{imgsz}, mAP50 {report['map50']:.4f}, "
        f"mAP50-95 {report['map50_95']:.4f} [{split}], {report['seconds'] / 60:.1f} min"
    )


def val_text(result: dict, model: str, data: str) -> str:
    rows = [
        [c["name"], c["instances"], c["precision"], c["recall"], c["map50"], c["map50_95"]] for c in result["per_class"]
    ]
    rows.append(["all", None, result["precision"], result["recall"], result["map50"], result["map50_95"]])
    table = render_table(("class", "instances", "P", "R", "box mAP50", "box mAP50-95"), rows)
    scores = ", ".join(f"{METRICS[k]} {result[k]:.4f}" for k in _metrics_of([result]))
    return f"{table}\n\n{model} on {data} [{result['split']}] @{result['imgsz']}: {scores}"


def demo_text(result: dict, report_md: str) -> str:
    extra = [result["metric_label"]] if result.get("metric_label") else []
    rows = [
        [s["model"], s["gmacs"], s["params_m"], s["map50"], s["map50_95"]]
        + ([s["task_map50_95"]] if extra else [])
        + [s["latency_ms"], s["speedup"]]
        for s in result["summary"]
    ]
    headers = ("model", "GMACs", "params (M)", "mAP50", "mAP50-95", *extra, "ORT ms", "speedup")
    table = render_table(headers, rows)
    return f"{table}\n\n{result['seconds'] / 60:.1f} min; report: {report_md}"


def info_text(result: dict) -> str:
    rows = [[r["index"], r["type"], r["out_channels"], r["params"]] for r in result["layers"]]
    return (
        render_table(("layer", "block", "out ch", "params"), rows)
        + f"\n\n{result['model']}: {result['macs'] / 1e9:.3f} GMACs @{result['imgsz']}, "
        f"{result['params'] / 1e6:.3f} M params"
    )


def synth_text(manifest: dict, data_yaml) -> str:
    images, boxes = manifest["images"], manifest["boxes"]
    splits = render_table(("split", "images", "boxes"), [[s, images[s], sum(boxes[s].values())] for s in images])
    rows = [[i, name, *(boxes[s][name] for s in images)] for i, name in enumerate(manifest["params"]["classes"])]
    classes = render_table(("id", "class", *(f"{s} boxes" for s in images)), rows)
    return f"{splits}\n\n{classes}\n\ndata: {data_yaml}"


def export_text(report) -> str:
    """One row per exported file (a format's, then its INT8), or per format that could not be made, with its parity
    check, size, and where asked its speed against the original and its mAP."""
    outcomes = report.outcomes
    timed = any(o.timing for o in outcomes)
    validated = any(o.map50_95 is not None for o in outcomes)
    rows = []
    for o in outcomes:
        r, p = o.result, o.result.parity if o.result else None
        checked = [f"{p.relative_diff:.1e}", "yes" if p.passed else "NO"] if p else [None, None]
        row = [o.format, str(r.file) if r else None, r.size_bytes / 1e6 if r else None, *checked]
        if timed:
            t = o.timing or {}
            row += [t.get("runtime"), t.get("original_ms"), t.get("ms"), t.get("speedup")]
        if validated:
            row.append(o.map50_95)
        rows.append(row)
    headers = ["format", "file", "size MB", "parity (of range)", "pass"]
    if timed:
        headers += ["runtime", "original ms", "ms", "speedup"]
    if validated:
        headers.append("mAP50-95")
    text = render_table(headers, rows)
    notes = [f"{o.format}: {o.error}" for o in outcomes if o.error]
    if any(o.result and o.result.parity is None and "int8" in o.format for o in outcomes):
        notes.append("INT8 differs from FP32 by design (not parity-checked): measure its accuracy with --data")
    if timed:
        notes.append(f"timed against {report.against}, interleaved, each in its format's runtime (float32 unless INT8)")
    return text + "".join(f"\n\n{n}" for n in notes)


def _timed_on(runtime: str) -> str:
    """What `runtime` times (e.g. "exported ONNX"), as it describes itself."""
    from yolo_prune.deploy.runtimes import RUNTIMES

    return RUNTIMES[runtime].timed if runtime in RUNTIMES else "models"


def bench_text(rows: Sequence, imgsz: int, runs: int, warmup: int, runtime: str, batch: int = 1) -> str:
    """The bench table; `runtime` describes where it was timed (`Runtime.describe`)."""
    table = [
        [
            r.model,
            r.precision,
            None if r.macs is None else r.macs / 1e9,
            None if r.params is None else r.params / 1e6,
            None if r.file_bytes is None else r.file_bytes / 1e6,
            r.median_ms,
            r.p90_ms,
            r.speedup,
        ]
        for r in rows
    ]
    headers = ("model", "precision", f"GMACs @{imgsz}", "params M", "size MB", "median ms", "p90 ms", "speedup")
    timed = "the timed file" if any(r.file_bytes is not None for r in rows) else "none (PyTorch modules timed)"
    return render_table(headers, table) + (
        f"\n\n{runtime}, batch {batch}, {runs} interleaved runs after {warmup} warm-up; size: {timed}; "
        "MACs: PyTorch count (.pt) or ONNX graph (.onnx)"
    )


def convert_text(summary) -> str:
    images = render_table(("split", "images"), list(summary.images.items()))
    rows = [[i, name, summary.boxes_per_class[name]] for i, name in enumerate(summary.names)]
    classes = render_table(("id", "class", "boxes"), rows)
    counts = [
        ["boxes written", summary.boxes_written],
        ["boxes clipped to the image", summary.boxes_clipped],
        ["boxes dropped (under 1 px)", summary.boxes_dropped],
        ["objects skipped (class, crowd)", summary.objects_skipped],
        ["files skipped", summary.files_skipped],
    ]
    return f"{images}\n\n{classes}\n\n{render_table(('', 'count'), counts)}\n\nwrote {summary.data_yaml}"
