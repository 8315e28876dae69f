"""`yolo-prune`: a thin command line over the Python API. Parsing and printing only: each command calls one run of
`yolo_prune.app` (or one stage), prints `render`'s table or `--json`, and `_handled` turns bad input into one line."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from yolo_prune._version import __version__
from yolo_prune.deploy.formats import FORMATS
from yolo_prune.deploy.runtimes import DEFAULT_RUNTIME, RUNTIMES
from yolo_prune.errors import ConfigError, YoloPruneError
from yolo_prune.pruning import allocation as allocations
from yolo_prune.pruning import importance as criteria

app = typer.Typer(
    name="yolo-prune",
    help="Shrink Ultralytics YOLO detectors with structured (dependency-graph) channel pruning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ModelArg = Annotated[str, typer.Argument(help="Checkpoint (.pt), official name (yolov8n.pt) or model YAML.")]
DistillWeightOpt = Annotated[
    float | None, typer.Option("--distill-weight", help="Distillation loss weight (Ultralytics 'dis').")
]  # prune and train
DEVICE_HELP = "cpu, 0, or 0,1 for multi-GPU (DDP); default: the GPU when there is one, else the CPU."
LR0_HELP = "AdamW's (default: Ultralytics' automatic choice, AdamW at 0.01 / (4 + classes) under 10,000 iterations)."
TRAINING_OPTIONS = ("device", "lr0", "workers", "seed")  # prune: what only fine-tuning (--epochs) uses
# Click's exceptions, from the Click that typer runs on: its own copy from typer 0.2x on, Click itself before.
CLICK_ERRORS = sys.modules[typer.BadParameter.__module__]


class _Formatter(logging.Formatter):
    """Stage lines as they are; warnings as `warning: <message>`, like the commands' own warnings."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return f"{record.levelname.lower()}: {message}" if record.levelno >= logging.WARNING else message


def _setup_logging() -> None:
    logger = logging.getLogger("yolo_prune")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False  # converters (litert-torch, coremltools) give the root logger a handler of their own
    logger.setLevel(logging.INFO)
    logging.getLogger("ultralytics").setLevel(logging.WARNING)


def _handled(interrupted: Callable[..., str] | None = None):
    """Decorator for a command: a `YoloPruneError` ends in `error: <message>` and exit code 1; Ctrl-C ends in exit
    code 130 with `interrupted(**arguments)` (how to continue) when given."""

    def wrap(command):
        @functools.wraps(command)
        def run(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except YoloPruneError as e:
                _error(str(e))
                raise typer.Exit(code=1) from None
            except KeyboardInterrupt:
                hint = f"; {interrupted(**kwargs)}" if interrupted else ""
                typer.echo(f"\ninterrupted{hint}", err=True)
                raise typer.Exit(code=130) from None

        return run

    return wrap


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"yolo-prune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Shrink Ultralytics YOLO detectors with structured (dependency-graph) channel pruning."""


def _error(message: str) -> None:
    """`error: <message>` on one line of stderr, however many lines the message had."""
    typer.echo("error: " + " ".join(line.strip() for line in message.strip().splitlines() if line.strip()), err=True)


def _typed(ctx: typer.Context, names: Iterable[str]) -> list[str]:
    """The parameters among `names` that the command line gave, as the user typed them: an option by its flag
    (`--epochs`; `--stock-dfl` for the off side of a pair), an argument by its name (MODEL)."""
    names = set(names)
    typed = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name not in names or source is None or source.name != "COMMANDLINE":
            continue
        if param.param_type_name == "argument":
            typed.append(param.name.upper())
        else:
            off = param.secondary_opts and ctx.params[param.name] is False
            typed.append(param.secondary_opts[0] if off else param.opts[0])
    return typed


def _refuse(ctx: typer.Context, names: Iterable[str], why: str) -> None:
    """Options that would do nothing in this combination are an error, not silently ignored: one line naming those
    among `names` the command line gave, then `why`."""
    typed = _typed(ctx, names)
    if typed:
        raise ConfigError(f"{', '.join(typed)}: {why}")


@app.command()
@_handled(lambda resume=None, out=None, **_: f"continue with: yolo-prune prune --resume {resume or out or 'DIR'}")
def prune(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Argument(help="Checkpoint (.pt), official name (yolov8n.pt) or model YAML.")
    ] = None,
    target_macs: Annotated[
        float | None, typer.Option("--target-macs", help="Fraction of the original MACs to keep, e.g. 0.5.")
    ] = None,
    target_speedup: Annotated[
        float | None,
        typer.Option("--target-speedup", help="Times faster than the original on --runtime, measured end to end."),
    ] = None,
    target_latency: Annotated[
        float | None,
        typer.Option(
            "--target-latency",
            help="Milliseconds per call on --runtime (one image, or --latency-batch images), measured end to end.",
        ),
    ] = None,
    ratio: Annotated[
        float | None, typer.Option("--ratio", help="Fraction of channels to remove from every prunable group.")
    ] = None,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help="Where latency is measured (the latency allocation, the sensitivity allocation's blocks, speed "
            f"targets): {', '.join(RUNTIMES)}.",
        ),
    ] = DEFAULT_RUNTIME,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="Runtime threads for latency (default: the runtime's own); as deployed."),
    ] = None,
    latency_batch: Annotated[
        int,
        typer.Option(
            "--latency-batch",
            help="Images per call where latency is measured (torch runtimes; a GPU server's batch, e.g. 32).",
        ),
    ] = 1,
    method: Annotated[str, typer.Option("--method", help=f"Importance: {', '.join(criteria.names())}.")] = "l2",
    allocation: Annotated[
        str | None,
        typer.Option(
            "--allocation",
            help=f"How the budget is spread: {', '.join(allocations.names())}. Default, for every target: "
            f"{allocations.DEFAULT_WITH_DATA} with --data (the scan cached) or --sensitivity, else "
            f"{allocations.DEFAULT_WITHOUT_DATA}; {allocations.DEFAULT_FOR_RATIO} with --ratio. Both keep widths in "
            "the runtime's channel blocks.",
        ),
    ] = None,
    global_pruning: Annotated[bool, typer.Option("--global", help="Same as --allocation global.")] = False,
    sensitivity: Annotated[
        str | None,
        typer.Option(
            "--sensitivity",
            help="sensitivity.json (of `yolo-prune sensitivity`) for --allocation sensitivity or latency, instead of "
            "scanning --data.",
        ),
    ] = None,
    unstructured: Annotated[
        float | None, typer.Option("--unstructured", help="Zero this share of conv weights instead (comparison).")
    ] = None,
    round_to: Annotated[
        int | None,
        typer.Option(
            "--round-to",
            help="Keep channel counts multiples of N. Latency and sensitivity allocation: without it, the runtime's "
            "block and 2x / 4x coarser ones are pruned, timed end to end and the fastest per MAC kept; with it, N is "
            "used as given (sensitivity: each kept width rounded up to N, never below the scan's share; 1 keeps its "
            "free widths). Uniform and global: rounded down (torch-pruning's round_to).",
        ),
    ] = None,
    imgsz: Annotated[
        int,
        typer.Option(
            "--imgsz",
            help="Square input size (a multiple of 32) for MACs, latency and tracing, and with --data for mAP, the "
            "scan and fine-tuning.",
        ),
    ] = 640,
    data: Annotated[
        str | None, typer.Option("--data", help="Dataset YAML: mAP before/after, fine-tuning, --method taylor.")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Fine-tune epochs in total (0: no fine-tuning).")] = 0,
    steps: Annotated[int, typer.Option("--steps", help="Prune in K steps, fine-tuning between them.")] = 1,
    distill: Annotated[bool, typer.Option("--distill", help="Unpruned model teaches the pruned one.")] = False,
    distill_weight: DistillWeightOpt = None,
    sparse_epochs: Annotated[
        int, typer.Option("--sparse-epochs", help="Sparse-train the unpruned model M epochs first.")
    ] = 0,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            help="Batch size on --data: fine-tuning (one optimizer step per batch) and its validation, the "
            "sensitivity scan, --method taylor.",
        ),
    ] = 16,
    device: Annotated[str | None, typer.Option("--device", help=f"Fine-tuning device: {DEVICE_HELP}")] = None,
    lr0: Annotated[float | None, typer.Option("--lr0", help=f"Fine-tuning's initial learning rate, {LR0_HELP}")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Fine-tuning's dataloader workers.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Fine-tuning seed (Ultralytics' seed=).")] = 0,
    split: Annotated[str, typer.Option("--split", help="Split for mAP before/after.")] = "val",
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue the interrupted run in this folder.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/prune/<model>).")] = None,
) -> None:
    """Prune MODEL's channels (and fine-tune with --data --epochs); write OUT/pruned.pt and OUT/report.json."""
    from yolo_prune.app.plan import plan_prune
    from yolo_prune.app.prune_run import resume_run, run_plan
    from yolo_prune.app.render import prune_text, unstructured_text
    from yolo_prune.app.unstructured_run import run_unstructured
    from yolo_prune.pruning.config import PruneConfig
    from yolo_prune.train.finetune import FinetuneConfig

    if resume is not None:
        others = [param.name for param in ctx.command.params if param.name != "resume"]
        _refuse(ctx, others, f"--resume continues the run in {resume} with the options it was started with")
        typer.echo(prune_text(resume_run(resume)))
        return
    if model is None:
        raise ConfigError("give a MODEL to prune, or --resume DIR")
    if global_pruning and allocation is not None:
        raise ConfigError(f"--global is --allocation global; it contradicts --allocation {allocation}")
    if distill_weight is not None and not distill:
        raise ConfigError("--distill-weight weighs the distillation loss: it needs --distill")
    if epochs < 0:
        raise ConfigError(f"--epochs must be 0 (no fine-tuning) or more, got {epochs}")
    if not epochs:
        _refuse(ctx, TRAINING_OPTIONS, "only used for fine-tuning, with --epochs N")
    if data is None:
        _refuse(ctx, ("batch", "split"), "only used with --data DATA.yaml")
    train = None
    if epochs:
        train = FinetuneConfig(
            epochs=epochs,
            batch=batch,
            imgsz=imgsz,
            device=device,
            workers=workers,
            lr0=lr0,
            distill=distill,
            distill_weight=distill_weight,
            seed=seed,
        )
    elif distill:
        raise ConfigError("--distill needs fine-tuning: pass --epochs N")
    if unstructured is not None:
        if any(t is not None for t in (target_macs, ratio, target_speedup, target_latency)):
            raise ConfigError("--unstructured replaces --target-macs/--target-speedup/--target-latency/--ratio")
        if distill:
            raise ConfigError("--distill is for structured pruning, not --unstructured")
        structured = ("runtime", "threads", "latency_batch", "method", "allocation", "global_pruning")
        structured += ("sensitivity", "round_to", "steps", "sparse_epochs")
        _refuse(ctx, structured, "structured pruning options; --unstructured zeroes the smallest weights instead")
        report = run_unstructured(model, unstructured, out, data=data, train=train, imgsz=imgsz, split=split)
        typer.echo(unstructured_text(report))
        return
    config = PruneConfig(
        target_macs=target_macs,
        ratio=ratio,
        target_speedup=target_speedup,
        target_latency=target_latency,
        runtime=runtime,
        threads=threads,
        latency_batch=latency_batch,
        method=method,
        allocation="global" if global_pruning else allocation,
        sensitivity=sensitivity,
        round_to=round_to,
        imgsz=imgsz,
        data=data,
        batch=batch,
    )
    plan = plan_prune(model, config, train=train, steps=steps, sparse_epochs=sparse_epochs, split=split)
    if not plan.timed:
        _refuse(
            ctx,
            ("runtime", "threads", "latency_batch"),
            f"latency is not measured with --allocation {plan.config.allocation}"
            + (" and --round-to" if plan.config.round_to is not None else "")
            + " (it is with --allocation latency, sensitivity without --round-to, --target-speedup or "
            "--target-latency)",
        )
    report = run_plan(plan, out)
    typer.echo(prune_text(report))


@app.command()
@_handled()
def sensitivity(
    ctx: typer.Context,
    model: ModelArg,
    data: Annotated[str | None, typer.Option("--data", help="Dataset YAML (required).")] = None,
    ratios: Annotated[str, typer.Option("--ratios", help="Comma-separated shares of channels to remove.")] = (
        "0.25,0.5,0.75"
    ),
    metric: Annotated[str, typer.Option("--metric", help="loss (fast, train batches) or map (val split).")] = "loss",
    batches: Annotated[int, typer.Option("--batches", help="Batches for the loss metric.")] = 4,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 8,
    imgsz: Annotated[
        int, typer.Option("--imgsz", help="Square image size (a multiple of 32) the loss or mAP is measured at.")
    ] = 640,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for sensitivity.json and .png.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as one JSON object.")] = False,
) -> None:
    """How much each prunable group hurts when it loses channels; writes sensitivity.json and sensitivity.png."""
    from yolo_prune.app.render import sensitivity_text
    from yolo_prune.app.sensitivity_run import run_sensitivity

    try:
        values = tuple(float(r) for r in ratios.split(","))
    except ValueError:
        raise ConfigError(f"--ratios must be comma-separated numbers, got '{ratios}'") from None
    if metric == "map":
        _refuse(ctx, ("batches",), "only used with --metric loss (--metric map validates on the whole val split)")
    table = run_sensitivity(
        model, data, ratios=values, metric=metric, batches_count=batches, imgsz=imgsz, batch=batch, out_dir=out
    )
    typer.echo(json.dumps(table) if as_json else sensitivity_text(table))


@app.command()
@_handled(lambda out, **_: f"run the same command again to continue from {out}/train/weights/last.pt")
def train(
    model: ModelArg,
    data: Annotated[str, typer.Option("--data", help="Dataset YAML.")],
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs.")] = 10,
    imgsz: Annotated[
        int, typer.Option("--imgsz", help="Square training and validation image size (a multiple of 32).")
    ] = 640,
    batch: Annotated[int, typer.Option("--batch", help="Batch size (one optimizer step per batch).")] = 16,
    device: Annotated[str | None, typer.Option("--device", help=DEVICE_HELP)] = None,
    lr0: Annotated[float | None, typer.Option("--lr0", help=f"Initial learning rate, {LR0_HELP}")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Dataloader workers.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Training seed (Ultralytics' seed=).")] = 0,
    split: Annotated[str, typer.Option("--split", help="Split for the final mAP.")] = "val",
    teacher: Annotated[
        Path | None,
        typer.Option(
            "--teacher",
            help="A trained checkpoint with MODEL's classes that teaches it while it trains (Ultralytics' knowledge "
            "distillation), e.g. the unpruned model a pruned one came from.",
        ),
    ] = None,
    distill_weight: DistillWeightOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/train/exp"),
) -> None:
    """Train MODEL as it is (pruned or not) with the recipe of the fine-tuning steps; write OUT/model.pt."""
    from yolo_prune.app.render import train_text
    from yolo_prune.app.train_run import run_train
    from yolo_prune.train.finetune import FinetuneConfig

    if distill_weight is not None and teacher is None:
        raise ConfigError("--distill-weight weighs the distillation loss: it needs --teacher")
    config = FinetuneConfig(
        epochs=epochs,
        batch=batch,
        imgsz=imgsz,
        device=device,
        workers=workers,
        lr0=lr0,
        distill=teacher is not None,
        distill_weight=distill_weight,
        seed=seed,
    )
    report = run_train(model, data, config, out, split=split, teacher=teacher)
    typer.echo(train_text(report, imgsz, split))


@app.command()
@_handled()
def val(
    model: Annotated[
        str,
        typer.Argument(help="Checkpoint (.pt) or an export: .onnx, .tflite, .mnn, .torchscript, or its folder."),
    ],
    data: Annotated[str, typer.Option("--data", help="Dataset YAML.")],
    split: Annotated[str, typer.Option("--split", help="val or test.")] = "val",
    imgsz: Annotated[
        int,
        typer.Option(
            "--imgsz", help="Square validation image size (a multiple of 32); a fixed-size export's own size."
        ),
    ] = 640,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 16,
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu or a GPU index; default: the GPU when there is one, else the CPU."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """mAP50, mAP50-95 and per-class results of MODEL on a dataset split."""
    from yolo_prune.app.render import val_text
    from yolo_prune.checks import check_model_file
    from yolo_prune.deploy.formats import format_of
    from yolo_prune.train.validate import validate

    exported = format_of(Path(model))
    if exported is None or not Path(model).is_dir():  # exported folders (OpenVINO, NCNN, ...) are Ultralytics' to read
        check_model_file(model, (".pt", *(f.suffix for f in FORMATS.values() if f.suffix.startswith("."))))
    result = validate(model, data, split=split, imgsz=imgsz, batch=batch, device=device)
    typer.echo(json.dumps({"model": model, **result}) if as_json else val_text(result, model, data))


@app.command()
@_handled()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/demo"),
    fast: Annotated[
        bool,
        typer.Option("--fast", help="A reduced run for CI: fewer synthetic images, fewer epochs."),
    ] = False,
    task: Annotated[str, typer.Option("--task", help="detect, segment (or seg), pose or obb.")] = "detect",
) -> None:
    """The whole pipeline offline: synthetic data, prune to 50% MACs, fine-tune, val, ONNX export, bench, report."""
    from yolo_prune.app.demo import run_demo
    from yolo_prune.app.render import demo_text

    result = run_demo(out, fast=fast, task=task)
    typer.echo(demo_text(result, str(out / "report.md")))


@app.command()
@_handled()
def info(
    model: ModelArg,
    imgsz: Annotated[int, typer.Option("--imgsz", help="Square input size (a multiple of 32) for MACs.")] = 640,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """MACs, parameters and per-layer output channels of MODEL."""
    from yolo_prune.app.info import model_info
    from yolo_prune.app.render import info_text
    from yolo_prune.checks import check_imgsz

    check_imgsz(imgsz)
    result = model_info(model, imgsz)
    typer.echo(json.dumps(result) if as_json else info_text(result))


@app.command()
@_handled()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Dataset folder; reused as is if made with the same options.")],
    n_train: Annotated[int, typer.Option("--train", help="Training images.")] = 320,
    n_val: Annotated[int, typer.Option("--val", help="Validation images.")] = 96,
    imgsz: Annotated[int, typer.Option("--imgsz", help="Image side in pixels.")] = 128,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same options give the same files.")] = 0,
    difficulty: Annotated[str, typer.Option("--difficulty", help="Preset: easy (the demo's) or hard.")] = "easy",
    task: Annotated[
        str, typer.Option("--task", help="Labels: detect (boxes), segment (polygons), pose (4 keypoints) or obb.")
    ] = "detect",
) -> None:
    """Generate the seeded synthetic shapes dataset (YOLO layout, OUT/data.yaml) that the offline demo trains on."""
    from yolo_prune.app.render import synth_text
    from yolo_prune.data.synthetic import generate, read_manifest

    data_yaml = generate(out, n_train=n_train, n_val=n_val, imgsz=imgsz, seed=seed, difficulty=difficulty, task=task)
    typer.echo(synth_text(read_manifest(data_yaml.parent), data_yaml))


@app.command()
@_handled()
def export(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) to export; it is never modified.")],
    fmt: Annotated[
        str, typer.Option("--format", help=f"{', '.join(FORMATS)}; several separated by commas, or all.")
    ] = "onnx",
    imgsz: Annotated[
        int, typer.Option("--imgsz", help="Square input size (a multiple of 32) of the exported model.")
    ] = 640,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="Dynamic batch and image size.")] = False,
    opset: Annotated[int | None, typer.Option("--opset", help="onnx: opset version (default: Ultralytics').")] = None,
    simplify: Annotated[bool, typer.Option("--simplify", help="onnx: simplify the graph with onnxslim.")] = False,
    end2end: Annotated[
        bool, typer.Option("--end2end", help="Export the NMS-free one-to-one head of YOLO26: (B, 300, 6).")
    ] = False,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="onnx, openvino, tflite: also write <stem>_int8<suffix>, INT8 calibrated on --data's train images.",
        ),
    ] = False,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Dataset YAML: each export's mAP50-95 on its val split; --int8 calibrates on it."),
    ] = None,
    calib: Annotated[int, typer.Option("--calib", help="Number of calibration images for --int8.")] = 100,
    against: Annotated[
        Path | None,
        typer.Option("--against", help="Original checkpoint: time each export against it in the format's runtime."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="CPU threads when timing with --against (default: the runtime's).")
    ] = None,
    runs: Annotated[int, typer.Option("--runs", help="Interleaved timing rounds with --against.")] = 50,
    tolerance: Annotated[
        float | None,
        typer.Option("--tolerance", help="Parity tolerance relative to the output range (default 1e-4)."),
    ] = None,
    fast_dfl: Annotated[
        bool,
        typer.Option(
            "--fast-dfl/--stock-dfl",
            help="Export the DFL box decoding as a transpose-free softmax (the same function, parity-checked); "
            "--stock-dfl exports Ultralytics' own.",
        ),
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output file; with several formats, their folder (default: beside MODEL)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Export MODEL for deployment (ONNX, OpenVINO, NCNN, MNN, ExecuTorch, LiteRT, CoreML, TorchScript; INT8 where
    the format has it) and check each file against PyTorch on real images; --against and --data add speed and mAP."""
    from yolo_prune.app.export_run import run_export
    from yolo_prune.app.render import export_text

    if not int8:
        _refuse(ctx, ("calib",), "only used with --int8 (the number of calibration images)")
    if against is None:
        _refuse(ctx, ("threads", "runs"), "only used when timing with --against ORIGINAL")
    report = run_export(
        model,
        fmt,
        imgsz=imgsz,
        out=out,
        dynamic=dynamic,
        opset=opset,
        simplify=simplify,
        end2end=end2end,
        int8=int8,
        data=data,
        calib=calib,
        tolerance=tolerance,
        fast_dfl=fast_dfl,
        against=against,
        threads=threads,
        runs=runs,
    )
    typer.echo(json.dumps(report.to_dict()) if as_json else export_text(report))


@app.command()
@_handled()
def bench(
    models: Annotated[list[Path], typer.Argument(help="Models (.pt or .onnx); the first is the speedup baseline.")],
    imgsz: Annotated[int, typer.Option("--imgsz", help="Square input size (a multiple of 32).")] = 640,
    runs: Annotated[int, typer.Option("--runs", help="Timed inferences per model (interleaved rounds).")] = 50,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed rounds first.")] = 10,
    threads: Annotated[
        int | None, typer.Option("--threads", help="CPU intra-op threads (default: the runtime's, one per core).")
    ] = None,
    runtime: Annotated[
        str,
        typer.Option("--runtime", help=f"Where to time: {', '.join(RUNTIMES)} (torch runtimes time .pt files)."),
    ] = DEFAULT_RUNTIME,
    batch: Annotated[
        int, typer.Option("--batch", help="Images per call (above 1 on torch runtimes; ms are per call).")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Latency of MODELS side by side on one runtime (onnxruntime CPU by default: .pt files are exported first)."""
    import onnxruntime

    from yolo_prune.app.render import bench_text
    from yolo_prune.deploy.bench import bench as run_bench
    from yolo_prune.deploy.runtimes import get_runtime

    rows = run_bench(models, imgsz=imgsz, runs=runs, warmup=warmup, threads=threads, runtime=runtime, batch=batch)
    detail = get_runtime(runtime, threads).describe(threads)
    if as_json:
        payload = {"rows": [r.to_dict() for r in rows], "imgsz": imgsz, "threads": threads, "runs": runs}
        payload |= {"warmup": warmup, "runtime": runtime, "runtime_detail": detail, "batch": batch}
        typer.echo(json.dumps({**payload, "onnxruntime": onnxruntime.__version__}))
        return
    typer.echo(bench_text(rows, imgsz, runs, warmup, detail, batch))


@app.command()
@_handled()
def convert(
    ctx: typer.Context,
    src: Annotated[
        Path,
        typer.Argument(
            help="voc: a folder of .xml files and images: VOCdevkit (Annotations/, JPEGImages/), labelImg (each .xml "
            "beside its image), Roboflow (train/, valid/, test/), or any tree of them. coco: the instances JSON."
        ),
    ],
    source_format: Annotated[str, typer.Option("--from", help="Format of SRC: voc or coco.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the YOLO dataset (absent or empty).")],
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="coco: folder with the JSON's images (required). voc: folder to look for the image each .xml names "
            "in, after the .xml's own folder (default: SRC/JPEGImages/; then anywhere under SRC).",
        ),
    ] = None,
    annotations: Annotated[
        Path | None,
        typer.Option(
            "--annotations",
            help="voc: folder of the .xml files, searched recursively; its train/, valid/ (or val/), test/ folders, "
            "if any, are the splits. Default: SRC, or SRC/Annotations/ when SRC has one and no split folders.",
        ),
    ] = None,
    names: Annotated[
        str | None,
        typer.Option(
            "--names",
            help="Class order, e.g. RBC,WBC,Platelets; other classes are skipped. "
            "Default: voc order of first appearance, coco category-id order.",
        ),
    ] = None,
    split_files: Annotated[
        bool,
        typer.Option(
            "--split-files/--no-split-files",
            help="voc: use SRC/ImageSets/Main/{train,val,test}.txt when there are no split folders.",
        ),
    ] = True,
    val_fraction: Annotated[
        float,
        typer.Option(
            "--val-fraction", help="Share of images for val when splitting at random (no split folders or files)."
        ),
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random split.")] = 0,
    split: Annotated[
        str | None, typer.Option("--split", help="coco: put every image in this split (train, val, test).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Convert a Pascal VOC or COCO JSON dataset into a YOLO dataset folder with OUT/data.yaml."""
    from yolo_prune.app.render import convert_text
    from yolo_prune.data.convert import convert_coco, convert_voc

    class_names = None if names is None else [n.strip() for n in names.split(",") if n.strip()]
    if source_format == "voc":
        if split is not None:
            raise ConfigError(
                "--split is for --from coco; voc takes its splits from folders, ImageSets or --val-fraction"
            )
        summary = convert_voc(
            src,
            out,
            names=class_names,
            split_files=split_files,
            val_fraction=val_fraction,
            seed=seed,
            images=images,
            annotations=annotations,
        )
    elif source_format == "coco":
        if annotations is not None:
            raise ConfigError("--annotations is for --from voc; coco reads its annotations from SRC, the JSON file")
        if images is None:
            raise ConfigError("--from coco needs --images DIR, the folder with the images of SRC")
        if not split_files:
            raise ConfigError("--no-split-files is for --from voc")
        if split is not None:
            _refuse(
                ctx, ("val_fraction", "seed"), f"only used for a random split; --split {split} puts every image there"
            )
        summary = convert_coco(src, images, out, names=class_names, val_fraction=val_fraction, seed=seed, split=split)
    else:
        raise ConfigError(f"--from must be voc or coco, not {source_format!r}")
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
        return
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(convert_text(summary))


def main(args: Sequence[str] | None = None) -> None:
    """The `yolo-prune` entry point (`args`: default the process's). Every bad input ends here as one line and exit
    code 1: the commands' own errors (`_handled`) and Click's usage errors (an unknown option, `--imgsz abc`, a
    missing argument), which Click itself would print as a usage box with exit code 2. `--help`, and the bare
    command, print the help with exit code 0."""
    os.environ.setdefault("YOLO_VERBOSE", "False")  # Ultralytics' own chatter; our stage lines go to stderr
    _setup_logging()
    args = sys.argv[1:] if args is None else list(args)
    try:
        code = app(args=args or ["--help"], prog_name="yolo-prune", standalone_mode=False)
    except CLICK_ERRORS.UsageError as e:  # BadParameter, NoSuchOption, MissingParameter, ...
        _error(e.format_message() + (f" (see '{e.ctx.command_path} --help')" if e.ctx else ""))
        code = 1
    except CLICK_ERRORS.ClickException as e:
        _error(e.format_message())
        code = 1
    except (typer.Abort, CLICK_ERRORS.Abort):  # end of input, or Ctrl-C, outside a command
        code = 130
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
