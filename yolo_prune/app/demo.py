"""`yolo-prune demo`: the whole job, offline, on this machine, in minutes.

generate synthetic data (cached) -> baseline shipped in app/baselines/ (trained if missing) -> prune to 50% MACs ->
fine-tune -> validate before/after -> export ONNX with the parity check -> bench original vs pruned -> report.md,
report.json, PNGs.
Every stage is the same API the CLI commands use; this module only chains them and writes the summary.
"""

from __future__ import annotations

import logging
import platform
import shlex
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from yolo_prune.app import plots
from yolo_prune.app.folders import refuse_finished
from yolo_prune.app.prune_run import run_prune
from yolo_prune.app.render import markdown_table
from yolo_prune.app.train_run import run_train
from yolo_prune.atomic import write_json, write_text
from yolo_prune.cache import cache_dir
from yolo_prune.data.synthetic import generate
from yolo_prune.deploy.bench import bench
from yolo_prune.deploy.export import export_onnx
from yolo_prune.errors import ConfigError
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.train.finetune import FinetuneConfig

LOGGER = logging.getLogger("yolo_prune")
BASELINES = Path(__file__).resolve().with_name("baselines")  # package data: the demo runs from an installed wheel


@dataclass(frozen=True)
class DemoTask:
    """One task's demo: the model trained when its committed baseline is missing, and the task's own metric."""

    yaml: str
    baseline: Path
    metric: str | None = None  # a measured point's key for the task's metric beside box mAP
    metric_label: str = ""


TASKS = {
    "detect": DemoTask("yolov8n.yaml", BASELINES / "demo-yolov8n.pt"),
    "segment": DemoTask("yolov8n-seg.yaml", BASELINES / "demo-yolov8n-seg.pt", "mask_map50_95", "mask mAP50-95"),
    "pose": DemoTask("yolov8n-pose.yaml", BASELINES / "demo-yolov8n-pose.pt", "pose_map50_95", "pose mAP50-95"),
    "obb": DemoTask("yolov8n-obb.yaml", BASELINES / "demo-yolov8n-obb.pt"),
}
TASK_ALIASES = {"seg": "segment"}


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of one demo run. `full` is the README's run; `fast` is the CI smoke version."""

    n_train: int
    n_val: int
    imgsz: int
    baseline_epochs: int  # only if the committed baseline is missing
    finetune_epochs: int
    bench_runs: int


PLANS = {
    "full": DemoPlan(n_train=640, n_val=128, imgsz=128, baseline_epochs=40, finetune_epochs=12, bench_runs=100),
    "fast": DemoPlan(n_train=48, n_val=16, imgsz=128, baseline_epochs=3, finetune_epochs=1, bench_runs=10),
}


DEPLOY_IMGSZ = 640  # the demo also times both models at a deployment size: what pruning buys where it is used


def _stage(n: int, total: int, text: str) -> None:
    LOGGER.info(f"[{n}/{total}] {text}")


def run_demo(
    out_dir: str | Path = "runs/demo", *, fast: bool = False, data_dir: str | Path | None = None, task: str = "detect"
) -> dict:
    """Run the demo of `task` (detect, segment or seg, pose, obb) into `out_dir` and return its report (also written
    as report.json and report.md)."""
    name = TASK_ALIASES.get(task, task)
    if name not in TASKS:
        raise ConfigError(f"unknown --task '{task}'; choose one of: {', '.join(TASKS)}")
    demo = TASKS[name]
    plan = PLANS["fast" if fast else "full"]
    out = Path(out_dir)
    refuse_finished(out)
    start = time.perf_counter()
    total = 6
    commands: dict[str, str] = {}

    folder = "synthetic" + ("" if name == "detect" else f"-{name}") + ("-fast" if fast else "")
    data_root = Path(data_dir) if data_dir else cache_dir() / "datasets" / folder
    _stage(1, total, f"synthetic data in {data_root} (made once, then reused)")
    data = generate(data_root, n_train=plan.n_train, n_val=plan.n_val, imgsz=plan.imgsz, task=name)
    commands["data"] = (
        f"yolo-prune synth --out {data_root} --train {plan.n_train} --val {plan.n_val} --imgsz {plan.imgsz}"
        + ("" if name == "detect" else f" --task {name}")
    )

    baseline = demo.baseline if demo.baseline.is_file() else None
    if baseline is None:
        what = Path(demo.yaml).stem
        _stage(2, total, f"training a baseline {what} for {plan.baseline_epochs} epoch(s) (no committed baseline)")
        train = FinetuneConfig(epochs=plan.baseline_epochs, batch=16, imgsz=plan.imgsz, workers=2)
        trained = run_train(demo.yaml, str(data), train, out / "baseline")
        baseline = Path(trained["files"]["weights"])
        commands["baseline"] = (
            f"yolo-prune train {demo.yaml} --data {data} --epochs {plan.baseline_epochs} --imgsz {plan.imgsz} "
            f"--out {out / 'baseline'}"
        )
    else:
        _stage(2, total, f"baseline {baseline.name} (shipped with yolo_prune)")
        commands["baseline"] = f"(shipped with yolo_prune) {baseline}; its recipe: weights/README.md in the source"

    _stage(3, total, f"pruning to 50% MACs and fine-tuning for {plan.finetune_epochs} epoch(s)")
    config = PruneConfig(target_macs=0.5, method="l2", imgsz=plan.imgsz, data=str(data))
    train = FinetuneConfig(epochs=plan.finetune_epochs, batch=16, imgsz=plan.imgsz, workers=2)
    prune_dir = out / "prune"
    report = run_prune(str(baseline), config, prune_dir, train=train)
    pruned = Path(report.files["weights"])
    commands["prune"] = shlex.join(
        [
            "yolo-prune",
            "prune",
            str(baseline),
            "--target-macs",
            "0.5",
            "--data",
            str(data),
            "--epochs",
            str(plan.finetune_epochs),
            "--imgsz",
            str(plan.imgsz),
            "--out",
            str(prune_dir),
        ]
    )

    _stage(4, total, "exporting both models to ONNX, with the parity check")
    exports = {
        name: export_onnx(path, out=out / "export" / f"{name}.onnx", imgsz=plan.imgsz)
        for name, path in (("original", baseline), ("pruned", pruned))
    }
    commands["export"] = f"yolo-prune export {pruned} --format onnx --imgsz {plan.imgsz} --out {out}/export/pruned.onnx"

    _stage(
        5, total, f"timing both in onnxruntime at {plan.imgsz} and {DEPLOY_IMGSZ} ({plan.bench_runs} runs, interleaved)"
    )
    rows = bench([exports["original"].file, exports["pruned"].file], imgsz=plan.imgsz, runs=plan.bench_runs)
    deploy_rows = bench([baseline, pruned], imgsz=DEPLOY_IMGSZ, runs=plan.bench_runs)
    commands["bench"] = (
        f"yolo-prune bench {out}/export/original.onnx {out}/export/pruned.onnx --imgsz {plan.imgsz}\n"
        f"yolo-prune bench {baseline} {pruned} --imgsz {DEPLOY_IMGSZ}"
    )

    _stage(6, total, "writing report.md, report.json and the figures")
    for png in ("widths.png", "map_vs_macs.png"):
        if (prune_dir / png).exists():
            shutil.copyfile(prune_dir / png, out / png)
    plots.predictions_side_by_side(baseline, pruned, data, out / "predictions.png", imgsz=plan.imgsz)
    summary = _summary(report, exports, rows, deploy_rows, baseline, pruned, demo.metric)
    result = {
        "task": name,
        "metric_label": demo.metric_label,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {platform.platform()}",
        "plan": "fast" if fast else "full",
        "seconds": time.perf_counter() - start,
        "summary": summary,
        "commands": commands,
        "prune_report": report.files["report"],
        "exports": {k: v.to_dict() for k, v in exports.items()},
        "bench": [r.to_dict() for r in rows],
        "bench_deploy": {"imgsz": DEPLOY_IMGSZ, "rows": [r.to_dict() for r in deploy_rows]},
    }
    write_json(out / "report.json", result)
    write_text(out / "report.md", _markdown(result))
    return result


def _summary(
    report, exports: dict, rows: list, deploy_rows: list, baseline: Path, pruned: Path, metric: str | None
) -> list[dict]:
    before, after = report.before, report.after
    sides = (
        ("original", before, exports["original"], rows[0], deploy_rows[0], baseline),
        ("pruned", after, exports["pruned"], rows[1], deploy_rows[1], pruned),
    )
    return [
        {
            "model": name,
            "file": str(path),
            "gmacs": side["macs"] / 1e9,
            "params_m": side["params"] / 1e6,
            "onnx_mb": export.size_bytes / 1e6,
            "map50": side.get("map50"),
            "map50_95": side.get("map50_95"),
            **({"task_map50_95": side.get(metric)} if metric else {}),
            "latency_ms": row.median_ms,
            "p90_ms": row.p90_ms,
            "speedup": row.speedup,
            "deploy_latency_ms": deploy.median_ms,
            "deploy_speedup": deploy.speedup,
            "parity": export.parity.relative_diff if export.parity else None,
        }
        for name, side, export, row, deploy, path in sides
    ]


def _markdown(result: dict) -> str:
    rows = [
        [
            s["model"],
            f"{s['gmacs']:.3f}",
            f"{s['params_m']:.2f}",
            f"{s['onnx_mb']:.2f}",
            f"{s['map50']:.3f}",
            f"{s['map50_95']:.3f}",
            *([f"{s['task_map50_95']:.3f}"] if "task_map50_95" in s else []),
            f"{s['latency_ms']:.2f}",
            f"{s['p90_ms']:.2f}",
            f"{s['speedup']:.2f}x",
            f"{s['deploy_latency_ms']:.2f}",
            f"{s['deploy_speedup']:.2f}x",
        ]
        for s in result["summary"]
    ]
    size = result["bench_deploy"]["imgsz"]
    task_metric = [result["metric_label"]] if result.get("metric_label") else []
    headers = ("model", "GMACs", "params (M)", "ONNX (MB)", "mAP50", "mAP50-95", *task_metric, "ORT median (ms)")
    table = markdown_table((*headers, "p90 (ms)", "speedup", f"ORT @{size} (ms)", f"speedup @{size}"), rows)
    commands = "\n".join(f"# {stage}\n{cmd}" for stage, cmd in result["commands"].items())
    return f"""# yolo_prune demo: {result["task"]} ({result["plan"]})

{result["date"]}, {result["machine"]}; the whole run took {result["seconds"] / 60:.1f} min.

{table}

mAP (box mAP; for OBB, oriented boxes) on the synthetic validation split; latency is onnxruntime on the CPU, batch
1, median after warm-up, both models timed interleaved in one process, at the training size and at {size} px (a
deployment size; small images leave the fixed costs a larger share, so the speedup at {size} is what pruning buys in
use). Parity: largest output difference of each ONNX
file against PyTorch, relative to the output range.

![channels per layer](widths.png)

![mAP50-95 against MACs](map_vs_macs.png)

![predictions: original (left) and pruned (right)](predictions.png)

## Reproduce each stage

```bash
{commands}
```
"""
