"""The stages put together: what one CLI command or API call runs end to end.

`run_prune` runs load -> [validate] -> [sparse training] -> (prune -> [fine-tune] -> [validate]) x steps and writes
one run folder:

    DIR/state.json        what was asked and how far the run got (makes `--resume` possible)
    DIR/sparse/           Ultralytics run of the sparse-training phase, if asked
    DIR/step<k>/pruned.pt the model right after pruning step k
    DIR/step<k>/train/    Ultralytics run of fine-tuning step k (weights/best.pt, last.pt, results.csv)
    DIR/pruned.pt         the result: pruned, and fine-tuned when asked (FP32 Ultralytics checkpoint)
    DIR/report.json       before/after MACs, params, mAP, per-layer widths, per-step history
    DIR/widths.png, DIR/map_vs_macs.png

The stages themselves live in their own modules and know nothing of each other.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from yolo_prune.atomic import write_text
from yolo_prune.checkpoint import save_checkpoint
from yolo_prune.config import PruneConfig
from yolo_prune.cost import layer_table, measure
from yolo_prune.datasets import batches, check_classes, resolve_dataset
from yolo_prune.errors import ConfigError, YoloPruneError
from yolo_prune.finetune import FinetuneConfig, SparseDetectionTrainer, finetune, resume
from yolo_prune.importance import get_criterion
from yolo_prune.load import load_model
from yolo_prune.plots import layer_widths, map_vs_macs
from yolo_prune.prune import prune
from yolo_prune.report import write_json
from yolo_prune.sensitivity import allocate
from yolo_prune.surgery import make_prunable
from yolo_prune.validate import validate

LOGGER = logging.getLogger("yolo_prune")
STATE = "state.json"


def default_run_dir(model: str, root: str | Path = "runs/prune") -> Path:
    """`runs/prune/<model stem>`, or `<stem>2`, `<stem>3`, ... when that exists already."""
    base = Path(root) / Path(model).stem
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}{n}")
        n += 1
    return candidate


def model_info(source: str, imgsz: int = 640) -> dict:
    """MACs, parameters and per-layer widths of a model file."""
    model = load_model(source)
    return {
        "model": str(source),
        **measure(model, imgsz).to_dict(),
        "layers": layer_table(model),
        "names": dict(model.names),
    }


def step_targets(target: float, steps: int) -> list[float]:
    """MACs fractions after each of `steps` pruning steps, evenly spaced from 1.0 down to `target`."""
    return [1.0 - (1.0 - target) * k / steps for k in range(1, steps + 1)]


def step_epochs(epochs: int, steps: int) -> list[int]:
    """Split an epoch budget over the steps; the last step gets the remainder."""
    share = epochs // steps
    return [share] * (steps - 1) + [epochs - share * (steps - 1)]


def run_prune(
    source: str,
    config: PruneConfig,
    out_dir: str | Path | None = None,
    *,
    train: FinetuneConfig | None = None,
    steps: int = 1,
    sparse_epochs: int = 0,
    split: str = "val",
) -> dict:
    """Prune `source` as `config` says, optionally fine-tuning (`train`) after each of `steps` steps; return the report.

    With `config.data`, mAP is measured on `split` before and after (and after every step). `sparse_epochs` trains
    the unpruned model with a group-sparsity regulariser first. Writes the run folder described in the module doc.
    """
    out = Path(out_dir) if out_dir is not None else default_run_dir(source)
    if Path(source).exists() and (out / "pruned.pt").resolve() == Path(source).resolve():
        raise ConfigError(f"--out would overwrite the input model {source}; choose another folder")
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    if steps > 1 and config.target_macs is None:
        raise ConfigError("--steps needs --target-macs (each step prunes to an intermediate MACs target)")
    if (train is not None or sparse_epochs) and not config.data:
        raise ConfigError("fine-tuning needs --data DATA.yaml")
    if train is not None and train.epochs < steps:
        raise ConfigError(f"--epochs ({train.epochs}) must be at least --steps ({steps})")
    if sparse_epochs < 0:
        raise ConfigError(f"--sparse-epochs must be 0 or more, got {sparse_epochs}")
    if (out / STATE).exists():
        raise ConfigError(f"{out} already holds a run; continue it with --resume {out} or choose another --out")
    LOGGER.info(f"loading {source}")
    original = load_model(source)
    if config.data:
        data = resolve_dataset(config.data, splits=("train", split) if train or sparse_epochs else (split,))
        check_classes(data, original.names)

    state = {
        "source": str(source),
        "config": config.to_dict(),
        "train": train.to_dict() if train else None,
        "steps": steps,
        "sparse_epochs": sparse_epochs,
        "split": split,
        "history": [],
    }
    created = not out.exists()
    try:
        return _run(out, state, original)
    except YoloPruneError:
        # Bad input found on the way (an unreachable target, a dataset mismatch): leave nothing half-written, unless
        # training already ran, whose results a corrected --resume may still want.
        if created and not any(out.glob("**/weights/last.pt")):
            shutil.rmtree(out, ignore_errors=True)
        raise


def resume_run(out_dir: str | Path) -> dict:
    """Continue the run in `out_dir` where it stopped: finished steps are kept, an interrupted fine-tune resumes from
    its `last.pt`, and nothing is pruned twice."""
    out = Path(out_dir)
    path = out / STATE
    if not path.is_file():
        raise ConfigError(f"nothing to resume: {path} not found")
    state = json.loads(path.read_text())
    if state.get("done"):
        raise ConfigError(f"the run in {out} is finished; its result is {out / 'pruned.pt'}")
    LOGGER.info(f"resuming {out} after {len(state['history'])} finished step(s)")
    return _run(out, state)


def _save_state(out: Path, state: dict) -> None:
    write_text(out / STATE, json.dumps(state, indent=2, default=str) + "\n")


def _measure_point(model, state: dict, label: str, base_macs: int | None = None) -> dict:
    """Cost and (with data) mAP of `model`, as one point of the run's history (`base_macs`: default its own)."""
    config, train = state["config"], state["train"] or {}
    cost = measure(model, config["imgsz"])
    point = {"label": label, **cost.to_dict(), "macs_fraction": cost.macs / (base_macs or cost.macs)}
    if config["data"]:
        LOGGER.info(f"validating {label} on '{state['split']}'")
        metrics = validate(
            model,
            config["data"],
            split=state["split"],
            imgsz=config["imgsz"],
            batch=train.get("batch", 16),
            device=train.get("device", "cpu"),
        )
        point.update(map50=metrics["map50"], map50_95=metrics["map50_95"], per_class=metrics["per_class"])
    return point


def _run(out: Path, state: dict, original=None) -> dict:
    config = PruneConfig(**state["config"])
    train = FinetuneConfig(**state["train"]) if state["train"] else None
    steps, source = state["steps"], state["source"]
    out.mkdir(parents=True, exist_ok=True)
    if original is None:
        LOGGER.info(f"loading {source}")
        original = load_model(source)
    if "before" not in state:
        state["before"] = _measure_point(original, state, "original")
        _save_state(out, state)
    base_macs = state["before"]["macs"]

    teacher = None
    if train is not None and train.distill:
        teacher = source if str(source).endswith(".pt") else str(out / "teacher.pt")
        if teacher != source and not Path(teacher).exists():
            save_checkpoint(original, teacher, {"role": "distillation teacher"})

    current = original
    if state["sparse_epochs"] and not state.get("sparse_done"):
        sparse_model = copy.deepcopy(original)
        make_prunable(sparse_model)
        sparse_cfg = replace(train or FinetuneConfig(imgsz=config.imgsz), epochs=state["sparse_epochs"], distill=False)
        last = out / "sparse" / "weights" / "last.pt"
        LOGGER.info(f"sparse training for {state['sparse_epochs']} epoch(s)")
        if last.exists():
            result = resume(last, trainer_class=SparseDetectionTrainer)
        else:
            result = finetune(
                sparse_model,
                config.data,
                sparse_cfg,
                out / "sparse",
                source=str(source),
                trainer_class=SparseDetectionTrainer,
            )
        state["sparse_done"] = str(result.best)
        _save_state(out, state)
    if state.get("sparse_done"):
        current = load_model(state["sparse_done"])

    table = _sensitivity_table(out, state, current) if config.allocation == "sensitivity" else None
    targets = step_targets(config.target_macs, steps) if config.target_macs is not None else [None]
    epochs = step_epochs(train.epochs, steps) if train else [0] * steps
    for k in range(len(state["history"]), steps):
        step_dir = out / f"step{k + 1}"
        if k > 0:
            current = load_model(state["history"][k - 1]["weights"])
        pruned_path = step_dir / "pruned.pt"
        last = step_dir / "train" / "weights" / "last.pt"
        if pruned_path.exists():
            pruned = load_model(pruned_path)  # pruned before an interruption: never prune twice
            prune_info = json.loads((step_dir / "prune.json").read_text())
        else:
            step_config = replace(config, target_macs=targets[k]) if targets[k] is not None else config
            LOGGER.info(f"step {k + 1}/{steps}: pruning to {_target_text(step_config)} with {config.method}")
            allocation = (lambda share: allocate(table, share)) if table else None
            pruned, result = prune(
                current,
                step_config,
                base_macs=base_macs,
                gradient_batches=_gradient_batches(step_config),
                allocation=allocation,
            )
            prune_info = result.to_dict()
            # prune.json first: pruned.pt is what marks the step as pruned when a run is resumed
            write_json(step_dir / "prune.json", prune_info)
            save_checkpoint(pruned, pruned_path, {"config": step_config.to_dict(), "base_macs": base_macs})
        weights = pruned_path
        if train is not None:
            LOGGER.info(f"step {k + 1}/{steps}: fine-tuning for {epochs[k]} epoch(s)")
            if last.exists():
                ft = resume(last)
            else:
                ft = finetune(
                    pruned,
                    config.data,
                    replace(train, epochs=epochs[k]),
                    step_dir / "train",
                    teacher=teacher,
                    source=str(pruned_path),
                )
            weights = ft.best
            pruned = load_model(weights)
        point = _measure_point(pruned, state, f"step {k + 1}", base_macs)
        state["history"].append({**point, "weights": str(weights), "prune": _prune_summary(prune_info)})
        _save_state(out, state)
        current = pruned

    return _finish(out, state, original, current, config, base_macs)


def _sensitivity_table(out: Path, state: dict, model) -> dict:
    """The table for allocation 'sensitivity': the given file, or a loss scan of `model` saved in the run."""
    from yolo_prune.objective import detection_loss
    from yolo_prune.sensitivity import scan

    given = state["config"].get("sensitivity")
    if given:
        path = Path(given)
        if not path.is_file():
            raise ConfigError(f"sensitivity table not found: {given}")
        try:
            table = json.loads(path.read_text())
            table["groups"], table["ratios"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{given} is not a sensitivity table ({type(e).__name__})") from e
        return table
    config = PruneConfig(**state["config"])
    data = resolve_dataset(config.data, splits=("train",))
    fixed = list(batches(data, "train", config.imgsz, config.batch, config.grad_batches))
    LOGGER.info("scanning sensitivity (detection loss on the train split) for the allocation")
    table = scan(model, lambda m: detection_loss(m, fixed), imgsz=config.imgsz)
    state["config"]["sensitivity"] = _save_sensitivity(table, out)["table"]
    _save_state(out, state)
    return table


def _target_text(config: PruneConfig) -> str:
    return f"{config.target_macs:.1%} MACs" if config.target_macs is not None else f"channel ratio {config.ratio}"


def _gradient_batches(config: PruneConfig):
    if not get_criterion(config.method).needs_gradients:
        return None
    data = resolve_dataset(config.data, splits=("train",))
    return lambda: batches(data, "train", config.imgsz, config.batch, config.grad_batches)


def _prune_summary(info: dict) -> dict:
    return {k: info[k] for k in ("ratio", "macs_fraction", "trials", "seconds", "rewrites")}


def _finish(out: Path, state: dict, original, final, config: PruneConfig, base_macs: int) -> dict:
    weights = out / "pruned.pt"
    save_checkpoint(final, weights, {"config": state["config"], "base_macs": base_macs, "source": state["source"]})
    last_prune = json.loads((out / f"step{state['steps']}" / "prune.json").read_text())
    after = {k: v for k, v in state["history"][-1].items() if k not in ("weights", "prune")}
    before_layers, after_layers = layer_table(original), layer_table(final)
    report = {
        "model": state["source"],
        "config": state["config"],
        "train": state["train"],
        "steps": state["steps"],
        "sparse_epochs": state["sparse_epochs"],
        "before": {**state["before"], "layers": before_layers},
        "after": {**after, "layers": after_layers},
        "history": [{k: v for k, v in h.items() if k != "per_class"} for h in state["history"]],
        "prune": last_prune,
        "files": {"weights": str(weights), "report": str(out / "report.json")},
    }
    layer_widths(before_layers, after_layers, out / "widths.png", title=f"{Path(state['source']).name}: channels")
    if "map50_95" in after:
        points = [state["before"], *state["history"]]
        report["files"]["map_vs_macs"] = str(map_vs_macs(points, out / "map_vs_macs.png"))
    write_json(out / "report.json", report)
    state["done"] = True
    _save_state(out, state)
    return report


def run_train(source: str, data: str, train: FinetuneConfig, out_dir: str | Path, *, split: str = "val") -> dict:
    """Train `source` as it is (any width, pruned or not; a YAML starts from random weights) on `data`.

    The same trainer and recipe as the fine-tuning steps of `run_prune`: the control run of a benchmark (the unpruned
    model given the same epochs), or the training of a baseline. Writes `out_dir/model.pt` and `report.json`.
    """
    out = Path(out_dir)
    if (out / "report.json").exists():
        raise ConfigError(f"{out} already holds a finished run; choose another --out")
    dataset = resolve_dataset(data, splits=("train", split))
    model = load_model(source, names=dataset["names"])  # a YAML is built with the dataset's classes
    check_classes(dataset, model.names)
    last = out / "train" / "weights" / "last.pt"
    LOGGER.info(f"training {source} for {train.epochs} epoch(s)")
    result = resume(last) if last.exists() else finetune(model, data, train, out / "train", source=str(source))
    trained = load_model(result.best)
    weights = save_checkpoint(trained, out / "model.pt", {"trained_from": str(source), "train": train.to_dict()})
    LOGGER.info(f"validating on '{split}'")
    metrics = validate(trained, data, split=split, imgsz=train.imgsz, batch=train.batch, device=train.device)
    report = {
        "model": str(source),
        "data": str(data),
        "train": train.to_dict(),
        "seconds": result.seconds,
        **measure(trained, train.imgsz).to_dict(),
        **metrics,
        "files": {"weights": str(weights), "train_dir": str(result.save_dir)},
    }
    write_json(out / "report.json", report)
    return report


def run_sensitivity(
    source: str,
    data: str | None,
    *,
    ratios: tuple[float, ...] = (0.25, 0.5, 0.75),
    metric: str = "loss",
    batches_count: int = 4,
    imgsz: int = 640,
    batch: int = 8,
    out_dir: str | Path | None = None,
) -> dict:
    """Scan every dependency group of `source` at `ratios` and write `sensitivity.json` and `sensitivity.png`.

    `metric="loss"`: detection loss on the first `batches_count` batches of the train split (fast; no augmentation);
    `metric="map"`: mAP50-95 on the val split (slow: one validation per group and ratio).
    """
    from yolo_prune.objective import detection_loss
    from yolo_prune.sensitivity import scan

    if not data:
        raise ConfigError(f"the sensitivity scan measures {metric} on a dataset: pass --data DATA.yaml")
    if metric not in ("loss", "map"):
        raise ConfigError(f"unknown metric '{metric}'; choose loss or map")
    if batches_count < 1:
        raise ConfigError(f"--batches must be at least 1, got {batches_count}")
    for r in ratios:
        if not 0.0 < r < 1.0:
            raise ConfigError(f"--ratios must be between 0 and 1 (exclusive), got {r}")
    out = Path(out_dir) if out_dir is not None else default_run_dir(source, "runs/sensitivity")
    dataset = resolve_dataset(data, splits=("train", "val"))
    model = load_model(source)
    check_classes(dataset, model.names)
    if metric == "loss":
        fixed = list(batches(dataset, "train", imgsz, batch, batches_count))

        def evaluate(m) -> float:
            return detection_loss(m, fixed)
    else:

        def evaluate(m) -> float:
            return validate(m, data, split="val", imgsz=imgsz, batch=batch)["map50_95"]

    LOGGER.info(f"scanning {source}: metric {metric}, ratios {', '.join(map(str, ratios))}")
    table = scan(model, evaluate, ratios=tuple(ratios), imgsz=imgsz, higher_is_better=metric == "map")
    table.update(model=str(source), data=str(data), metric=metric, batches=batches_count, batch=batch)
    table["files"] = _save_sensitivity(table, out)
    return table


def _save_sensitivity(table: dict, out: Path) -> dict[str, str]:
    """Write a scan's `sensitivity.json` and `sensitivity.png` into `out`; return their paths."""
    from yolo_prune.plots import sensitivity_heatmap

    write_json(out / "sensitivity.json", table)
    sensitivity_heatmap(table, out / "sensitivity.png")
    return {"table": str(out / "sensitivity.json"), "plot": str(out / "sensitivity.png")}


def run_unstructured(
    source: str,
    amount: float,
    out_dir: str | Path | None = None,
    *,
    data: str | None = None,
    train: FinetuneConfig | None = None,
    imgsz: int = 640,
    split: str = "val",
    latency_runs: int = 30,
) -> dict:
    """Zero the `amount` smallest conv weights of `source` (global L1), optionally fine-tune holding the zeros, and
    report what that buys: sparsity, MACs (unchanged), onnxruntime latency (unchanged) and gzip-compressed size."""
    import tempfile

    from yolo_prune.bench import bench
    from yolo_prune.unstructured import PLAIN_SENTENCE, MaskedDetectionTrainer, gzip_size, sparsify, sparsity

    out = Path(out_dir) if out_dir is not None else default_run_dir(source)
    if train is not None and not data:
        raise ConfigError("fine-tuning needs --data DATA.yaml")
    if (out / "report.json").exists():
        raise ConfigError(f"{out} already holds a finished run; choose another --out")
    original = load_model(source)
    if data:
        dataset = resolve_dataset(data, splits=("train", split) if train else (split,))
        check_classes(dataset, original.names)
    sparse = sparsify(original, amount)

    if train is not None:
        LOGGER.info(f"fine-tuning for {train.epochs} epoch(s), holding the zeros")
        last = out / "train" / "weights" / "last.pt"
        if last.exists():
            result = resume(last, trainer_class=MaskedDetectionTrainer)
        else:
            result = finetune(
                sparse, data, train, out / "train", source=str(source), trainer_class=MaskedDetectionTrainer
            )
        sparse = load_model(result.best)
    weights = save_checkpoint(sparse, out / "pruned.pt", {"unstructured": amount, "source": str(source)})

    def describe(model, path: Path) -> dict:
        cost = measure(model, imgsz)
        measured = sparsity(model)
        nonzero = sum(int((p != 0).sum()) for p in model.parameters())
        info = {
            **cost.to_dict(),
            "nonzero_params": nonzero,
            "sparsity": measured["overall"],
            "file_bytes": path.stat().st_size,
            "gzip_bytes": gzip_size(path),
        }
        if data:
            metrics = validate(model, data, split=split, imgsz=imgsz, batch=train.batch if train else 16)
            info.update(map50=metrics["map50"], map50_95=metrics["map50_95"])
        return info, measured["layers"]

    with tempfile.TemporaryDirectory(prefix="yolo_prune_") as tmp:
        original_path = save_checkpoint(original, Path(tmp) / "original.pt")
        before, _ = describe(original, original_path)
        after, layers = describe(sparse, weights)
        LOGGER.info("timing both models in onnxruntime")
        rows = bench([original_path, weights], imgsz=imgsz, runs=latency_runs)
    before["latency_ms"], after["latency_ms"] = rows[0].median_ms, rows[1].median_ms
    report = {
        "model": str(source),
        "unstructured": amount,
        "train": train.to_dict() if train else None,
        "before": before,
        "after": after,
        "layers": layers,
        "note": PLAIN_SENTENCE,
        "files": {"weights": str(weights), "report": str(out / "report.json")},
    }
    write_json(out / "report.json", report)
    return report
