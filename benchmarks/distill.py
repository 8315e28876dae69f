"""Does distillation pay? The default recipe with data, with and without Ultralytics' native distillation.

    python benchmarks/distill.py --data scratch/bccd/data.yaml --out scratch/dist [--weights W] [--target 0.33]
        [--epochs 15] [--imgsz 384] [--rows none,w0.5,w1,w2] [--seeds 0,1]

Each row is one `yolo-prune prune W --data DATA --target-macs T --epochs E --imgsz S [--distill --distill-weight D]
--seed K --out OUT/<row>-s<K>` (the unpruned W teaches; Ultralytics' `distill_model`, `dis`). A row whose
report.json exists is read, not run again, so an interrupted benchmark continues where it stopped. Prints a markdown
table: val mAP50-95 of every seed, their mean, and the difference from the row without distillation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "weights"
CLI = [sys.executable, "-m", "yolo_prune.app.cli"]


def weight_of(row: str) -> float | None:
    """`none` -> no distillation; `w0.5` -> distillation weight 0.5."""
    return None if row == "none" else float(row.removeprefix("w"))


def run_row(args: argparse.Namespace, row: str, seed: int) -> float:
    out = args.out / f"{row.replace('.', '')}-s{seed}"
    report = out / "report.json"
    if not report.exists():
        command = [*CLI, "prune", str(args.weights), "--data", args.data, "--target-macs", str(args.target)]
        command += ["--epochs", str(args.epochs), "--imgsz", str(args.imgsz), "--seed", str(seed), "--out", str(out)]
        if weight_of(row) is not None:
            command += ["--distill", "--distill-weight", str(weight_of(row))]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True)
    return json.loads(report.read_text())["after"]["map50_95"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--weights", type=Path, default=SHARED / "yolov8n-bccd.pt")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-distill"))
    parser.add_argument("--target", type=float, default=0.33)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--imgsz", type=int, default=384)
    parser.add_argument("--rows", default="none,w0.5,w1,w2")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {row: [run_row(args, row, seed) for seed in seeds] for row in args.rows.split(",")}
    base = statistics.mean(results["none"]) if "none" in results else None
    print("\n| distillation weight | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | against none |")
    print("|---|" + "---:|" * (len(seeds) + 2))
    for row, values in results.items():
        mean = statistics.mean(values)
        delta = f"{100 * (mean - base):+.1f} points" if base is not None and row != "none" else ""
        label = "none" if weight_of(row) is None else f"`--distill-weight {weight_of(row):g}`"
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {mean:.4f} | {delta} |")


if __name__ == "__main__":
    main()
