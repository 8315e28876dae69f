"""`yolo-prune`: a thin command line over the Python API. Parsing and printing only; the work is in the stages."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from yolo_prune.errors import YoloPruneError

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
    model: ModelArg,
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
    data: Annotated[str | None, typer.Option("--data", help="Dataset YAML (needed by --method taylor).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/prune/<model>).")] = None,
) -> None:
    """Prune MODEL's channels; write OUT/pruned.pt and OUT/report.json."""
    from yolo_prune.config import PruneConfig
    from yolo_prune.pipeline import run_prune
    from yolo_prune.report import COST_HEADERS, LAYER_HEADERS, cost_rows, layer_rows, render_table

    try:
        config = PruneConfig(
            target_macs=target_macs,
            ratio=ratio,
            method=method,
            global_pruning=global_pruning,
            round_to=round_to,
            imgsz=imgsz,
            data=data,
        )
        report = run_prune(model, config, out)
    except YoloPruneError as e:
        _fail(e)
    typer.echo(render_table(LAYER_HEADERS, layer_rows(report["before"]["layers"], report["after"]["layers"])))
    typer.echo("")
    typer.echo(render_table(COST_HEADERS, cost_rows(report)))
    p = report["prune"]
    typer.echo(
        f"\nchannel ratio {p['ratio']:.3f} found in {len(p['trials'])} trial(s), {p['seconds']:.1f} s; "
        f"wrote {report['files']['weights']} and {report['files']['report']}"
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
