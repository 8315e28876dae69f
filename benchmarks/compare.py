"""Prove it: the best preset against what a user would do instead, at the same MACs and the same epoch budget.

Starting from a trained detector, for every MACs target (fractions of the original):

    control           the unpruned model fine-tuned for the same epochs (target-independent)
    best-T            this project's best preset: L2 importance, sensitivity allocation (scan once, reused)
    uniform-l2-T      uniform one-shot L2 pruning, the Torch-Pruning YOLOv8 example's recipe
    scratch-T         the same YAML with its width scaled to the same MACs, trained from scratch
    unstructured-T    global unstructured L1 at the parameter sparsity of best-T (zeros held while fine-tuning)
    <official>        official small YAMLs (yolo11n, yolo26n) trained from scratch, at their own MACs

From-scratch rows train for `--scratch-epochs` (the baseline's epochs plus the fine-tune budget). Every row is one
`yolo-prune` command, printed and stored with its result; finished rows are cached (OUT/<row>.json) and an
interrupted one continues where it stopped, so the benchmark can be killed and rerun. Then every model is exported
to ONNX and timed side by side in onnxruntime (one interleaved `yolo-prune bench`, cached in OUT/latency.json).

    python benchmarks/compare.py --data scratch/bccd/data.yaml --weights ../shared/weights/yolov8n-bccd.pt \
        --out scratch/bench-compare --targets 0.5,0.33 --epochs 15 --scratch-epochs 115 --imgsz 384 --jobs 2 \
        --doc docs/benchmarks.md

Writes OUT/results.json, OUT/results.md (the table) and OUT/pareto.png (mAP50-95 against MACs and latency); with
`--doc`, the same table, plot and command replace the marked section of that Markdown file. `--smoke` runs a tiny
version (synthetic data, the committed demo weights, 1 epoch, one target) that the tests exercise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recover import CLI, run_row  # noqa: E402  (same folder: one row runner for both benchmarks)

REPO = Path(__file__).resolve().parents[1]
DOC_START = "<!-- compare.py: start -->"
DOC_END = "<!-- compare.py: end -->"


@dataclass
class Row:
    """One line of the table: a `yolo-prune` command, built when its inputs (other rows) are known."""

    name: str
    method: str
    target: float | None  # MACs fraction asked for; None for rows at their own MACs
    argv: Callable[[dict[str, dict]], list[str]]
    needs: list[str] = field(default_factory=list)
    model_file: str | None = None  # the row's model, relative to its folder, for the latency stage
    from_scratch: bool = False  # a long training from random weights


def scaled_yaml(base: str, fraction: float, imgsz: int, nc: int, out: Path) -> tuple[Path, float]:
    """Write `base` with its width multiplier scaled so the model's MACs are closest to `fraction` of the original.

    Channel counts are rounded up to multiples of 8 by Ultralytics, so MACs move in steps: the width is bisected on a
    grid of 1/400 of the original (MACs never fall as the width grows) and the closer of the two steps around
    `fraction` wins. The achieved fraction is returned with the file.
    """
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from yolo_prune.pruning.cost import measure

    spec = yaml_model_load(base)
    scale = spec.get("scale") or next(iter(spec["scales"]))
    depth, width, max_channels = spec["scales"][scale]

    def fraction_at(w: float) -> float:
        trial = {**spec, "scales": {scale: [depth, w, max_channels]}}
        return measure(DetectionModel(trial, nc=nc, verbose=False), imgsz).macs / reference

    reference = measure(DetectionModel(spec, nc=nc, verbose=False), imgsz).macs
    widths = [round(width * k / 400, 5) for k in range(20, 401)]  # 5% .. 100% of the original width
    lo, hi = 0, len(widths) - 1  # find the first width whose MACs reach `fraction`
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fraction_at(widths[mid]) >= fraction else (mid + 1, hi)
    candidates = {widths[i]: fraction_at(widths[i]) for i in {max(lo - 1, 0), lo}}
    best, achieved = min(candidates.items(), key=lambda kv: abs(kv[1] - fraction))
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{Path(base).stem}-w{best:g}.yaml"
    spec = {k: v for k, v in spec.items() if k not in ("yaml_file", "scale")}
    spec["scales"] = {scale: [depth, best, max_channels]}
    path.write_text(
        f"# {Path(base).name} with width {best:g} (was {width:g}): {100 * achieved:.1f}% of its MACs at {imgsz} px\n"
        + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)
    )
    return path, achieved


def build_rows(args: argparse.Namespace, names_count: int) -> list[Row]:
    """Every row of the benchmark, in an order where each row comes after the rows it needs."""
    out = Path(args.out)
    common = ["--data", args.data, "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--workers", "2"]
    budget = ["--epochs", str(args.epochs)]
    scan = args.sensitivity or str(out / "sensitivity" / "sensitivity.json")
    rows = [
        Row("baseline", "baseline (trained, untouched)", None,
            lambda r: ["val", args.weights, "--data", args.data, "--imgsz", str(args.imgsz), "--json"]),
        Row("control", "control: unpruned + same fine-tune", None,
            lambda r: ["train", args.weights, *common, *budget, "--out", "{out}"], model_file="model.pt"),
    ]  # fmt: skip
    if not args.sensitivity:
        rows.append(
            Row("sensitivity", "sensitivity scan (shared by best-*)", None,
                lambda r: ["sensitivity", args.weights, "--data", args.data, "--imgsz", str(args.imgsz),
                           "--batches", str(args.scan_batches), "--out", "{out}"])
        )  # fmt: skip
    for target in args.targets:
        tag = f"{round(100 * target)}"
        prune = ["prune", args.weights, "--target-macs", str(target), *common]
        width_yaml = lambda t=target: str(scaled_yaml(args.base_yaml, t, args.imgsz, names_count, out / "yaml")[0])  # noqa: E731
        rows += [
            Row(f"best-{tag}", "yolo_prune best: l2 + sensitivity allocation", target,
                lambda r, p=prune: [*p, "--method", "l2", "--allocation", "sensitivity", "--sensitivity", scan,
                                    *budget, "--out", "{out}"],
                needs=[] if args.sensitivity else ["sensitivity"], model_file="pruned.pt"),
            Row(f"uniform-l2-{tag}", "uniform one-shot L2 (Torch-Pruning example)", target,
                lambda r, p=prune: [*p, "--method", "l2", "--allocation", "uniform", *budget, "--out", "{out}"],
                model_file="pruned.pt"),
            Row(f"scratch-{tag}", "same-MACs width-scaled YAML from scratch", target,
                lambda r, y=width_yaml: ["train", y(), *common, "--epochs", str(args.scratch_epochs), "--out", "{out}"],
                model_file="model.pt", from_scratch=True),
            Row(f"unstructured-{tag}", "unstructured L1 at best's parameter sparsity", target,
                lambda r, t=tag: ["prune", args.weights, "--unstructured", f"{sparsity(r, t):.3f}", *common, *budget,
                                  "--out", "{out}"],
                needs=[f"best-{tag}", "control"], model_file="pruned.pt"),
        ]  # fmt: skip
    for official in args.official:
        yaml_file, _, trained = official.partition("=")
        name = Path(yaml_file).stem
        if trained:  # already trained from scratch with the baseline's recipe: give it the fine-tune budget
            rows.append(
                Row(name, f"official {name}: baseline recipe + same fine-tune", None,
                    lambda r, w=trained: ["train", w, *common, *budget, "--out", "{out}"], model_file="model.pt")
            )  # fmt: skip
        else:
            rows.append(
                Row(name, f"official {name} from scratch", None,
                    lambda r, y=yaml_file: ["train", y, *common, "--epochs", str(args.scratch_epochs),
                                            "--out", "{out}"],
                    model_file="model.pt", from_scratch=True)
            )  # fmt: skip
    return rows


def sparsity(results: dict[str, dict], tag: str) -> float:
    """The share of parameters that the structured best row removed: the unstructured row zeroes as many."""
    return 1.0 - results[f"best-{tag}"]["params"] / results["control"]["params"]


def run_all(rows: list[Row], out: Path, jobs: int) -> dict[str, dict]:
    """Run the rows, `jobs` at a time; a row starts once the rows it needs have finished."""
    results: dict[str, dict] = {}
    futures: dict[str, Future] = {}
    lock = threading.Lock()

    def work(row: Row) -> dict:
        for need in row.needs:
            futures[need].result()
        with lock:
            known = dict(results)
        cached = out / f"{row.name}.json"  # a finished row needs no command (building one may cost a search)
        result = json.loads(cached.read_text()) if cached.exists() else run_row(row.name, row.argv(known), out)
        with lock:
            results[row.name] = result
        return result

    # The long from-scratch trainings go first (official YAMLs, the largest, before the scaled ones) so they overlap
    # the rest. A row waits only on rows submitted before it (a from-scratch row needs nothing), and the pool takes
    # work in order, so this cannot deadlock.
    order = sorted(rows, key=lambda row: (not row.from_scratch, row.from_scratch and row.target is not None))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for row in order:
            futures[row.name] = pool.submit(work, row)
        for future in futures.values():
            future.result()
    return {row.name: results[row.name] for row in rows}


def latency(rows: list[Row], results: dict[str, dict], args: argparse.Namespace) -> dict[str, dict]:
    """onnxruntime latency of every row's model next to the baseline's, cached until the set of models changes."""
    out = Path(args.out)
    models = {"baseline": args.weights}
    models.update({r.name: str(out / r.name / r.model_file) for r in rows if r.model_file and r.name in results})
    cache = out / "latency.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached["models"] == models:
            return cached["rows"]
    argv = ["bench", *models.values(), "--imgsz", str(args.imgsz), "--runs", str(args.bench_runs), "--json"]
    print("[latency] yolo-prune " + shlex.join(argv), flush=True)
    done = subprocess.run([*CLI, *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"[latency] failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    report = json.loads(done.stdout)
    timed = {name: entry for name, entry in zip(models, report["rows"])}
    record = {"models": models, "command": "yolo-prune " + shlex.join(argv), "rows": timed}
    cache.write_text(json.dumps(record, indent=2) + "\n")
    return timed


def table(rows: list[Row], results: dict[str, dict], timing: dict[str, dict]) -> str:
    """The Markdown table: cost, accuracy, drops against baseline and control, latency, wall time."""
    base, control = results["baseline"], results["control"]
    base_macs, base_params = control["macs"], control["params"]
    base_ms = timing.get("baseline", {}).get("median_ms")
    lines = [
        "| row | method | target | MACs % | params (M) | mAP50 | mAP50-95 | vs baseline | vs control "
        "| latency median / p90 (ms) | speedup | wall (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = results.get(row.name)
        if r is None or "map50_95" not in r:
            continue
        macs = r.get("macs") or base_macs
        params = r.get("params") or base_params
        t = timing.get(row.name, {})
        ms = f"{t['median_ms']:.1f} / {t['p90_ms']:.1f}" if t else "-"
        speedup = f"{base_ms / t['median_ms']:.2f}x" if t and base_ms else "-"
        target = f"{100 * row.target:.0f}%" if row.target else "-"
        lines.append(
            f"| {row.name} | {row.method} | {target} | {100 * macs / base_macs:.1f} | {params / 1e6:.2f} "
            f"| {r['map50']:.4f} | {r['map50_95']:.4f} | {100 * (r['map50_95'] - base['map50_95']):+.1f} "
            f"| {100 * (r['map50_95'] - control['map50_95']):+.1f} | {ms} | {speedup} | {r['wall_s'] / 60:.1f} |"
        )
    return "\n".join(lines)


def pareto_plot(rows: list[Row], results: dict[str, dict], timing: dict[str, dict], path: Path) -> None:
    """mAP50-95 against MACs (left) and against onnxruntime latency (right), one marker per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base_macs = results["control"]["macs"]
    styles = {"best": ("o", "tab:red"), "uniform-l2": ("s", "tab:blue"), "scratch": ("^", "tab:green"),
              "unstructured": ("x", "tab:purple")}  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for row in rows:
        r = results.get(row.name)
        if r is None or "map50_95" not in r:
            continue
        family = row.name.rsplit("-", 1)[0] if row.target else row.name
        marker, color = styles.get(family, ("D", "black" if row.name in ("baseline", "control") else "tab:orange"))
        x_macs = 100 * (r.get("macs") or base_macs) / base_macs
        x_ms = timing.get(row.name, {}).get("median_ms")
        for ax, x in ((axes[0], x_macs), (axes[1], x_ms)):
            if x is None:
                continue
            ax.scatter(x, r["map50_95"], marker=marker, color=color, s=50)
            ax.annotate(row.name, (x, r["map50_95"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes[0].set_xlabel("MACs (% of the original)")
    axes[1].set_xlabel("onnxruntime CPU latency, median (ms)")
    for ax in axes:
        ax.set_ylabel("mAP50-95 (val)")
        ax.grid(alpha=0.3)
    fig.suptitle("Same fine-tune budget for every pruned row; from-scratch rows get baseline epochs + budget")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_doc(doc: Path, section: str) -> None:
    """Replace the marked section of `doc` with `section` (appended, with its markers, when there is none yet)."""
    text = doc.read_text() if doc.exists() else ""
    block = f"{DOC_START}\n{section.rstrip()}\n{DOC_END}"
    if DOC_START in text and DOC_END in text:
        head, rest = text.split(DOC_START, 1)
        text = head + block + rest.split(DOC_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


def smoke_setup(args: argparse.Namespace) -> None:
    """Tiny inputs: synthetic shapes, the committed demo weights, one epoch, one target, few timed runs."""
    from yolo_prune.data.synthetic import generate

    out = Path(args.out)
    args.data = str(generate(out / "data", n_train=24, n_val=8, imgsz=64))
    args.weights = str(REPO / "weights" / "demo-yolov8n.pt")
    args.targets, args.official = [0.5], ["yolo11n.yaml"]
    args.epochs, args.scratch_epochs, args.imgsz, args.batch = 1, 1, 64, 8
    args.scan_batches, args.bench_runs = 1, 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Dataset YAML (e.g. BCCD converted with `yolo-prune convert`).")
    parser.add_argument("--weights", help="The trained detector to prune.")
    parser.add_argument("--base-yaml", default="yolov8n.yaml", help="YAML of the weights, for the scratch rows.")
    parser.add_argument("--out", default="scratch/bench-compare")
    parser.add_argument("--targets", default="0.5,0.33", type=lambda s: [float(t) for t in s.split(",")])
    parser.add_argument(
        "--official",
        default="yolo11n.yaml,yolo26n.yaml",
        type=lambda s: s.split(",") if s else [],
        help="Official YAMLs trained from scratch for --scratch-epochs; YAML=CHECKPOINT instead fine-tunes a "
        "checkpoint already trained from that YAML with the baseline's recipe for --epochs (the control's schedule).",
    )
    parser.add_argument("--epochs", type=int, default=15, help="Fine-tune budget of every pruned row and control.")
    parser.add_argument("--scratch-epochs", type=int, default=115, help="Epochs of from-scratch rows.")
    parser.add_argument("--imgsz", type=int, default=384)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=1, help="Rows run at the same time.")
    parser.add_argument("--sensitivity", help="An existing sensitivity.json of --weights (else scanned once).")
    parser.add_argument("--scan-batches", type=int, default=4)
    parser.add_argument("--bench-runs", type=int, default=50)
    parser.add_argument("--doc", type=Path, help="Markdown file whose marked section receives the results.")
    parser.add_argument("--smoke", action="store_true", help="Tiny version on synthetic data (for the tests).")
    args = parser.parse_args(argv)
    if args.smoke:
        smoke_setup(args)
    elif not (args.data and args.weights):
        parser.error("--data and --weights are required (or --smoke)")
    return args


def main(argv: list[str] | None = None) -> dict:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    command = "python benchmarks/compare.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import yaml

    names_count = len(yaml.safe_load(Path(args.data).read_text())["names"])
    rows = build_rows(args, names_count)
    results = run_all(rows, out, args.jobs)
    timing = latency(rows, results, args)
    md = table(rows, results, timing)
    pareto_plot(rows, results, timing, out / "pareto.png")
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}"
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    summary = {"date": date, "machine": machine, "command": command, "rows": results, "latency": timing}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "results.md").write_text(md + "\n")
    print(md)
    if args.doc:
        shutil.copyfile(out / "pareto.png", args.doc.parent / "compare-pareto.png")
        commands = "\n".join(f"    {r['command']}" for r in results.values())
        bench_command = json.loads((out / "latency.json").read_text())["command"]
        update_doc(
            args.doc,
            f"Produced by `{command}` on {date} ({machine}).\n\n{md}\n\n![Pareto](compare-pareto.png)\n\n"
            f"Each row's own command:\n\n{commands}\n\nLatency: `{bench_command}`",
        )
    return summary


if __name__ == "__main__":
    main()
