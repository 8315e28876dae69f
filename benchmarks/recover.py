"""Recover benchmark: prune a trained detector to a MACs target and fine-tune it back, several ways, same budget.

Every row is one `yolo-prune` command (printed, and stored with its result). Rows whose report exists are not run
again, and an interrupted prune run is continued with `--resume`, so the benchmark can be stopped and restarted.

    python benchmarks/recover.py --data scratch/bccd/data.yaml --weights ../shared/weights/yolov8n-bccd.pt \
        --out scratch/bench-recover --epochs 30 --imgsz 384 --jobs 2

Writes OUT/results.json and OUT/results.md (a table of MACs, params, mAP and drops against baseline and control).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

CLI = [sys.executable, "-m", "yolo_prune"]


def rows(args: argparse.Namespace) -> dict[str, list[str]]:
    """Row name -> yolo-prune arguments. `{out}` is replaced by the row's folder."""
    data = ["--data", args.data, "--imgsz", str(args.imgsz), "--batch", str(args.batch)]
    prune = ["prune", args.weights, "--target-macs", str(args.target), *data]
    ft = ["--epochs", str(args.epochs), "--workers", "2"]  # yolo-prune refuses --workers where nothing trains
    table = {
        "baseline": ["val", args.weights, "--data", args.data, "--imgsz", str(args.imgsz), "--json"],
        "control": ["train", args.weights, *data, *ft, "--out", "{out}"],
        "l2-no-finetune": [*prune, "--method", "l2", "--allocation", "uniform", "--out", "{out}"],
        "l2": [*prune, "--method", "l2", "--allocation", "uniform", *ft, "--out", "{out}"],
        "taylor": [*prune, "--method", "taylor", "--allocation", "uniform", *ft, "--out", "{out}"],
        "bn": [*prune, "--method", "bn", "--allocation", "uniform", *ft, "--out", "{out}"],
        "l2-iterative-3": [*prune, "--method", "l2", "--allocation", "uniform", *ft, "--steps", "3", "--out", "{out}"],
        "l2-distill": [*prune, "--method", "l2", "--allocation", "uniform", *ft, "--distill", "--out", "{out}"],
        "l2-global": [*prune, "--method", "l2", "--global", *ft, "--out", "{out}"],
        "l2-sensitivity": [*prune, "--method", "l2", "--allocation", "sensitivity", *ft, "--out", "{out}"],
        "unstructured-0.3": ["prune", args.weights, "--unstructured", "0.3", *data, *ft, "--out", "{out}"],
    }
    if args.sensitivity:
        table["l2-sensitivity"] += ["--sensitivity", args.sensitivity]
    return {name: table[name] for name in args.rows.split(",")}


def run_row(name: str, argv: list[str], out: Path) -> dict:
    row_dir = out / name
    cached = out / f"{name}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    argv = [a.replace("{out}", str(row_dir)) for a in argv]
    command = "yolo-prune " + shlex.join(argv)
    start = time.perf_counter()
    report_file = row_dir / ("sensitivity.json" if argv[0] == "sensitivity" else "report.json")
    if argv[0] != "val" and report_file.exists():
        # Finished, but stopped before its result was cached here (or run by hand): record it, do not rerun it.
        print(f"[{name}] finished earlier: {report_file}", flush=True)
        report = json.loads(report_file.read_text())
        seconds = report.get("seconds")
    else:
        if (row_dir / "state.json").exists():  # an interrupted prune run: continue it
            argv = ["prune", "--resume", str(row_dir)]
        print(f"[{name}] yolo-prune {shlex.join(argv)}", flush=True)
        log = out / f"{name}.log"
        with log.open("a") as fh:
            done = subprocess.run([*CLI, *argv], stdout=subprocess.PIPE, stderr=fh, text=True)
        if done.returncode != 0:
            raise SystemExit(f"[{name}] failed ({done.returncode}); see {log}")
        seconds = time.perf_counter() - start
        report = json.loads(done.stdout) if argv[0] == "val" else json.loads(report_file.read_text())
    if argv[0] == "sensitivity":
        result = {"sensitivity": str(report_file)}
    elif argv[0] == "val":
        result = {"macs": None, "params": None, "map50": report["map50"], "map50_95": report["map50_95"]}
    else:
        after = report["after"] if "after" in report else report
        result = {k: after.get(k) for k in ("macs", "params", "map50", "map50_95", "latency_ms", "gzip_bytes")}
        if "before" in report:
            result["base_macs"] = report["before"]["macs"]
            result["base_params"] = report["before"].get("params")
    result.update(command=command, wall_s=None if seconds is None else round(seconds, 1))
    cached.write_text(json.dumps(result, indent=2) + "\n")
    print(f"[{name}] done: {result.get('map50_95', report_file.name)}", flush=True)
    return result


def table(results: dict[str, dict], base_macs: int | None) -> str:
    base = results.get("baseline", {}).get("map50_95")
    control = results.get("control", {}).get("map50_95")
    lines = [
        "| row | MACs % | params (M) | mAP50 | mAP50-95 | vs baseline | vs control | wall (min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        macs = f"{100 * r['macs'] / base_macs:.1f}" if r.get("macs") and base_macs else "100.0"
        params = f"{r['params'] / 1e6:.2f}" if r.get("params") else "-"
        d_base = f"{100 * (r['map50_95'] - base):+.1f}" if base is not None else "-"
        d_ctrl = f"{100 * (r['map50_95'] - control):+.1f}" if control is not None else "-"
        wall = "-" if r["wall_s"] is None else f"{r['wall_s'] / 60:.1f}"
        lines.append(
            f"| {name} | {macs} | {params} | {r['map50']:.4f} | {r['map50_95']:.4f} | {d_base} | {d_ctrl} | {wall} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", default="scratch/bench-recover")
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--imgsz", type=int, default=384)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=1, help="rows run at the same time")
    parser.add_argument("--sensitivity", help="sensitivity.json for the l2-sensitivity row (else scanned in the run)")
    parser.add_argument(
        "--rows",
        default="baseline,control,l2-no-finetune,l2,taylor,bn,l2-iterative-3,l2-distill",
    )
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = rows(args)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {name: pool.submit(run_row, name, argv, out) for name, argv in todo.items()}
        results = {name: f.result() for name, f in futures.items()}
    base_macs = next((r["base_macs"] for r in results.values() if r.get("base_macs")), None)
    summary = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "args": vars(args),
        "rows": results,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = table(results, base_macs)
    (out / "results.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
