"""`yolo-prune`: a thin command line over the Python API. Parsing and printing only; the work is in the stages."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from yolo_prune.errors import ConfigError, YoloPruneError

app = typer.Typer(
    name="yolo-prune",
    help="Shrink Ultralytics YOLO detectors with structured (dependency-graph) channel pruning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ModelArg = Annotated[str, typer.Argument(help="Checkpoint (.pt), official name (yolov8n.pt) or model YAML.")]
ImgszOpt = Annotated[int, typer.Option("--imgsz", help="Square input size for MACs and tracing.")]


def _setup_logging() -> None:
    logger = logging.getLogger("yolo_prune")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logging.getLogger("ultralytics").setLevel(logging.WARNING)


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=1)


@app.command()
def prune(
    model: Annotated[
        str | None, typer.Argument(help="Checkpoint (.pt), official name (yolov8n.pt) or model YAML.")
    ] = None,
    target_macs: Annotated[
        float | None, typer.Option("--target-macs", help="Fraction of the original MACs to keep, e.g. 0.5.")
    ] = None,
    ratio: Annotated[
        float | None, typer.Option("--ratio", help="Fraction of channels to remove from every prunable group.")
    ] = None,
    method: Annotated[str, typer.Option("--method", help="Importance: l1, l2, bn, lamp, taylor, random.")] = "l2",
    global_pruning: Annotated[
        bool, typer.Option("--global", help="Rank channels across all layers instead of layer by layer.")
    ] = False,
    round_to: Annotated[int | None, typer.Option("--round-to", help="Keep channel counts multiples of N.")] = None,
    imgsz: ImgszOpt = 640,
    data: Annotated[
        str | None, typer.Option("--data", help="Dataset YAML: mAP before/after, fine-tuning, --method taylor.")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Fine-tune epochs in total (0: no fine-tuning).")] = 0,
    steps: Annotated[int, typer.Option("--steps", help="Prune in K steps, fine-tuning between them.")] = 1,
    distill: Annotated[bool, typer.Option("--distill", help="Unpruned model teaches the pruned one.")] = False,
    distill_weight: Annotated[
        float | None, typer.Option("--distill-weight", help="Distillation loss weight (Ultralytics 'dis').")
    ] = None,
    sparse_epochs: Annotated[
        int, typer.Option("--sparse-epochs", help="Sparse-train the unpruned model M epochs first.")
    ] = 0,
    batch: Annotated[int, typer.Option("--batch", help="Training and validation batch size.")] = 16,
    device: Annotated[str, typer.Option("--device", help="cpu, 0, or 0,1 for multi-GPU (DDP).")] = "cpu",
    lr0: Annotated[float | None, typer.Option("--lr0", help="Initial learning rate.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Dataloader workers.")] = 2,
    split: Annotated[str, typer.Option("--split", help="Split for mAP before/after.")] = "val",
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue the interrupted run in this folder.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/prune/<model>).")] = None,
) -> None:
    """Prune MODEL's channels (and fine-tune with --data --epochs); write OUT/pruned.pt and OUT/report.json."""
    from yolo_prune.config import PruneConfig
    from yolo_prune.finetune import FinetuneConfig
    from yolo_prune.pipeline import resume_run, run_prune

    try:
        if resume is not None:
            report = resume_run(resume)
        elif model is None:
            raise ConfigError("give a MODEL to prune, or --resume DIR")
        else:
            config = PruneConfig(
                target_macs=target_macs,
                ratio=ratio,
                method=method,
                global_pruning=global_pruning,
                round_to=round_to,
                imgsz=imgsz,
                data=data,
                batch=batch,
            )
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
                )
            elif distill:
                raise ConfigError("--distill needs fine-tuning: pass --epochs N")
            report = run_prune(model, config, out, train=train, steps=steps, sparse_epochs=sparse_epochs, split=split)
    except YoloPruneError as e:
        _fail(e)
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; continue with: yolo-prune prune --resume {resume or out or 'DIR'}", err=True)
        raise typer.Exit(code=130) from None
    _print_prune_report(report)


def _print_prune_report(report: dict) -> None:
    from yolo_prune.report import COST_HEADERS, LAYER_HEADERS, cost_rows, history_rows, layer_rows, render_table

    typer.echo(render_table(LAYER_HEADERS, layer_rows(report["before"]["layers"], report["after"]["layers"])))
    if len(report["history"]) > 1 or "map50_95" in report["after"]:
        typer.echo("")
        typer.echo(render_table(*history_rows(report)))
    typer.echo("")
    typer.echo(render_table(COST_HEADERS, cost_rows(report)))
    p = report["prune"]
    typer.echo(
        f"\nlast step: channel ratio {p['ratio']:.3f} found in {len(p['trials'])} trial(s), {p['seconds']:.1f} s; "
        f"wrote {report['files']['weights']} and {report['files']['report']}"
    )


@app.command()
def train(
    model: ModelArg,
    data: Annotated[str, typer.Option("--data", help="Dataset YAML.")],
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs.")] = 10,
    imgsz: ImgszOpt = 640,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 16,
    device: Annotated[str, typer.Option("--device", help="cpu, 0, or 0,1 for multi-GPU (DDP).")] = "cpu",
    lr0: Annotated[float | None, typer.Option("--lr0", help="Initial learning rate.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Dataloader workers.")] = 2,
    split: Annotated[str, typer.Option("--split", help="Split for the final mAP.")] = "val",
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/train/exp"),
) -> None:
    """Train MODEL as it is (pruned or not) with the recipe of the fine-tuning steps; write OUT/model.pt."""
    from yolo_prune.finetune import FinetuneConfig
    from yolo_prune.pipeline import run_train

    try:
        config = FinetuneConfig(epochs=epochs, batch=batch, imgsz=imgsz, device=device, workers=workers, lr0=lr0)
        report = run_train(model, data, config, out, split=split)
    except YoloPruneError as e:
        _fail(e)
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; run the same command again to continue from {out}/train/weights/last.pt", err=True)
        raise typer.Exit(code=130) from None
    typer.echo(
        f"{report['files']['weights']}: {report['macs'] / 1e9:.3f} GMACs @{imgsz}, mAP50 {report['map50']:.4f}, "
        f"mAP50-95 {report['map50_95']:.4f} [{split}], {report['seconds'] / 60:.1f} min"
    )


@app.command()
def val(
    model: Annotated[str, typer.Argument(help="Checkpoint (.pt) or exported ONNX (.onnx).")],
    data: Annotated[str, typer.Option("--data", help="Dataset YAML.")],
    split: Annotated[str, typer.Option("--split", help="val or test.")] = "val",
    imgsz: ImgszOpt = 640,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 16,
    device: Annotated[str, typer.Option("--device", help="cpu or a GPU index.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """mAP50, mAP50-95 and per-class results of MODEL on a dataset split."""
    from yolo_prune.errors import ModelLoadError
    from yolo_prune.report import render_table
    from yolo_prune.validate import validate

    try:
        path = Path(model)
        if path.suffix.lower() not in (".pt", ".onnx"):
            raise ModelLoadError(f"{model}: expected a .pt checkpoint or an .onnx file")
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {model}")
        names = None
        if path.suffix.lower() == ".pt":
            from yolo_prune.load import load_model

            names = dict(load_model(model).names)
        result = validate(model, data, split=split, imgsz=imgsz, batch=batch, device=device, names=names)
    except YoloPruneError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps({"model": model, **result}))
        return
    rows = [
        [c["name"], c["instances"], c["precision"], c["recall"], c["map50"], c["map50_95"]] for c in result["per_class"]
    ]
    rows.append(["all", None, result["precision"], result["recall"], result["map50"], result["map50_95"]])
    typer.echo(render_table(("class", "instances", "P", "R", "mAP50", "mAP50-95"), rows))
    typer.echo(
        f"\n{model} on {data} [{split}] @{imgsz}: mAP50 {result['map50']:.4f}, mAP50-95 {result['map50_95']:.4f}"
    )


@app.command()
def info(
    model: ModelArg,
    imgsz: ImgszOpt = 640,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """MACs, parameters and per-layer output channels of MODEL."""
    from yolo_prune.pipeline import model_info
    from yolo_prune.report import render_table

    try:
        result = model_info(model, imgsz)
    except YoloPruneError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(result))
        return
    rows = [[r["index"], r["type"], r["out_channels"], r["params"]] for r in result["layers"]]
    typer.echo(render_table(("layer", "block", "out ch", "params"), rows))
    typer.echo(f"\n{result['model']}: {result['macs'] / 1e9:.3f} GMACs @{imgsz}, {result['params'] / 1e6:.3f} M params")


def main() -> None:
    os.environ.setdefault("YOLO_VERBOSE", "False")  # Ultralytics' own chatter; our stage lines go to stderr
    _setup_logging()
    app()


if __name__ == "__main__":
    main()
