"""Pruning for the hardware: the default data-free recipe at MACs and speedup targets, timed end to end.

    python benchmarks/latency.py [--models yolov8n-bccd,yolo11n-bccd,yolo26n-bccd] [--sizes 384,640]
        [--threads 1,2] [--runs 50] [--out runs/bench-latency] [--runtime onnxruntime-cpu] [--batches 1]
        [--weights ../shared/weights] [--pruned DIR] [--latency-batch B]
    # on a GPU: the speed targets met on the GPU at batch 32, timed at batch 1 and 32
    python benchmarks/latency.py --runtime torch-cuda-fp16 --latency-batch 32 --threads default --batches 1,32 \
        --out runs/bench-gpu
    # on a GPU: the models a CPU run pruned (its --out), timed there
    python benchmarks/latency.py --runtime torch-cuda-fp16 --pruned runs/bench-latency --threads default \
        --batches 1,32 --out runs/bench-gpu-cpu-pruned

Each row prunes one checkpoint of ../shared/weights (or `--weights`) with `yolo-prune prune` in a subprocess
(default options, so the recipe measured is the one a user gets; `--runtime`, whose speed targets the prune then
meets on that runtime, at `--latency-batch` images per call), then times the original and its pruned models
together with `yolo-prune bench` (exported ONNX, onnxruntime CPU, interleaved; or `--runtime`) at every size,
thread count (`default`: no `--threads`) and batch. With `--pruned DIR` nothing is pruned: the models an earlier
run left in DIR are timed (say, pruned for a CPU and timed on a GPU). Targets: 50% and 33% of the MACs, 1.5x and 2x
speedup. Comparison rows at 50% MACs: `--allocation latency` (the most latency-driven allocation),
`--allocation uniform` (0.1.0's default) and `--allocation global --round-to 16` (the best hand-set recipe before the
latency model).

Rows are cached in OUT/rows.json (a pruned model in OUT/<model>-<target>/ is reused), so an interrupted run
continues where it stopped. Run it on an idle machine: the timings are the point. Prints a markdown table with the
speedup and how it compares with the MACs ratio (speedup / (original MACs / pruned MACs)).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "weights"
TARGETS = {
    "macs-0.5": ["--target-macs", "0.5"],
    "macs-0.33": ["--target-macs", "0.33"],
    "speedup-1.5": ["--target-speedup", "1.5"],
    "speedup-2": ["--target-speedup", "2"],
    "latency-0.5": ["--target-macs", "0.5", "--allocation", "latency"],
    "uniform-0.5": ["--target-macs", "0.5", "--allocation", "uniform"],
    "global16-0.5": ["--target-macs", "0.5", "--allocation", "global", "--round-to", "16"],
}
UNTIMED = ("uniform-0.5", "global16-0.5")  # channel-ratio allocations: no latency measured, whatever the runtime
COMPARISONS = ("latency-0.5", "uniform-0.5", "global16-0.5")
CLI = [sys.executable, "-m", "yolo_prune.app.cli"]


def prune_row(
    weights: Path, target: str, run: Path, runtime: str, latency_batch: int
) -> tuple[Path, float | None] | None:
    """The pruned checkpoint for one target in the folder `run` (pruned now unless a previous run left it) and the
    prune's seconds; None when the prune fails (its error line is printed: an unreachable speed target is a result
    too)."""
    if (run / "pruned.pt").exists():
        return run / "pruned.pt", None
    start = time.perf_counter()
    command = [*CLI, "prune", str(weights), *TARGETS[target], "--out", str(run)]
    if target not in UNTIMED:  # yolo-prune refuses --runtime where it measures no latency
        command += ["--runtime", runtime] + (["--latency-batch", str(latency_batch)] if latency_batch > 1 else [])
    if subprocess.run(command).returncode != 0:
        print(f"skipping {weights.stem} {target}: the prune failed after {time.perf_counter() - start:.0f} s")
        return None
    return run / "pruned.pt", time.perf_counter() - start


def bench_models(
    original: Path, pruned: list[Path], imgsz: int, threads: str, runs: int, runtime: str, batch: int
) -> list[dict]:
    """`yolo-prune bench --json` of the original and its pruned models in one fresh process (interleaved: four
    models in one bench agreed with pairs within 2%, docs/benchmarks.md section 10); one dict per pruned model."""
    command = [*CLI, "bench", str(original), *map(str, pruned), "--imgsz", str(imgsz), "--runtime", runtime]
    command += ["--batch", str(batch)] + ([] if threads == "default" else ["--threads", threads])
    result = subprocess.run([*command, "--runs", str(runs), "--json"], check=True, capture_output=True, text=True)
    rows = json.loads(result.stdout.strip().splitlines()[-1])["rows"]
    return [
        {
            "original_ms": rows[0]["median_ms"],
            "pruned_ms": row["median_ms"],
            "speedup": row["speedup"],
            "macs_ratio": rows[0]["macs"] / row["macs"],
        }
        for row in rows[1:]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="yolov8n-bccd,yolo11n-bccd,yolo26n-bccd")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--sizes", default="384,640")
    parser.add_argument("--threads", default="1,2", help="Thread counts; `default`: the runtime's own.")
    parser.add_argument("--runtime", default="onnxruntime-cpu", help="Where to prune for speed and to time.")
    parser.add_argument("--latency-batch", type=int, default=1, help="Images per call the prunes time (torch).")
    parser.add_argument("--batches", default="1", help="Batch sizes to time (above 1: torch runtimes).")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--weights", type=Path, default=SHARED, help="Folder of the checkpoints <model>.pt.")
    parser.add_argument("--pruned", type=Path, help="Time the models an earlier run pruned in this folder.")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-latency"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "rows.json"
    rows: dict[str, dict] = json.loads(cache.read_text()) if cache.exists() else {}
    settings = list(
        itertools.product(map(int, args.sizes.split(",")), args.threads.split(","), map(int, args.batches.split(",")))
    )
    for name in args.models.split(","):
        weights = args.weights / f"{name}.pt"
        if not weights.exists():
            print(f"skipping {name}: {weights} not found")
            continue
        pruned: dict[str, tuple[Path, float | None]] = {}
        for target in args.targets.split(","):
            if target in COMPARISONS and name != "yolov8n-bccd":
                continue
            run = (args.pruned or args.out) / f"{name}-{target}"
            if args.pruned is not None and not (run / "pruned.pt").exists():
                print(f"skipping {name} {target}: no pruned.pt in {run}")  # --pruned: time, never prune
                continue
            made = prune_row(weights, target, run, args.runtime, args.latency_batch)
            if made is not None:
                pruned[target] = made
        for imgsz, threads, batch in settings:
            keys = {t: f"{name} {t} {imgsz} {threads} {args.runtime} {batch}" for t in pruned}
            todo = [t for t in pruned if keys[t] not in rows]
            if not todo:
                continue
            timed = bench_models(weights, [pruned[t][0] for t in todo], imgsz, threads, args.runs, args.runtime, batch)
            for target, row in zip(todo, timed):
                seconds = pruned[target][1]
                rows[keys[target]] = row | ({"prune_seconds": seconds} if seconds is not None else {})
                share = row["speedup"] / row["macs_ratio"]
                print(f"{keys[target]}: {row['speedup']:.2f}x ({share:.2f} of the MACs ratio)")
            cache.write_text(json.dumps(rows, indent=1))
    headers = ("model", "target", "imgsz", "threads", "runtime", "batch", "original ms", "pruned ms", "speedup")
    headers += ("MACs ratio", "share")
    print("\n| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for key, r in rows.items():
        name, target, imgsz, threads, runtime, batch = key.split()
        print(
            f"| {name} | {target} | {imgsz} | {threads} | {runtime} | {batch} | {r['original_ms']:.2f} | "
            f"{r['pruned_ms']:.2f} | "
            f"{r['speedup']:.2f}x | {r['macs_ratio']:.2f} | {r['speedup'] / r['macs_ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
