"""Pruning for the hardware: the default data-free recipe at MACs and speedup targets, timed end to end.

    python benchmarks/latency.py [--models yolov8n-bccd,yolo11n-bccd,yolo26n-bccd] [--sizes 384,640]
        [--threads 1,2] [--runs 50] [--out runs/bench-latency] [--runtime onnxruntime-cpu] [--batches 1]
    # on a GPU: the speed targets met on the GPU, timed at batch 1 and 32
    python benchmarks/latency.py --runtime torch-cuda-fp16 --threads default --batches 1,32 --out runs/bench-gpu

Each row prunes one checkpoint of ../shared/weights with `yolo-prune prune` in a subprocess (default options, so
the recipe measured is the one a user gets), then times the original and the pruned model with `yolo-prune bench`
(exported ONNX, onnxruntime CPU, interleaved; or `--runtime`, whose speed targets the prune then meets on that
runtime) at every size, thread count (`default`: no `--threads`) and batch. Targets: 50% and 33% of the MACs,
1.5x and 2x speedup. Comparison rows at 50% MACs: `--allocation latency` (the most latency-driven allocation),
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
COMPARISONS = ("latency-0.5", "uniform-0.5", "global16-0.5")
CLI = [sys.executable, "-m", "yolo_prune.app.cli"]


def prune_row(weights: Path, target: str, out: Path, runtime: str) -> tuple[Path, float | None]:
    """The pruned checkpoint for one target (pruned now unless a previous run left it) and the prune's seconds."""
    run = out / f"{weights.stem}-{target}"
    if (run / "pruned.pt").exists():
        return run / "pruned.pt", None
    start = time.perf_counter()
    command = [*CLI, "prune", str(weights), *TARGETS[target], "--runtime", runtime, "--out", str(run)]
    subprocess.run(command, check=True)
    return run / "pruned.pt", time.perf_counter() - start


def bench_pair(original: Path, pruned: Path, imgsz: int, threads: str, runs: int, runtime: str, batch: int) -> dict:
    """`yolo-prune bench --json` of the pair in a fresh process."""
    command = [*CLI, "bench", str(original), str(pruned), "--imgsz", str(imgsz), "--runtime", runtime]
    command += ["--batch", str(batch)] + ([] if threads == "default" else ["--threads", threads])
    result = subprocess.run([*command, "--runs", str(runs), "--json"], check=True, capture_output=True, text=True)
    rows = json.loads(result.stdout.strip().splitlines()[-1])["rows"]
    return {
        "original_ms": rows[0]["median_ms"],
        "pruned_ms": rows[1]["median_ms"],
        "speedup": rows[1]["speedup"],
        "macs_ratio": rows[0]["macs"] / rows[1]["macs"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="yolov8n-bccd,yolo11n-bccd,yolo26n-bccd")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--sizes", default="384,640")
    parser.add_argument("--threads", default="1,2", help="Thread counts; `default`: the runtime's own.")
    parser.add_argument("--runtime", default="onnxruntime-cpu", help="Where to prune for speed and to time.")
    parser.add_argument("--batches", default="1", help="Batch sizes to time (above 1: torch runtimes).")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-latency"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "rows.json"
    rows: dict[str, dict] = json.loads(cache.read_text()) if cache.exists() else {}
    for name in args.models.split(","):
        weights = SHARED / f"{name}.pt"
        if not weights.exists():
            print(f"skipping {name}: {weights} not found")
            continue
        for target in args.targets.split(","):
            if target in COMPARISONS and name != "yolov8n-bccd":
                continue
            pruned, seconds = prune_row(weights, target, args.out, args.runtime)
            for imgsz, threads, batch in itertools.product(
                map(int, args.sizes.split(",")), args.threads.split(","), map(int, args.batches.split(","))
            ):
                key = f"{name} {target} {imgsz} {threads} {args.runtime} {batch}"
                if key in rows:
                    continue
                rows[key] = bench_pair(weights, pruned, imgsz, threads, args.runs, args.runtime, batch)
                if seconds is not None:
                    rows[key]["prune_seconds"] = seconds
                cache.write_text(json.dumps(rows, indent=1))
                r = rows[key]
                print(f"{key}: {r['speedup']:.2f}x ({r['speedup'] / r['macs_ratio']:.2f} of the MACs ratio)")
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
