"""Train a baseline detector from scratch with the recipe of `../shared/weights/README.md`, resumably.

The benchmarks compare pruned models with baselines trained here (no pretrained weights can be downloaded):

    python benchmarks/baseline.py yolo11s.yaml --data scratch/bccd/data.yaml --out scratch/baselines/yolo11s-bccd \
        --epochs 100 --imgsz 384
    python benchmarks/baseline.py yolo11n.yaml --data scratch/neu/data.yaml --out scratch/baselines/yolo11n-neu \
        --epochs 60 --imgsz 192

Ultralytics writes OUT/weights/last.pt after every epoch; running the same command again resumes from it (an
interrupted training loses at most one epoch), and a finished one only validates `best.pt` again. The result is
OUT/weights/best.pt (half precision, as Ultralytics stores it) and OUT/baseline.json with its val mAP.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("yaml", help="Ultralytics model YAML, e.g. yolo11s.yaml")
    parser.add_argument("--data", required=True, help="dataset YAML")
    parser.add_argument("--out", required=True, type=Path, help="run folder (resumed when it holds last.pt)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--imgsz", type=int, default=384)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if not Path(args.data).is_file():
        parser.error(f"--data {args.data}: no such dataset YAML")
    if args.epochs < 1 or args.imgsz < 32 or args.batch < 1:
        parser.error("--epochs and --batch must be at least 1 and --imgsz at least 32")

    from ultralytics import YOLO

    out = args.out.resolve()
    last, best = out / "weights" / "last.pt", out / "weights" / "best.pt"
    done = (out / "results.csv").exists() and best.exists() and not _resumable(last)
    if not done:
        if _resumable(last):
            print(f"resuming {last}")
            YOLO(str(last)).train(resume=True)
        else:
            YOLO(args.yaml).train(
                data=args.data,
                epochs=args.epochs,
                imgsz=args.imgsz,
                batch=args.batch,
                workers=2,
                device=args.device,
                pretrained=False,
                amp=False,
                seed=args.seed,
                deterministic=True,
                patience=0,
                plots=False,
                project=str(out.parent),
                name=out.name,
                exist_ok=True,
            )
    metrics = YOLO(str(best)).val(data=args.data, imgsz=args.imgsz, batch=args.batch, device=args.device, plots=False)
    result = {
        "yaml": args.yaml,
        "data": args.data,
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "seed": args.seed,
        "weights": str(best),
        "map50": float(metrics.box.map50),
        "map50_95": float(metrics.box.map),
    }
    (out / "baseline.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def _resumable(last: Path) -> bool:
    """True when `last` is a checkpoint of an unfinished training (Ultralytics clears `optimizer` at the end)."""
    if not last.exists():
        return False
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    return ckpt.get("optimizer") is not None


if __name__ == "__main__":
    main()
