"""Prune every model YAML that Ultralytics ships, one process each, and print what each reached and how long it took.

    python benchmarks/architectures.py [--task detect|segment|pose|obb] [--target-macs 0.5] [--imgsz 128]

The YAMLs are read from the installed package: the smallest scale of each, for the task asked (detect leaves out the
other tasks and the detectors of other families: RT-DETR, YOLO-World, YOLOE). Random init; the library's defaults
(L2 importance, uniform allocation). A model that fails prints its one-line error. tests/pruning/test_architectures.py
uses `shipped_yamls` for the same list.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

SCALES = "ntsmbclex"  # smallest first; YOLOv9 ships t..e and YOLOv10 n..x as one file per scale
TASK_SUFFIX = {"detect": "", "segment": "-seg", "pose": "-pose", "obb": "-obb"}
NOT_DETECT = re.compile(r"-(cls|seg|pose|obb|depth|sem)\b|rtdetr|world|yoloe")


def shipped_yamls(task: str = "detect") -> list[str]:
    """Model names to build, one per shipped YAML: `yolov8n-p6.yaml` for yolov8-p6.yaml, `yolov9t.yaml` as it is."""
    import ultralytics

    root = Path(ultralytics.__file__).parent / "cfg" / "models"
    names, per_scale = [], {}
    for path in sorted(root.glob("*/*.yaml")):
        stem = path.stem
        if task == "detect" and NOT_DETECT.search(stem):
            continue
        if task != "detect" and (not stem.endswith(TASK_SUFFIX[task]) or re.search(r"rtdetr|world|yoloe", stem)):
            continue
        family = re.match(rf"^(yolov?\d+)([{SCALES}])(-\w+)?$", stem)
        if family:  # one file per scale (YOLOv9, YOLOv10): keep the smallest of the family
            key = family[1] + (family[3] or "")
            best = per_scale.get(key)
            if best is None or SCALES.index(family[2]) < SCALES.index(best[0]):
                per_scale[key] = (family[2], path.name)
            continue
        scales = yaml.safe_load(path.read_text()).get("scales")
        if scales:
            smallest = min(scales, key=SCALES.index)
            names.append(re.sub(r"^(yolov?\d+)", rf"\g<1>{smallest}", stem) + ".yaml")
        else:
            names.append(path.name)
    return sorted(names + [name for _, name in per_scale.values()])


ONE = """
import sys, time
from yolo_prune import PruneConfig, load_model, prune
start = time.perf_counter()
model = load_model(sys.argv[1])
_, result = prune(model, PruneConfig(target_macs=float(sys.argv[2]), imgsz=int(sys.argv[3])))
print(f"{result.macs_fraction:.4f} {time.perf_counter() - start:.1f}")
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="detect", choices=sorted(TASK_SUFFIX))
    parser.add_argument("--target-macs", type=float, default=0.5)
    parser.add_argument("--imgsz", type=int, default=128)
    args = parser.parse_args(argv)
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False"}
    print("| model YAML | MACs reached | seconds (load + prune) |\n|---|---:|---:|")
    for name in shipped_yamls(args.task):
        run = subprocess.run(
            [sys.executable, "-c", ONE, name, str(args.target_macs), str(args.imgsz)],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
        if run.returncode == 0:
            fraction, seconds = run.stdout.split()[-2:]
            print(f"| `{name}` | {float(fraction):.1%} | {seconds} |", flush=True)
        else:
            error = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"| `{name}` | failed: {error} | |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
