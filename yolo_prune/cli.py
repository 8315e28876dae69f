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
    allocation: Annotated[
        str, typer.Option("--allocation", help="uniform, global (rank across layers) or sensitivity.")
    ] = "uniform",
    global_pruning: Annotated[bool, typer.Option("--global", help="Same as --allocation global.")] = False,
    sensitivity: Annotated[
        str | None, typer.Option("--sensitivity", help="sensitivity.json for --allocation sensitivity.")
    ] = None,
    unstructured: Annotated[
        float | None, typer.Option("--unstructured", help="Zero this share of conv weights instead (comparison).")
    ] = None,
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
    from yolo_prune.pipeline import resume_run, run_prune, run_unstructured

    try:
        if resume is not None:
            report = resume_run(resume)
        elif model is None:
            raise ConfigError("give a MODEL to prune, or --resume DIR")
        elif unstructured is not None:
            if target_macs is not None or ratio is not None:
                raise ConfigError("--unstructured replaces --target-macs/--ratio; give one of them")
            train = None
            if epochs:
                train = FinetuneConfig(epochs=epochs, batch=batch, imgsz=imgsz, device=device, workers=workers, lr0=lr0)
            report = run_unstructured(model, unstructured, out, data=data, train=train, imgsz=imgsz, split=split)
            _print_unstructured_report(report)
            return
        else:
            config = PruneConfig(
                target_macs=target_macs,
                ratio=ratio,
                method=method,
                allocation="global" if global_pruning else allocation,
                sensitivity=sensitivity,
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


def _print_unstructured_report(report: dict) -> None:
    from yolo_prune.report import render_table

    b, a = report["before"], report["after"]
    rows = [
        ["GMACs", b["macs"] / 1e9, a["macs"] / 1e9],
        ["params (M)", b["params"] / 1e6, a["params"] / 1e6],
        ["nonzero params (M)", b["nonzero_params"] / 1e6, a["nonzero_params"] / 1e6],
        ["conv weight sparsity", b["sparsity"], a["sparsity"]],
        ["file (MB)", b["file_bytes"] / 1e6, a["file_bytes"] / 1e6],
        ["gzip file (MB)", b["gzip_bytes"] / 1e6, a["gzip_bytes"] / 1e6],
    ]
    for key, label in (("latency_ms", "ORT latency (ms, median)"), ("map50", "mAP50"), ("map50_95", "mAP50-95")):
        if a.get(key) is not None:
            rows.append([label, b.get(key), a.get(key)])
    typer.echo(render_table(("", "before", "after"), rows))
    typer.echo(f"\n{report['note']}\nwrote {report['files']['weights']} and {report['files']['report']}")


@app.command()
def sensitivity(
    model: ModelArg,
    data: Annotated[str | None, typer.Option("--data", help="Dataset YAML (required).")] = None,
    ratios: Annotated[str, typer.Option("--ratios", help="Comma-separated shares of channels to remove.")] = (
        "0.25,0.5,0.75"
    ),
    metric: Annotated[str, typer.Option("--metric", help="loss (fast, train batches) or map (val split).")] = "loss",
    batches: Annotated[int, typer.Option("--batches", help="Batches for the loss metric.")] = 4,
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 8,
    imgsz: ImgszOpt = 640,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for sensitivity.json and .png.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as one JSON object.")] = False,
) -> None:
    """How much each prunable group hurts when it loses channels; writes sensitivity.json and sensitivity.png."""
    from yolo_prune.pipeline import run_sensitivity
    from yolo_prune.report import render_table

    try:
        try:
            values = tuple(float(r) for r in ratios.split(","))
        except ValueError:
            raise ConfigError(f"--ratios must be comma-separated numbers, got '{ratios}'") from None
        table = run_sensitivity(
            model, data, ratios=values, metric=metric, batches_count=batches, imgsz=imgsz, batch=batch, out_dir=out
        )
    except YoloPruneError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(table))
        return
    mid = str(table["ratios"][len(table["ratios"]) // 2])
    ranked = sorted(table["groups"], key=lambda g: g["drop"][mid])
    headers = ("group", "channels", "MACs share", *(f"drop @{r}" for r in table["ratios"]))

    def row(g: dict) -> list:
        return [g["group"], g["channels"], g["macs_share"], *(g["drop"][str(r)] for r in table["ratios"])]

    typer.echo(f"most sensitive (by drop at ratio {mid}):")
    typer.echo(render_table(headers, [row(g) for g in ranked[::-1][:8]]))
    typer.echo("\nleast sensitive:")
    typer.echo(render_table(headers, [row(g) for g in ranked[:8]]))
    typer.echo(
        f"\n{len(table['groups'])} groups scanned in {table['seconds']:.0f} s; "
        f"wrote {table['files']['table']} and {table['files']['plot']}"
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
def demo(
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/demo"),
    fast: Annotated[bool, typer.Option("--fast", help="A reduced run for CI (a couple of minutes).")] = False,
) -> None:
    """The whole pipeline offline: synthetic data, prune to 50% MACs, fine-tune, val, ONNX export, bench, report."""
    from yolo_prune.demo import run_demo
    from yolo_prune.report import render_table

    try:
        result = run_demo(out, fast=fast)
    except YoloPruneError as e:
        _fail(e)
    rows = [
        [s["model"], s["gmacs"], s["params_m"], s["map50"], s["map50_95"], s["latency_ms"], s["speedup"]]
        for s in result["summary"]
    ]
    typer.echo(render_table(("model", "GMACs", "params (M)", "mAP50", "mAP50-95", "ORT ms", "speedup"), rows))
    typer.echo(f"\n{result['seconds'] / 60:.1f} min; report: {out / 'report.md'}")


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


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Dataset folder; reused as is if made with the same options.")],
    n_train: Annotated[int, typer.Option("--train", help="Training images.")] = 320,
    n_val: Annotated[int, typer.Option("--val", help="Validation images.")] = 96,
    imgsz: Annotated[int, typer.Option("--imgsz", help="Image side in pixels.")] = 128,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same options give the same files.")] = 0,
    difficulty: Annotated[str, typer.Option("--difficulty", help="Preset: easy (the demo's) or hard.")] = "easy",
) -> None:
    """Generate the seeded synthetic shapes dataset (YOLO layout, OUT/data.yaml) that the offline demo trains on."""
    from yolo_prune.report import render_table
    from yolo_prune.synthetic import generate, read_manifest

    try:
        data_yaml = generate(out, n_train=n_train, n_val=n_val, imgsz=imgsz, seed=seed, difficulty=difficulty)
        manifest = read_manifest(data_yaml.parent)
    except YoloPruneError as e:
        _fail(e)
    images, boxes = manifest["images"], manifest["boxes"]
    rows = [[s, images[s], sum(boxes[s].values())] for s in images]
    typer.echo(render_table(("split", "images", "boxes"), rows))
    typer.echo("")
    rows = [[i, name, *(boxes[s][name] for s in images)] for i, name in enumerate(manifest["params"]["classes"])]
    typer.echo(render_table(("id", "class", *(f"{s} boxes" for s in images)), rows))
    typer.echo(f"\ndata: {data_yaml}")


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) to export; it is never modified.")],
    fmt: Annotated[str, typer.Option("--format", help="onnx, torchscript or openvino.")] = "onnx",
    imgsz: Annotated[int, typer.Option("--imgsz", help="Square input size of the exported model.")] = 640,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="Dynamic batch and image size.")] = False,
    opset: Annotated[int | None, typer.Option("--opset", help="onnx: opset version (default: Ultralytics').")] = None,
    simplify: Annotated[bool, typer.Option("--simplify", help="onnx: simplify the graph with onnxslim.")] = False,
    end2end: Annotated[
        bool, typer.Option("--end2end", help="Export the NMS-free one-to-one head of YOLO26: (B, 300, 6).")
    ] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="onnx: also write <out stem>_int8.onnx, static INT8 calibrated on --data.")
    ] = False,
    data: Annotated[str | None, typer.Option("--data", help="Dataset YAML; its train images calibrate --int8.")] = None,
    calib: Annotated[int, typer.Option("--calib", help="Number of calibration images for --int8.")] = 100,
    tolerance: Annotated[
        float | None,
        typer.Option("--tolerance", help="Parity tolerance relative to the output range (default 1e-4)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default: beside MODEL).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Export MODEL to ONNX (optionally INT8), TorchScript or OpenVINO; check it against PyTorch on real images."""
    from yolo_prune.export import DEFAULT_TOLERANCE, FORMATS, export_format
    from yolo_prune.quantize import calibration_files, quantize_int8
    from yolo_prune.report import render_table

    try:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise ConfigError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
        if fmt != "onnx" and (opset is not None or simplify or int8):
            raise ConfigError("--opset, --simplify and --int8 are for --format onnx")
        if data is not None and not int8:
            raise ConfigError("--data is only used by --int8 (calibration images)")
        files = None
        if int8:
            if data is None:
                raise ConfigError("--int8 needs --data DATA, a dataset YAML whose train images calibrate it")
            if dynamic:
                raise ConfigError("--int8 needs a fixed input size; drop --dynamic")
            files = calibration_files(data=data, calib=calib)  # a bad dataset fails before anything is written
        args = {"dynamic": dynamic} | ({"opset": opset, "simplify": simplify} if fmt == "onnx" else {})
        tol = DEFAULT_TOLERANCE if tolerance is None else tolerance
        results = [export_format(model, fmt, imgsz, out=out, tolerance=tol, end2end=end2end, **args)]
        if files is not None:
            results.append(quantize_int8(results[0].file, images=files, calib=calib))
    except YoloPruneError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps({"model": str(model), "results": [r.to_dict() for r in results]}))
        return
    rows = []
    for r in results:
        p = r.parity
        sci = (f"{p.max_abs_diff:.2e}", f"{p.relative_diff:.2e}", f"{p.tolerance:.0e}") if p else (None,) * 3
        checked = [*sci, ("yes" if p.passed else "NO") if p else None]
        rows.append([str(r.file), r.format, r.size_bytes / 1e6, *checked])
    headers = ("file", "format", "size MB", "parity max abs diff", "relative to range", "tolerance", "pass")
    typer.echo(render_table(headers, rows))
    if len(results) > 1:
        typer.echo(
            f"\nINT8 differs from FP32 by design (not parity-checked): calibrated on {len(files)} images of {data}; "
            "measure its accuracy on a validation set"
        )


@app.command()
def bench(
    models: Annotated[list[Path], typer.Argument(help="Models (.pt or .onnx); the first is the speedup baseline.")],
    imgsz: Annotated[int, typer.Option("--imgsz", help="Square input size.")] = 640,
    runs: Annotated[int, typer.Option("--runs", help="Timed inferences per model (interleaved rounds).")] = 50,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed rounds first.")] = 10,
    threads: Annotated[
        int | None, typer.Option("--threads", help="onnxruntime intra-op threads (default: one per core).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """CPU latency of MODELS side by side in onnxruntime (.pt files are exported to ONNX first)."""
    import onnxruntime

    from yolo_prune.bench import bench as run_bench
    from yolo_prune.report import render_table

    try:
        rows = run_bench(models, imgsz=imgsz, runs=runs, warmup=warmup, threads=threads)
    except YoloPruneError as e:
        _fail(e)
    if as_json:
        payload = {"rows": [r.to_dict() for r in rows], "imgsz": imgsz, "threads": threads, "runs": runs}
        typer.echo(json.dumps({**payload, "warmup": warmup, "onnxruntime": onnxruntime.__version__}))
        return
    table = [
        [
            r.model,
            r.precision,
            None if r.macs is None else r.macs / 1e9,
            None if r.params is None else r.params / 1e6,
            r.onnx_bytes / 1e6,
            r.median_ms,
            r.p90_ms,
            r.speedup,
        ]
        for r in rows
    ]
    headers = ("model", "precision", f"GMACs @{imgsz}", "params M", "size MB", "median ms", "p90 ms", "speedup")
    typer.echo(render_table(headers, table))
    typer.echo(
        f"\nonnxruntime {onnxruntime.__version__} CPU, {threads or 'default'} intra-op threads, {runs} interleaved "
        f"runs after {warmup} warm-up; size: the timed ONNX file; MACs: PyTorch count (.pt) or ONNX graph (.onnx)"
    )


@app.command()
def convert(
    src: Annotated[Path, typer.Argument(help="VOC folder (Annotations/, JPEGImages/) or COCO instances JSON.")],
    source_format: Annotated[str, typer.Option("--from", help="Format of SRC: voc or coco.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the YOLO dataset (absent or empty).")],
    images: Annotated[Path | None, typer.Option("--images", help="coco: folder with the JSON's images.")] = None,
    names: Annotated[
        str | None,
        typer.Option(
            "--names",
            help="Class order, e.g. RBC,WBC,Platelets; other classes are skipped. "
            "Default: voc order of first appearance, coco category-id order.",
        ),
    ] = None,
    split_files: Annotated[
        bool, typer.Option("--split-files/--no-split-files", help="voc: use ImageSets/Main/{train,val,test}.txt.")
    ] = True,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of images for val when splitting at random.")
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random split.")] = 0,
    split: Annotated[
        str | None, typer.Option("--split", help="coco: put every image in this split (train, val, test).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Convert a Pascal VOC or COCO JSON dataset into a YOLO dataset folder with OUT/data.yaml."""
    from yolo_prune.convert import convert_coco, convert_voc
    from yolo_prune.report import render_table

    try:
        class_names = None if names is None else [n.strip() for n in names.split(",") if n.strip()]
        if source_format == "voc":
            if images is not None or split is not None:
                raise ConfigError("--images and --split are for --from coco; voc reads SRC/JPEGImages")
            summary = convert_voc(
                src, out, names=class_names, split_files=split_files, val_fraction=val_fraction, seed=seed
            )
        elif source_format == "coco":
            if images is None:
                raise ConfigError("--from coco needs --images DIR, the folder with the images of SRC")
            if not split_files:
                raise ConfigError("--no-split-files is for --from voc")
            summary = convert_coco(
                src, images, out, names=class_names, val_fraction=val_fraction, seed=seed, split=split
            )
        else:
            raise ConfigError(f"--from must be voc or coco, not {source_format!r}")
    except YoloPruneError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
        return
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(render_table(("split", "images"), list(summary.images.items())))
    typer.echo("")
    rows = [[i, name, summary.boxes_per_class[name]] for i, name in enumerate(summary.names)]
    typer.echo(render_table(("id", "class", "boxes"), rows))
    typer.echo("")
    counts = [
        ["boxes written", summary.boxes_written],
        ["boxes clipped to the image", summary.boxes_clipped],
        ["boxes dropped (under 1 px)", summary.boxes_dropped],
        ["objects skipped (class, crowd)", summary.objects_skipped],
        ["files skipped", summary.files_skipped],
    ]
    typer.echo(render_table(("", "count"), counts))
    typer.echo(f"\nwrote {summary.data_yaml}")


def main() -> None:
    os.environ.setdefault("YOLO_VERBOSE", "False")  # Ultralytics' own chatter; our stage lines go to stderr
    _setup_logging()
    app()


if __name__ == "__main__":
    main()
