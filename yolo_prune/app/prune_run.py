"""`yolo-prune prune`: load -> [validate] -> [sparse training] -> (prune -> [fine-tune] -> [validate]) x steps.

One run folder holds everything:

    DIR/state.json        the plan and how far the run got (`app.state.RunState`; makes `--resume` possible)
    DIR/sparse/           Ultralytics run of the sparse-training phase, if asked
    DIR/sensitivity.json  the scan behind a table-driven allocation, when the run made it (and sensitivity.png)
    DIR/step<k>/pruned.pt the model right after pruning step k, with step<k>/prune.json
    DIR/step<k>/train/    Ultralytics run of fine-tuning step k (weights/best.pt, last.pt, results.csv)
    DIR/pruned.pt         the result: pruned, and fine-tuned when asked (FP32 Ultralytics checkpoint)
    DIR/report.json       before/after MACs, params, mAP, per-layer widths, per-step history
    DIR/widths.png, DIR/map_vs_macs.png

This module orchestrates; the plan is `app.plan`, a prune measured end to end is `pruning.speed`, and the timing
behind it is the runtime's (`deploy.runtimes`, `deploy.bench.AgainstOriginal`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from torch import nn

from yolo_prune.app.folders import check_out_dir, default_run_dir, remove_failed
from yolo_prune.app.plan import LATENCY_BATCH_OPTION, RunPlan, plan_prune
from yolo_prune.app.prune_report import PruneReport, finish, measure_point, prune_summary
from yolo_prune.app.sensitivity_run import cached_scan, load_table, save_table
from yolo_prune.app.state import STATE, RunState
from yolo_prune.atomic import write_json
from yolo_prune.data.datasets import batches, check_model, check_split, resolve_dataset
from yolo_prune.deploy.bench import AgainstOriginal
from yolo_prune.deploy.runtimes import get_runtime
from yolo_prune.errors import ConfigError, TargetUnreachableError
from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.importance import get_criterion
from yolo_prune.pruning.load import check_source, load_model, task_of
from yolo_prune.pruning.objective import detection_loss
from yolo_prune.pruning.sensitivity import scan
from yolo_prune.pruning.speed import ModelTimer, Timers, candidate_allocations, prune_measured
from yolo_prune.pruning.surgery import make_prunable
from yolo_prune.train.finetune import FinetuneConfig, finetune, resume
from yolo_prune.train.trainers import SparseDetectionTrainer

__all__ = ["PruneReport", "resume_run", "run_plan", "run_prune", "runtime_timers", "step_epochs", "step_targets"]

LOGGER = logging.getLogger("yolo_prune")
# Interleaved rounds per end-to-end check of a speed target, and untimed rounds before it: as many as `bench`'s own
# figures take, since 30 rounds scattered 6% around a 1.68x pair (docs/benchmarks.md section 27).
SPEEDUP_RUNS = 100
SPEEDUP_WARMUP = 10


def step_targets(target: float, steps: int) -> list[float]:
    """MACs fractions after each of `steps` pruning steps, evenly spaced from 1.0 down to `target`."""
    return [1.0 - (1.0 - target) * k / steps for k in range(1, steps + 1)]


def step_epochs(epochs: int, steps: int) -> list[int]:
    """Split an epoch budget over the steps; the last step gets the remainder."""
    share = epochs // steps
    return [share] * (steps - 1) + [epochs - share * (steps - 1)]


def runtime_timers(config: PruneConfig) -> Timers:
    """The timers of the config's runtime: its conv timer for the latency model, and end-to-end checks against an
    original (each module saved, and exported where the runtime times exports, once)."""
    runtime = get_runtime(config.runtime, config.threads, config.latency_batch, LATENCY_BATCH_OPTION)

    @contextlib.contextmanager
    def against(original: nn.Module) -> Iterator[ModelTimer]:
        with tempfile.TemporaryDirectory(prefix="yolo-prune-measure-") as tmp:
            yield AgainstOriginal(
                original,
                Path(tmp),
                runtime=config.runtime,
                imgsz=config.imgsz,
                threads=config.threads,
                batch=config.latency_batch,
                runs=SPEEDUP_RUNS,
                warmup=SPEEDUP_WARMUP,
            )

    return Timers(runtime.layer_timer(config.threads, config.latency_batch), against)


def run_prune(
    source: str,
    config: PruneConfig,
    out_dir: str | Path | None = None,
    *,
    train: FinetuneConfig | None = None,
    steps: int = 1,
    sparse_epochs: int = 0,
    split: str = "val",
    timers: Timers | None = None,
) -> PruneReport:
    """Prune `source` as `config` says, optionally fine-tuning (`train`) after each of `steps` steps; the run that
    `yolo-prune prune` makes, with the same defaults (`app.plan`).

    `config.target_latency` (milliseconds on `config.runtime`, end to end) is met as a speedup: the original is timed
    first and the target becomes the speedup that reaches it. With `config.data`, mAP is measured on `split` before
    and after (and after every step). `sparse_epochs` trains the unpruned model with a group-sparsity regulariser
    first. `timers` replaces the runtime's (`runtime_timers`). Writes the run folder described in the module doc.
    """
    plan = plan_prune(source, config, train=train, steps=steps, sparse_epochs=sparse_epochs, split=split)
    return run_plan(plan, out_dir, timers=timers)


def run_plan(plan: RunPlan, out_dir: str | Path | None = None, *, timers: Timers | None = None) -> PruneReport:
    """Run a plan `plan_prune` made (the CLI checks its options against the plan first, then runs it)."""
    source = plan.source
    check_source(source)
    out = Path(out_dir) if out_dir is not None else default_run_dir(source)
    if Path(source).exists() and (out / "pruned.pt").resolve() == Path(source).resolve():
        raise ConfigError(f"--out would overwrite the input model {source}; choose another folder")
    if (out / STATE).exists():
        raise ConfigError(f"{out} already holds a run; continue it with --resume {out} or choose another --out")
    check_out_dir(out)
    data = resolve_dataset(plan.config.data, plan.splits, chosen=plan.split) if plan.config.data else None
    LOGGER.info(f"loading {source}")
    original = load_model(source)
    if data is not None:
        check_model(data, original)
        for name in plan.splits:  # bad images and labels are reported before the run starts
            check_split(data, name, task=task_of(original), need_boxes=plan.training and name == "train")
    if plan.timed and timers is None:
        timers = runtime_timers(plan.config)
    if plan.config.target_latency is not None:
        plan = _as_speedup(plan, original, timers)

    state = RunState.start(plan)
    created = not out.exists()
    try:
        return _run(out, state, original, timers)
    except KeyboardInterrupt:
        if not (out / STATE).exists():  # nothing to resume yet
            remove_failed(out, created)
        raise  # the folder holds what `--resume` continues from, as the CLI says
    except Exception:
        # A fresh run that failed (bad input found on the way, a library error) leaves no folder behind, so the same
        # command can run again, unless fine-tuning already ran, whose last.pt `--resume` continues from.
        remove_failed(out, created, keep="**/weights/last.pt")
        raise


def resume_run(out_dir: str | Path, *, timers: Timers | None = None) -> PruneReport:
    """Continue the run in `out_dir` where it stopped: finished steps are kept, an interrupted fine-tune resumes from
    its `last.pt`, and nothing is pruned twice."""
    out = Path(out_dir)
    state = RunState.load(out)
    if state.done:
        raise ConfigError(f"the run in {out} is finished; its result is {out / 'pruned.pt'}")
    LOGGER.info(f"resuming {out} after {len(state.history)} finished step(s)")
    return _run(out, state, timers=timers)


def _run(out: Path, state: RunState, original=None, timers: Timers | None = None) -> PruneReport:
    plan = state.plan
    config, train, steps = plan.config, plan.train, plan.steps
    out.mkdir(parents=True, exist_ok=True)
    if original is None:
        LOGGER.info(f"loading {state.source}")
        original = load_model(state.source)
    if state.before is None:
        state.before = measure_point(original, state, "original")
        state.save(out)
    base_macs = state.before["macs"]
    teacher = _teacher(out, state, original)

    current = original
    if state.sparse_epochs and not state.sparse_done:
        state.sparse_done = str(_sparse_train(out, state, original).best)
        state.save(out)
    if state.sparse_done:
        current = load_model(state.sparse_done)

    table = _sensitivity_table(out, state, current) if plan.uses_table else None
    if plan.timed and timers is None:
        timers = runtime_timers(config)
    targets = step_targets(config.target_macs, steps) if config.target_macs is not None else [None]
    epochs = step_epochs(train.epochs, steps) if train else [0] * steps
    for k in range(len(state.history), steps):
        step_dir = out / f"step{k + 1}"
        if k > 0:
            current = load_model(state.history[k - 1]["weights"])
        pruned_path = step_dir / "pruned.pt"
        if pruned_path.exists():
            pruned = load_model(pruned_path)  # pruned before an interruption: never prune twice
            prune_info = json.loads((step_dir / "prune.json").read_text())
        else:
            step_config = replace(config, target_macs=targets[k]) if targets[k] is not None else config
            LOGGER.info(f"step {k + 1}/{steps}: pruning to {_target_text(step_config)} with {config.method}")
            pruned, result = _prune_step(current, step_config, table, timers, base_macs)
            prune_info = result.to_dict()
            # prune.json first: pruned.pt is what marks the step as pruned when a run is resumed
            write_json(step_dir / "prune.json", prune_info)
            save_checkpoint(pruned, pruned_path, {"config": step_config.to_dict(), "base_macs": base_macs})
        weights = pruned_path
        if train is not None:
            LOGGER.info(f"step {k + 1}/{steps}: fine-tuning for {epochs[k]} epoch(s)")
            last = step_dir / "train" / "weights" / "last.pt"
            if last.exists():
                ft = resume(last)
            else:
                step_train = replace(train, epochs=epochs[k])
                ft = finetune(
                    pruned, config.data, step_train, step_dir / "train", teacher=teacher, source=str(pruned_path)
                )
            weights = ft.best
            pruned = load_model(weights)
        point = measure_point(pruned, state, f"step {k + 1}", base_macs)
        state.history.append({**point, "weights": str(weights), "prune": prune_summary(prune_info)})
        state.save(out)
        current = pruned

    return finish(out, state, original, current, base_macs)


def _prune_step(current, config: PruneConfig, table: dict | None, timers: Timers | None, base_macs: int):
    """One prune step: the allocations to try (`speed.candidate_allocations`), pruned and measured end to end where
    the plan asks (`speed.prune_measured`). An unreachable speed target says what its runtime adds."""
    allocations = candidate_allocations(current, config, timers.layers if timers else None, table)
    try:
        return prune_measured(
            current,
            config,
            allocations,
            timers=timers,
            base_macs=base_macs,
            gradient_batches=_gradient_batches(config, task_of(current)),
        )
    except TargetUnreachableError as e:
        if config.target_speedup is not None and (
            hint := get_runtime(config.runtime).unreachable_hint(config.latency_batch)
        ):
            raise TargetUnreachableError(f"{e}{hint}") from e
        raise


def _as_speedup(plan: RunPlan, original, timers: Timers) -> RunPlan:
    """The plan with its latency target turned into the speedup that takes `original` there (timed here)."""
    config = plan.config
    with timers.against(original) as timer:
        ms = timer([])[0].median_ms
    LOGGER.info(f"the original runs in {ms:.2f} ms on {config.runtime} at imgsz {config.imgsz}")
    if config.target_latency >= ms:
        raise ConfigError(
            f"--target-latency {config.target_latency:g} ms is not below the original's {ms:.2f} ms on "
            f"{config.runtime}: nothing to prune"
        )
    speedup = replace(config, target_latency=None, target_speedup=ms / config.target_latency)
    return replace(plan, config=speedup)


def _teacher(out: Path, state: RunState, original) -> str | None:
    """The distillation teacher: the source checkpoint, or the original saved in the run (for a YAML source)."""
    if state.train is None or not state.train.distill:
        return None
    if state.source.endswith(".pt"):
        return state.source
    teacher = out / "teacher.pt"
    if not teacher.exists():
        save_checkpoint(original, teacher, {"role": "distillation teacher"})
    return str(teacher)


def _sparse_train(out: Path, state: RunState, original):
    """Train the unpruned model with the group-lasso regulariser (or resume that training)."""
    last = out / "sparse" / "weights" / "last.pt"
    LOGGER.info(f"sparse training for {state.sparse_epochs} epoch(s)")
    if last.exists():
        return resume(last, trainer_class=SparseDetectionTrainer)
    sparse_model = copy.deepcopy(original)
    make_prunable(sparse_model)
    base = state.train or FinetuneConfig(imgsz=state.config.imgsz)
    sparse_cfg = replace(base, epochs=state.sparse_epochs, distill=False)
    return finetune(
        sparse_model,
        state.config.data,
        sparse_cfg,
        out / "sparse",
        source=state.source,
        trainer_class=SparseDetectionTrainer,
    )


def _sensitivity_table(out: Path, state: RunState, model) -> dict:
    """The table for a table-driven allocation: the given file, the scan this run saved, or a loss scan of `model`
    (cached across runs) saved in the run."""
    config = state.config
    if config.sensitivity or state.table:
        return load_table(config.sensitivity or state.table)
    data = resolve_dataset(config.data, splits=("train",))

    def run_scan() -> dict:
        fixed = list(batches(data, "train", config.imgsz, config.batch, config.grad_batches, task_of(model)))
        LOGGER.info("scanning sensitivity (the training loss on the train split) for the allocation")
        return scan(model, lambda m: detection_loss(m, fixed), imgsz=config.imgsz)

    settings = {"metric": "loss", "imgsz": config.imgsz, "batch": config.batch, "batches": config.grad_batches}
    settings["labels"] = check_split(data, "train", task=task_of(model)).fingerprint  # relabelled data: a new scan
    table, reused = cached_scan(state.sparse_done or state.source, config.data, settings, run_scan)
    if reused:
        LOGGER.info("sensitivity: reusing the scan of the same weights, data and settings (cache)")
    state.table = save_table(table, out)["table"]  # a resume reads it back
    state.save(out)
    return table


def _target_text(config: PruneConfig) -> str:
    if config.target_speedup is not None:
        return f"{config.target_speedup:.2f}x on {config.runtime}"
    return f"{config.target_macs:.1%} MACs" if config.target_macs is not None else f"channel ratio {config.ratio}"


def _gradient_batches(config: PruneConfig, task: str):
    if not get_criterion(config.method).needs_gradients:
        return None
    data = resolve_dataset(config.data, splits=("train",))
    return lambda: batches(data, "train", config.imgsz, config.batch, config.grad_batches, task)
