"""Prove it: the default recipe against what a user would do instead, at the same cost and epoch budget, per seed.

Starting from a trained detector (--weights), for every target: a MACs fraction T (0.5) or a speedup X (1.4x):

    control           the unpruned model fine-tuned for the same epochs
    best-T, best-Xx   this project's default recipe with data (`yolo-prune prune --data`: the sensitivity allocation
                      in the runtime's channel blocks, for a MACs or a speed target; the scan cached),
                      pruned once and fine-tuned once per seed
    free-T, free-Xx   the default recipe without data (`yolo-prune prune` without --data: the `latency` allocation,
                      head cut last), pruned once and fine-tuned per seed like best: does giving the tool data pay?
                      (not in the default --rows: select it)
    uniform-l2-T      uniform one-shot L2 pruning, the Torch-Pruning YOLOv8 example's recipe (at a speedup: the
                      uniform ratio that runs that fast, measured end to end)
    scratch-T         the same YAML with its width scaled to the same MACs, trained from scratch
    unstructured-T    global unstructured L1 at the parameter sparsity of best-T (zeros held while fine-tuning)
    <official>        official small models: YAML=CHECKPOINT (already trained with the baseline's recipe) gets the
                      fine-tune budget like the control; a bare YAML is trained from scratch. A checkpoint is also
                      pruned by the default recipe at every --official-targets (<official>-best-T).

Every trained row runs once per --seed (from-scratch rows for the first --scratch-seeds seeds), and the table shows
the mean with every seed's value. A structured row is pruned once (`prune ... --epochs 0`: the pruned network does
not depend on the seed) and its pruned.pt fine-tuned by `yolo-prune train` per seed, the same trainer and recipe as a
prune run's own fine-tuning. Every job is one `yolo-prune` command, printed and stored with its result; finished
jobs are cached (OUT/<job>.json) and an interrupted one continues where it stopped, so the benchmark can be killed
and rerun. Then every row's model (first seed) is exported to ONNX and timed side by side in onnxruntime at every
--bench-imgsz (one interleaved `yolo-prune bench` per size, cached in OUT/latency.json until the models, their
files or the bench options change). Prunes that time the network end to end (a speed target, and the default
recipe's probe of the runtime's blocks at any target) run first, one at a time, before any other job shares the
machine.

    python benchmarks/compare.py --data scratch/bccd/data.yaml --weights ../shared/weights/yolov8n-bccd.pt \
        --out scratch/frontier --targets 0.5,0.33 --seeds 0,1 --jobs 2 --bench-imgsz 384,640 \
        --official yolo11n.yaml=../shared/weights/yolo11n-bccd.pt,yolo26n.yaml=../shared/weights/yolo26n-bccd.pt \
        --official-targets 1.4x,0.5 --rows baseline,control,best,uniform,unstructured,official --doc docs/benchmarks.md

Writes OUT/results.json, OUT/results.md (the table and the check against --reference) and OUT/pareto.png (mAP50-95
against latency, the unpruned models, control and official, as the frontier line); with `--doc`, the same replace
the marked section of that Markdown file. `--smoke` runs a tiny version (synthetic data, the committed demo weights,
1 epoch, one target, two seeds) that the tests exercise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recover import CLI, run_row  # noqa: E402  (same folder: one job runner for both benchmarks)

REPO = Path(__file__).resolve().parents[1]
DOC_START = "<!-- compare.py: start -->"
DOC_END = "<!-- compare.py: end -->"
FAMILIES = ("baseline", "control", "best", "free", "uniform", "scratch", "unstructured", "official")
DEFAULT_ROWS = tuple(f for f in FAMILIES if f != "free")  # the data-free rows answer another question: opt in
Command = Callable[[dict[str, dict], int], list[str]]  # (finished jobs, seed) -> yolo-prune arguments
Runner = Callable[[str, list[str], Path], dict]  # (job name, yolo-prune arguments, OUT) -> its result


@dataclass
class Row:
    """One line of the table: a command per seed (and a seed-free prune before it), built when its inputs are known."""

    name: str
    method: str
    family: str  # one of FAMILIES: what --rows selects and how the plot draws it
    target: str | None  # "50%" (of the MACs) or "1.4x" (speedup); None for rows at their own cost
    command: Command
    reference: str = "control"  # the row of this row's unpruned network: its MACs are 100% and its mAP the bar
    prune: list[str] | None = None  # prune once (seed-free), then `command` fine-tunes OUT/<name>-prune/pruned.pt
    needs: list[str] = field(default_factory=list)  # jobs whose results `command` reads
    model_file: str | None = "model.pt"  # the row's model in a seed's folder, for the latency stage
    from_scratch: bool = False  # a long training from random weights
    seeded: bool = True  # False: one job without --seed (the baseline's validation)


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
    """Every row of the benchmark that --rows selects."""
    out = Path(args.out)
    data = ["--data", args.data, "--imgsz", str(args.imgsz), "--batch", str(args.batch)]  # a prune's (--epochs 0)
    common = [*data, "--workers", "2"]  # training's: yolo-prune refuses --workers where nothing trains
    first = args.seeds[0]

    def trained(source: Callable[[], str], epochs: int) -> Command:
        return lambda r, seed: ["train", source(), *common, "--epochs", str(epochs), "--seed", str(seed),
                                "--out", "{out}"]  # fmt: skip

    def best_rows(weights: str, prefix: str, reference: str, values: list[str]) -> list[Row]:
        rows = []
        for flag, goal, tag in goals(values):
            label = tag if tag.endswith("x") else f"{tag}%"
            name = f"{prefix}best-{tag}"
            allocation = "sensitivity allocation in the runtime's blocks"
            rows.append(
                Row(name, f"yolo_prune default recipe with data ({allocation})", "best", label,
                    trained(lambda n=name: str(out / f"{n}-prune" / "pruned.pt"), args.epochs), reference,
                    prune=["prune", weights, flag, goal, *data])
            )  # fmt: skip
        return rows

    def free_rows(values: list[str]) -> list[Row]:
        """The default recipe without data at every target: pruned once (it times the network), fine-tuned per seed."""
        rows = []
        for flag, goal, tag in goals(values):
            name = f"free-{tag}"
            rows.append(
                Row(name, "yolo_prune default recipe without data (latency allocation, head cut last)", "free",
                    tag if tag.endswith("x") else f"{tag}%",
                    trained(lambda n=name: str(out / f"{n}-prune" / "pruned.pt"), args.epochs), own,
                    prune=["prune", args.weights, flag, goal, "--imgsz", str(args.imgsz)])
            )  # fmt: skip
        return rows

    own = "control" if "control" in args.rows else "baseline"

    def uniform_row(flag: str, goal: str, tag: str, method: str) -> Row:
        """Uniform one-shot L2 at a MACs or speed target (the floor), pruned once and fine-tuned per seed."""
        name = f"uniform-l2-{tag}"
        return Row(name, method, "uniform", tag if tag.endswith("x") else f"{tag}%",
                   trained(lambda: str(out / f"{name}-prune" / "pruned.pt"), args.epochs), own,
                   prune=["prune", args.weights, flag, goal, *data, "--allocation", "uniform"])  # fmt: skip

    rows = [
        Row("baseline", "baseline (trained, untouched)", "baseline", None,
            lambda r, seed: ["val", args.weights, "--data", args.data, "--imgsz", str(args.imgsz), "--json"],
            reference=own, model_file=None, seeded=False),
        Row("control", "control: unpruned + same fine-tune", "control", None,
            trained(lambda: args.weights, args.epochs)),
        # without the control row (a bigger model's control is long), the pruned rows are measured against the baseline
        *best_rows(args.weights, "", own, args.targets),
        *free_rows(args.targets),
    ]  # fmt: skip
    for fraction in [float(v) for v in args.targets if not v.endswith("x")]:  # MACs targets only
        tag = f"{round(100 * fraction)}"
        width_yaml = lambda f=fraction: str(scaled_yaml(args.base_yaml, f, args.imgsz, names_count, out / "yaml")[0])  # noqa: E731
        rows += [
            uniform_row("--target-macs", str(fraction), tag, "uniform one-shot L2 (Torch-Pruning example)"),
            Row(f"scratch-{tag}", "same-MACs width-scaled YAML from scratch", "scratch", f"{tag}%",
                trained(width_yaml, args.scratch_epochs), from_scratch=True),
            Row(f"unstructured-{tag}", "unstructured L1 at best's parameter sparsity", "unstructured", f"{tag}%",
                lambda r, seed, t=tag: ["prune", args.weights, "--unstructured", f"{sparsity(r, t, first):.3f}",
                                        *common, "--epochs", str(args.epochs), "--seed", str(seed), "--out", "{out}"],
                needs=[f"best-{tag}-prune", f"control-s{first}"], model_file="pruned.pt"),
        ]  # fmt: skip
    for flag, goal, tag in [g for g in goals(args.targets) if g[0] == "--target-speedup"]:  # at the same speed
        rows.append(uniform_row(flag, goal, tag, "uniform one-shot L2 at the measured speedup"))
    for official in args.official:
        yaml_file, _, checkpoint = official.partition("=")
        name = Path(yaml_file).stem
        if checkpoint:  # already trained from scratch with the baseline's recipe: give it the fine-tune budget
            rows.append(
                Row(name, f"official {name}: baseline recipe + same fine-tune", "official", None,
                    trained(lambda w=checkpoint: w, args.epochs), reference=name)
            )  # fmt: skip
            rows += best_rows(checkpoint, f"{name}-", name, args.official_targets)
        else:
            rows.append(
                Row(name, f"official {name} from scratch", "official", None,
                    trained(lambda y=yaml_file: y, args.scratch_epochs), reference=name, from_scratch=True)
            )  # fmt: skip
    selected = [row for row in rows if row.family in args.rows]
    names = [row.name for row in selected]
    if len(set(names)) < len(names):
        raise SystemExit(f"two rows share a name: {sorted({n for n in names if names.count(n) > 1})}")
    missing = sorted({row.reference for row in selected} - set(names))
    if missing:
        raise SystemExit(f"--rows leaves out {missing}, which other selected rows are measured against")
    return selected


def goals(values: list[str]) -> list[tuple[str, str, str]]:
    """(prune flag, its value, row tag) of every target: `0.5` is 50% of the MACs, `1.4x` a speedup of 1.4."""
    out = []
    for value in values:
        if value.endswith("x"):
            out.append(("--target-speedup", value[:-1], f"{float(value[:-1]):g}x"))
        else:
            out.append(("--target-macs", value, f"{round(100 * float(value))}"))
    return out


def sparsity(results: dict[str, dict], tag: str, seed: int) -> float:
    """The share of parameters that the structured best row removed: the unstructured row zeroes as many."""
    return 1.0 - results[f"best-{tag}-prune"]["params"] / results[f"control-s{seed}"]["params"]


@dataclass
class Job:
    name: str
    argv: Callable[[dict[str, dict]], list[str]]
    needs: list[str]
    first: bool = False  # a long from-scratch training: started before the other ready jobs
    alone: bool = False  # times the network end to end (a speed target): run before the pool, on a quiet machine


def row_seeds(row: Row, args: argparse.Namespace) -> list[int]:
    if not row.seeded:
        return []
    return args.seeds[: args.scratch_seeds] if row.from_scratch else args.seeds


def job_name(row: Row, seed: int | None) -> str:
    return row.name if seed is None else f"{row.name}-s{seed}"


def jobs_of(row: Row, args: argparse.Namespace) -> list[Job]:
    """The commands that make a row: its seed-free prune (if any), then one job per seed (or one unseeded job)."""
    if not row.seeded:
        return [Job(row.name, lambda r: row.command(r, None), row.needs)]
    jobs = []
    needs = list(row.needs)
    if row.prune is not None:
        prune = [*row.prune, "--epochs", "0", "--out", "{out}"]
        # A speed target, and the default recipe's block probe at any target, time the network end to end: such
        # prunes run one after another before the rest, so a weights' sensitivity scan runs once and is then cached.
        timed = "--target-speedup" in row.prune or row.family in ("best", "free")
        jobs.append(Job(f"{row.name}-prune", lambda r: prune, [], alone=timed))
        needs.append(f"{row.name}-prune")
    for seed in row_seeds(row, args):
        jobs.append(Job(job_name(row, seed), lambda r, s=seed: row.command(r, s), needs, row.from_scratch))
    return jobs


def run_all(jobs: list[Job], out: Path, workers: int, runner: Runner = run_row) -> dict[str, dict]:
    """Run the jobs, `workers` at a time; a job starts once the jobs it needs have finished.

    A job waiting on another does not hold a worker: while one worker runs a sensitivity scan (single-threaded, 15
    minutes for yolov8n at 384), the other trains whatever needs nothing unfinished. The long from-scratch trainings
    go first among the ready jobs, so they overlap the rest. Prunes that time the network end to end (speed targets, and
    the default recipe's probe of the runtime's blocks) run one at a time before anything else.
    """
    results: dict[str, dict] = {}
    lock = threading.Lock()

    def work(job: Job) -> None:
        with lock:
            known = dict(results)
        cached = out / f"{job.name}.json"  # a finished job needs no command (building one may cost a search)
        result = json.loads(cached.read_text()) if cached.exists() else runner(job.name, job.argv(known), out)
        with lock:
            results[job.name] = result

    for job in [job for job in jobs if job.alone]:
        work(job)
    pending = sorted((job for job in jobs if not job.alone), key=lambda job: not job.first)
    running: dict[Future, Job] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            with lock:
                ready = [job for job in pending if all(need in results for need in job.needs)]
            for job in ready[: workers - len(running)]:
                pending.remove(job)
                running[pool.submit(work, job)] = job
            if not running:  # nothing runs and nothing can start: a need that is not among the jobs
                raise SystemExit(f"jobs wait on jobs that never run: {sorted(job.name for job in pending)}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                del running[future]
                future.result()  # a failed job stops the benchmark (after the running ones end)
    return {job.name: results[job.name] for job in jobs}


def summarize(rows: list[Row], jobs: dict[str, dict], args: argparse.Namespace) -> dict[str, dict]:
    """One entry per row: cost of its network, mAP per seed and their mean, wall time of all its jobs."""
    # `val` does not count the baseline's MACs and parameters; its prunes did
    prunes = [j for n, j in jobs.items() if n.startswith("best-") and n.endswith("-prune") and j.get("base_macs")]
    summary = {}
    for row in rows:
        seeds = row_seeds(row, args)
        runs = {seed: jobs[job_name(row, seed)] for seed in seeds} if seeds else {None: jobs[row.name]}
        one = next(iter(runs.values()))
        walls = [r["wall_s"] for r in runs.values()]
        if row.prune is not None:
            walls.append(jobs[f"{row.name}-prune"]["wall_s"])
        counted = prunes[0] if row.family == "baseline" and prunes else {}
        summary[row.name] = {
            "macs": one.get("macs") or counted.get("base_macs"),
            "params": one.get("params") or counted.get("base_params"),
            "map50": statistics.mean(r["map50"] for r in runs.values()),
            "map50_95": statistics.mean(r["map50_95"] for r in runs.values()),
            "seeds": {str(seed): r["map50_95"] for seed, r in runs.items() if seed is not None},
            "wall_s": None if None in walls else sum(walls),
            "commands": ([jobs[f"{row.name}-prune"]["command"]] if row.prune else [])
            + [r["command"] for r in runs.values()],
        }
    return summary


def latency(rows: list[Row], args: argparse.Namespace) -> dict[int, dict[str, dict]]:
    """onnxruntime latency of every row's model (its first seed), one interleaved bench per size, cached."""
    out = Path(args.out)
    models = {"baseline": args.weights}
    for row in rows:
        seeds = row_seeds(row, args)
        if row.model_file and seeds:
            models[row.name] = str(out / job_name(row, seeds[0]) / row.model_file)
    cache = out / "latency.json"
    record = json.loads(cache.read_text()) if cache.exists() else {}
    for size in args.bench_imgsz:
        argv = ["bench", *models.values(), "--imgsz", str(size), "--runs", str(args.bench_runs), "--json"]
        stamps = {name: os.stat(path).st_mtime for name, path in models.items()}  # a retrained model is timed again
        if record.get(str(size), {}).get("argv") == argv and record[str(size)].get("stamps") == stamps:
            continue
        print("[latency] yolo-prune " + shlex.join(argv), flush=True)
        done = subprocess.run([*CLI, *argv], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"[latency] failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        timed = dict(zip(models, json.loads(done.stdout)["rows"]))
        record = {k: v for k, v in record.items() if k.isdigit()}  # sizes only (drops an older file's layout)
        record[str(size)] = {"argv": argv, "stamps": stamps, "command": "yolo-prune " + shlex.join(argv), "rows": timed}
        cache.write_text(json.dumps(record, indent=2) + "\n")
    return {size: record[str(size)]["rows"] for size in args.bench_imgsz}


def map_cell(entry: dict) -> str:
    """'0.5836 (0.5830 / 0.5842)': the mean, then every seed's value; a single run says so."""
    values = list(entry["seeds"].values())
    if len(values) > 1:
        return f"{entry['map50_95']:.4f} ({' / '.join(f'{v:.4f}' for v in values)})"
    return f"{entry['map50_95']:.4f} (one run)"


def table(rows: list[Row], summary: dict[str, dict], timing: dict[int, dict[str, dict]]) -> str:
    """The Markdown table: cost, mAP50-95 (mean and seeds), its difference from the control (the unpruned --weights
    with the same fine-tune; the baseline, without that fine-tune, when the control row is not run) and from the
    row's own control (its unpruned network: an official model for the rows pruned from it), latency, speedup against
    the row's own control."""
    sizes = list(timing)
    lines = [
        "| row | method | target | GMACs (% of own original) | params (M) | mAP50-95 mean (seeds) | vs control "
        "| vs own control | "
        + " | ".join(f"ms @{s}" for s in sizes) + " | speedup " + " / ".join(f"@{s}" for s in sizes)
        + " | wall (min) |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(sizes) + "---|---|",
    ]  # fmt: skip
    control = (summary.get("control") or summary["baseline"])["map50_95"]
    for row in rows:
        r, ref = summary.get(row.name), summary.get(row.reference)
        if r is None or ref is None:
            continue
        macs, params = r["macs"] or ref["macs"], r["params"] or ref["params"]
        macs = f"{macs / 1e9:.3f} ({100 * macs / ref['macs']:.1f}%)" if macs and ref["macs"] else "-"
        params = f"{params / 1e6:.2f}" if params else "-"
        ms = [timing[s].get(row.name if row.seeded else "baseline", {}).get("median_ms") for s in sizes]
        ref_ms = [timing[s].get(row.reference, {}).get("median_ms") for s in sizes]
        speed = " / ".join(f"{b / m:.2f}x" if m and b else "-" for m, b in zip(ms, ref_ms))
        wall = "-" if r["wall_s"] is None else f"{r['wall_s'] / 60:.1f}"
        lines.append(
            f"| {row.name} | {row.method} | {row.target or '-'} | {macs} | {params} | {map_cell(r)} "
            f"| {100 * (r['map50_95'] - control):+.1f} | {100 * (r['map50_95'] - ref['map50_95']):+.1f} | "
            + " | ".join(f"{m:.1f}" if m else "-" for m in ms)
            + f" | {speed} | {wall} |"
        )
    return "\n".join(lines)


def frontier_check(
    rows: list[Row], summary: dict[str, dict], timing: dict[int, dict[str, dict]], reference: str, share: float
) -> list[str]:
    """Does a pruned (or width-scaled) model dominate `reference`: at least its mean mAP50-95 at no more than `share`
    of its latency? One line per timed size: the best such model and its margin, or how far it falls short."""
    if reference not in summary:
        return []
    bar = summary[reference]["map50_95"]
    lines = []
    for size, rows_ms in timing.items():
        ref_ms = rows_ms.get(reference, {}).get("median_ms")
        if not ref_ms:
            continue
        fast = [
            (summary[row.name]["map50_95"], row.name, rows_ms[row.name]["median_ms"])
            for row in rows
            if row.family in ("best", "free", "uniform", "scratch") and row.name in summary and row.name in rows_ms
            and rows_ms[row.name]["median_ms"] <= share * ref_ms
        ]  # fmt: skip
        head = f"- At {size} px, {reference} scores {bar:.4f} in {ref_ms:.1f} ms; at <= {share:.0%} of that"
        if not fast:
            lines.append(f"{head} ({share * ref_ms:.1f} ms) no pruned or smaller model runs.")
            continue
        best, name, ms = max(fast)
        verdict = "dominates it" if best >= bar else f"falls {100 * (bar - best):.1f} points short"
        lines.append(f"{head}, the best is {name}: {best:.4f} in {ms:.1f} ms ({ms / ref_ms:.0%}), which {verdict}.")
    return lines


def pareto_plot(rows: list[Row], summary: dict[str, dict], timing: dict[int, dict[str, dict]], path: Path) -> None:
    """mAP50-95 against onnxruntime latency, one panel per size: the original as given (hollow), every row's mean with
    its seeds' range, the unpruned models given the fine-tune (control, official) joined as the frontier line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"best": ("o", "tab:red"), "free": ("v", "tab:orange"), "uniform": ("s", "tab:blue"),
              "scratch": ("^", "tab:green"), "unstructured": ("x", "tab:purple"), "control": ("D", "black"),
              "official": ("D", "black")}  # fmt: skip
    fig, axes = plt.subplots(1, len(timing), figsize=(6 * len(timing), 4.8), squeeze=False)
    for ax, (size, rows_ms) in zip(axes[0], timing.items()):
        frontier = []
        for row in rows:
            r, t = summary.get(row.name), rows_ms.get(row.name)
            if r is None or t is None:
                continue
            if row.family == "baseline":  # the trained model as given: one run, no extra epochs
                ax.plot(t["median_ms"], r["map50_95"], "D", mfc="none", color="black", ms=6)
                ax.annotate("original", (t["median_ms"], r["map50_95"]), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)  # fmt: skip
                continue
            marker, color = styles[row.family]
            values = list(r["seeds"].values())
            spread = [[r["map50_95"] - min(values)], [max(values) - r["map50_95"]]]
            ax.errorbar(t["median_ms"], r["map50_95"], yerr=spread, fmt=marker, color=color, ms=6, capsize=3)
            ax.annotate(row.name, (t["median_ms"], r["map50_95"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)  # fmt: skip
            if row.family in ("control", "official"):
                frontier.append((t["median_ms"], r["map50_95"]))
        if frontier:
            xs, ys = zip(*sorted(frontier))
            ax.plot(xs, ys, "--", color="gray", label="unpruned models (frontier)")
            ax.legend(loc="best", fontsize=8)
        ax.margins(0.1)
        ax.set_xlabel(f"onnxruntime CPU latency at {size} px, median (ms)")
        ax.set_ylabel("mAP50-95 (val), mean of seeds; bars: min-max")
        ax.grid(alpha=0.3)
    fig.suptitle("Same fine-tune epochs for every row; from scratch: baseline epochs + those", fontsize=10)
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
    """Tiny inputs: synthetic shapes, the committed demo weights, one epoch, one target, two seeds, few timed runs."""
    from yolo_prune.data.synthetic import generate

    out = Path(args.out)
    args.data = str(generate(out / "data", n_train=24, n_val=8, imgsz=64))
    args.weights = str(REPO / "yolo_prune" / "app" / "baselines" / "demo-yolov8n.pt")
    args.targets, args.official, args.seeds = ["0.5"], ["yolo11n.yaml"], [0, 1]
    args.epochs, args.scratch_epochs, args.imgsz, args.batch = 1, 1, 64, 8
    args.bench_runs, args.bench_imgsz = 3, [64]


def number_list(kind: type) -> Callable[[str], list]:
    return lambda text: [kind(v) for v in text.split(",")] if text else []


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Dataset YAML (e.g. BCCD converted with `yolo-prune convert`).")
    parser.add_argument("--weights", help="The trained detector to prune.")
    parser.add_argument("--base-yaml", default="yolov8n.yaml", help="YAML of the weights, for the scratch rows.")
    parser.add_argument("--out", default="scratch/bench-compare")
    parser.add_argument(
        "--targets", default="0.5,0.33", type=number_list(str), help="MACs fractions (0.5) and speedups (1.4x)."
    )
    parser.add_argument(
        "--official",
        default="yolo11n.yaml,yolo26n.yaml",
        type=lambda s: s.split(",") if s else [],
        help="Official YAMLs trained from scratch for --scratch-epochs; YAML=CHECKPOINT instead fine-tunes a "
        "checkpoint already trained from that YAML with the baseline's recipe for --epochs (the control's schedule).",
    )
    parser.add_argument(
        "--official-targets", default="", type=number_list(str), help="Prune each official CHECKPOINT at these too."
    )
    parser.add_argument(
        "--rows",
        default=",".join(DEFAULT_ROWS),
        type=lambda s: s.split(","),
        help=f"Families to run: {', '.join(FAMILIES)} (default: all but free).",
    )
    parser.add_argument("--seeds", default="0", type=number_list(int), help="Fine-tuning seeds of every row.")
    parser.add_argument("--scratch-seeds", type=int, default=1, help="From-scratch rows run the first N seeds.")
    parser.add_argument("--epochs", type=int, default=15, help="Fine-tune budget of every pruned row and control.")
    parser.add_argument("--scratch-epochs", type=int, default=115, help="Epochs of from-scratch rows.")
    parser.add_argument("--imgsz", type=int, default=384)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=1, help="Jobs run at the same time.")
    parser.add_argument("--bench-imgsz", type=number_list(int), help="Sizes to time the models at (default: --imgsz).")
    parser.add_argument("--bench-runs", type=int, default=50)
    parser.add_argument("--reference", default="yolo11n", help="The row a pruned row should dominate.")
    parser.add_argument("--share", type=float, default=0.75, help="... at no more than this share of its latency.")
    parser.add_argument("--doc", type=Path, help="Markdown file whose marked section receives the results.")
    parser.add_argument("--smoke", action="store_true", help="Tiny version on synthetic data (for the tests).")
    args = parser.parse_args(argv)
    if args.smoke:
        smoke_setup(args)
    elif not (args.data and args.weights):
        parser.error("--data and --weights are required (or --smoke)")
    args.bench_imgsz = args.bench_imgsz or [args.imgsz]
    if args.scratch_seeds < 1:
        parser.error("--scratch-seeds must be at least 1 (leave the scratch rows out with --rows instead)")
    if "unstructured" in args.rows and not {"best", "control"} <= set(args.rows):
        parser.error("the unstructured rows take their sparsity from the best and control rows: select those too")
    unknown = set(args.rows) - set(FAMILIES)
    if unknown or not args.seeds:
        parser.error(f"--rows takes {', '.join(FAMILIES)}; --seeds at least one" + (f" (got {sorted(unknown)})"
                     if unknown else ""))  # fmt: skip
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
    jobs = run_all([job for row in rows for job in jobs_of(row, args)], out, args.jobs)
    summary = summarize(rows, jobs, args)
    timing = latency(rows, args)
    md = table(rows, summary, timing)
    check = "\n".join(frontier_check(rows, summary, timing, args.reference, args.share))
    pareto_plot(rows, summary, timing, out / "pareto.png")
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}"
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {"date": date, "machine": machine, "command": command, "rows": summary, "jobs": jobs, "latency": timing}
    (out / "results.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (out / "results.md").write_text(md + "\n" + (f"\n{check}\n" if check else ""))
    print(md + (f"\n\n{check}" if check else ""))
    if args.doc:
        shutil.copyfile(out / "pareto.png", args.doc.parent / "compare-pareto.png")
        commands = "\n".join(f"    {c}" for r in summary.values() for c in r["commands"])
        benches = "\n".join(f"    {json.loads((out / 'latency.json').read_text())[str(s)]['command']}"
                            for s in args.bench_imgsz)  # fmt: skip
        update_doc(
            args.doc,
            f"Produced by `{command}` on {date} ({machine}).\n\n{md}\n\n{check}\n\n![Pareto](compare-pareto.png)\n\n"
            f"Each row's commands:\n\n{commands}\n\nLatency:\n\n{benches}",
        )
    return record


if __name__ == "__main__":
    main()
