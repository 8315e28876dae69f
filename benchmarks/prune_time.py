"""How long structured pruning takes (graph, importance, removal and the MACs search), per model.

    python benchmarks/prune_time.py --imgsz 320 --repeats 3 [--models yolov8n.yaml,yolo11n.yaml,...]

Runs `yolo_prune.prune` in this process (imports excluded) and prints one row per model: the median of the prune
times, the trials the MACs search needed, and the MACs fraction reached. Models under ../shared are skipped when
that folder is absent.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from yolo_prune import PruneConfig, load_model, prune  # noqa: E402
from yolo_prune.app.render import render_table  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "weights"
DEFAULT = ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml", str(SHARED / "yolov8n-bccd.pt"), "yolov8s.yaml"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(DEFAULT))
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for source in args.models.split(","):
        if source.endswith(".pt") and not Path(source).exists():
            print(f"skipping {source}: not found")
            continue
        model = load_model(source)
        results = [prune(model, PruneConfig(target_macs=args.target, imgsz=args.imgsz))[1] for _ in range(args.repeats)]
        seconds = statistics.median(r.seconds for r in results)
        last = results[-1]
        rows.append([Path(source).name, seconds, len(last.trials), round(100 * last.macs_fraction, 1)])
    print(render_table(("model", "prune s (median)", "trials", "MACs %"), rows))


if __name__ == "__main__":
    main()
