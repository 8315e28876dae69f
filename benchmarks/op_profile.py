"""Where an ONNX model's time goes in onnxruntime: kernel milliseconds per op type, side by side for several models.

    python benchmarks/op_profile.py ORIGINAL.onnx PRUNED.onnx [--threads 2] [--runs 40] [--out scratch/prof]

Each model runs `--runs` times in an onnxruntime CPU session with the options `yolo-prune bench` uses
(`deploy.ort_session.session_options`) and onnxruntime's profiler on; the table sums each op type's kernel time per run.
The ratio column is the first model's time over each other's: an op type whose ratio stays near 1 is time that
pruning channels did not remove (docs/benchmarks.md section 10 reads yolov8n-bccd's 50% prune this way).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from yolo_prune.deploy.ort_session import open_session, session_options


def op_times(model: Path, threads: int | None, runs: int, out: Path) -> dict[str, float]:
    """Milliseconds of kernel time per run for each op type of `model` (the profile is written under `out`)."""
    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(out / model.stem)
    session = open_session(model, options)
    feed = session.get_inputs()[0]
    x = np.random.default_rng(0).random([d if isinstance(d, int) else 1 for d in feed.shape], dtype=np.float32)
    for _ in range(runs):
        session.run(None, {feed.name: x})
    times: dict[str, float] = collections.defaultdict(float)
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[event["args"]["op_name"]] += event["dur"] / 1000 / runs
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="ONNX files (`yolo-prune export ... --format onnx`).")
    parser.add_argument("--threads", type=int, default=None, help="Intra-op threads (default: onnxruntime's).")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("runs/op-profile"), help="Where the profiles are written.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tables = [op_times(m, args.threads, args.runs, args.out) for m in args.models]
    ops = sorted(set().union(*tables), key=lambda op: -tables[0].get(op, 0.0))
    names = [m.stem for m in args.models]
    print("| op | " + " | ".join(f"{n} ms" for n in names) + "".join(f" | ratio {n}" for n in names[1:]) + " |")
    print("|---|" + "---:|" * (2 * len(names) - 1))
    for op in [*ops, "total"]:
        ms = [sum(t.values()) if op == "total" else t.get(op, 0.0) for t in tables]
        ratios = [f"{ms[0] / m:.2f}" if m else "-" for m in ms[1:]]
        print(f"| {op} | " + " | ".join(f"{m:.2f}" for m in ms) + "".join(f" | {r}" for r in ratios) + " |")


if __name__ == "__main__":
    main()
