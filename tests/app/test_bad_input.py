"""No traceback, ever, on bad input (issue #34): every bad value of every option of every command ends in one line,
`error: <message>` on stderr naming the option as typed, with exit code 1, nothing written and the input untouched.

The commands run through `main()`, the entry point a user runs, with its logging on stderr: a case that got as far
as loading a model would print a stage line before its error and fail the one-line check. So every case here is
refused before anything is loaded; bad models found only by reading them are test_cli.py's.

`CASES` holds, per command, the bad inputs of each of its parameters (keyed as `--help` shows them: an option by its
flag, an argument by its name in capitals); `UNREFUSABLE` the switches that no value of theirs makes wrong. A new
command or option without either fails `test_every_parameter_has_bad_input_cases`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import shlex
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from yolo_prune.app.cli import app, main

runner = CliRunner()
YAML = "yolov8n.yaml"  # Ultralytics builds it from its package: a MODEL that exists everywhere

# {command: {parameter: [(what, command line, text the error line must contain), ...]}}. An option's error line
# must also contain the option itself. Placeholders: {pt} a checkpoint, {data} a dataset YAML, {text_pt} a text file
# named .pt, {empty_pt} an empty .pt, {dir_pt} a folder named .pt, {txt} a text file, {dir} a folder of images,
# {table} a sensitivity table, {json} a text file named .json; out/ and runs/ are in the working directory.
CASES: dict[str, dict[str, list[tuple[str, str, str]]]] = {
    "prune": {
        "MODEL": [
            ("missing", "prune missing.pt --ratio 0.3", "model file not found: missing.pt"),
            ("none", "prune --ratio 0.3", "give a MODEL to prune, or --resume DIR"),
        ],
        "--target-macs": [
            ("zero", f"prune {YAML} --target-macs 0", "--target-macs must be between 0 and 1"),
            ("negative", f"prune {YAML} --target-macs -0.5", "got -0.5"),
            ("huge", f"prune {YAML} --target-macs 1e9", "got 1000000000.0"),
            ("with-ratio", f"prune {YAML} --target-macs 0.5 --ratio 0.3", "give exactly one of --target-macs"),
            ("none-given", f"prune {YAML}", "give exactly one of --target-macs, --target-speedup"),
        ],
        "--target-speedup": [
            ("below-1", f"prune {YAML} --target-speedup 0.8", "--target-speedup must be above 1"),
            ("with-macs", f"prune {YAML} --target-speedup 2 --target-macs 0.5", "give exactly one of"),
        ],
        "--target-latency": [
            ("negative", f"prune {YAML} --target-latency -1", "must be a positive number of milliseconds"),
            ("zero", f"prune {YAML} --target-latency 0", "got 0.0"),
        ],
        "--ratio": [
            ("above-1", f"prune {YAML} --ratio 1.5", "--ratio must be between 0 and 1 (exclusive), got 1.5"),
            ("zero", f"prune {YAML} --ratio 0", "got 0.0"),
        ],
        "--runtime": [
            ("unknown", f"prune {YAML} --target-speedup 2 --runtime tensorrt", "unknown --runtime 'tensorrt'"),
            ("no-gpu", f"prune {YAML} --target-speedup 2 --runtime torch-cuda-fp16", "needs a CUDA GPU"),
            ("not-timed", f"prune {YAML} --ratio 0.3 --runtime torch-cpu", "latency is not measured"),
        ],
        "--threads": [
            ("zero", f"prune {YAML} --target-macs 0.5 --threads 0", "--threads must be at least 1, got 0"),
            ("not-timed", f"prune {YAML} --ratio 0.3 --threads 2", "latency is not measured with --allocation"),
        ],
        "--latency-batch": [
            ("zero", f"prune {YAML} --target-speedup 2 --latency-batch 0", "--latency-batch must be at least 1"),
            ("onnxruntime", f"prune {YAML} --target-speedup 2 --latency-batch 4", "needs a torch runtime"),
            ("not-timed", f"prune {YAML} --ratio 0.3 --runtime torch-cpu --latency-batch 4", "is not measured"),
        ],
        "--method": [
            ("unknown", f"prune {YAML} --ratio 0.3 --method l7", "unknown --method 'l7'; choose one of"),
            ("taylor-without-data", f"prune {YAML} --ratio 0.3 --method taylor", "--method taylor needs loss"),
            ("unstructured", f"prune {YAML} --unstructured 0.3 --method l1", "--unstructured zeroes"),
        ],
        "--allocation": [
            ("unknown", f"prune {YAML} --target-macs 0.5 --allocation even", "unknown --allocation 'even'"),
            ("sensitivity-without-table", f"prune {YAML} --target-macs 0.5 --allocation sensitivity", "--data"),
            ("latency-with-ratio", f"prune {YAML} --ratio 0.3 --allocation latency", "needs --target-macs or"),
        ],
        "--global": [
            ("with-allocation", f"prune {YAML} --ratio 0.3 --global --allocation uniform", "contradicts"),
        ],
        "--sensitivity": [
            (
                "missing",
                f"prune {YAML} --target-macs 0.5 --allocation sensitivity --sensitivity no.json",
                "--sensitivity no.json: file not found",
            ),
            (
                "unused",
                f"prune {YAML} --target-macs 0.5 --allocation uniform --sensitivity {{table}}",
                "--sensitivity is read by --allocation sensitivity or latency, not uniform",
            ),
        ],
        "--unstructured": [
            ("zero", f"prune {YAML} --unstructured 0", "--unstructured must be between 0 and 1"),
            ("above-1", f"prune {YAML} --unstructured 1.5", "got 1.5"),
            ("with-ratio", f"prune {YAML} --unstructured 0.3 --ratio 0.3", "--unstructured replaces"),
        ],
        "--round-to": [("zero", f"prune {YAML} --ratio 0.3 --round-to 0", "--round-to must be a positive integer")],
        "--imgsz": [
            ("33", f"prune {YAML} --ratio 0.3 --imgsz 33", "--imgsz must be a positive multiple of 32"),
            ("zero", f"prune {YAML} --ratio 0.3 --imgsz 0", "got 0"),
            ("negative", f"prune {YAML} --ratio 0.3 --imgsz -64", "got -64"),
            ("huge", f"prune {YAML} --ratio 0.3 --imgsz 65536", "up to 8192, got 65536"),
            ("unstructured", f"prune {YAML} --unstructured 0.3 --imgsz 33", "--imgsz must be a positive multiple"),
        ],
        "--data": [
            ("missing", f"prune {YAML} --ratio 0.3 --data no.yaml", "--data no.yaml: dataset file not found"),
            ("not-yaml", f"prune {YAML} --ratio 0.3 --data {{txt}}", "expected a dataset .yaml file"),
        ],
        "--epochs": [
            ("negative", f"prune {YAML} --ratio 0.3 --epochs -1", "--epochs must be 0 (no fine-tuning) or more"),
            ("without-data", f"prune {YAML} --target-macs 0.5 --epochs 2", "--epochs trains: it needs --data"),
            ("below-steps", f"prune {YAML} --target-macs 0.5 --data {{data}} --epochs 1 --steps 2", "--steps (2)"),
        ],
        "--steps": [
            ("zero", f"prune {YAML} --target-macs 0.5 --steps 0", "--steps must be at least 1, got 0"),
            ("with-ratio", f"prune {YAML} --ratio 0.3 --steps 2", "--steps needs --target-macs"),
        ],
        "--distill": [
            ("without-epochs", f"prune {YAML} --ratio 0.3 --distill", "--distill needs fine-tuning"),
            ("unstructured", f"prune {YAML} --unstructured 0.3 --distill --epochs 1", "--distill is for structured"),
        ],
        "--distill-weight": [
            ("without-distill", f"prune {YAML} --ratio 0.3 --distill-weight -1", "it needs --distill"),
            (
                "negative",
                f"prune {YAML} --target-macs 0.5 --data {{data}} --epochs 1 --distill --distill-weight -1",
                "--distill-weight must be positive, got -1.0",
            ),
        ],
        "--sparse-epochs": [
            ("negative", f"prune {YAML} --ratio 0.3 --sparse-epochs -1", "--sparse-epochs must be 0 or more"),
            ("without-data", f"prune {YAML} --ratio 0.3 --sparse-epochs 2", "it needs --data"),
        ],
        "--batch": [
            ("zero", f"prune {YAML} --ratio 0.3 --data {{data}} --batch 0", "--batch must be at least 1, got 0"),
            ("without-data", f"prune {YAML} --ratio 0.3 --batch 8", "only used with --data"),
        ],
        "--device": [
            (
                "absent-gpu",
                f"prune {YAML} --ratio 0.3 --data {{data}} --epochs 1 --device 7",
                "--device 7: no CUDA GPU",
            ),
            ("bogus", f"prune {YAML} --ratio 0.3 --data {{data}} --epochs 1 --device gpu", "got 'gpu'"),
            ("without-epochs", f"prune {YAML} --ratio 0.3 --device cpu", "only used for fine-tuning"),
        ],
        "--lr0": [
            ("zero", f"prune {YAML} --ratio 0.3 --data {{data}} --epochs 1 --lr0 0", "--lr0 must be positive"),
            ("without-epochs", f"prune {YAML} --ratio 0.3 --lr0 0.01", "only used for fine-tuning, with --epochs"),
        ],
        "--workers": [
            ("negative", f"prune {YAML} --ratio 0.3 --data {{data}} --epochs 1 --workers -1", "0 or more, got -1"),
            ("without-epochs", f"prune {YAML} --ratio 0.3 --workers 4", "only used for fine-tuning"),
        ],
        "--seed": [
            ("negative", f"prune {YAML} --ratio 0.3 --data {{data}} --epochs 1 --seed -1", "--seed must be from 0"),
            ("without-epochs", f"prune {YAML} --ratio 0.3 --seed 1", "only used for fine-tuning"),
        ],
        "--split": [
            ("bogus", f"prune {YAML} --ratio 0.3 --data {{data}} --split bogus", "has no 'bogus' split (it has: "),
            ("without-data", f"prune {YAML} --ratio 0.3 --split test", "only used with --data"),
        ],
        "--resume": [
            ("with-MODEL", f"prune {YAML} --resume out", "MODEL: --resume continues the run in out"),
            ("with-options", "prune --resume out --epochs 3 --imgsz 320", "--imgsz, --epochs: --resume continues"),
            ("missing", "prune --resume out", "--resume out: nothing to resume"),
        ],
        "--out": [("a-file", f"prune {YAML} --ratio 0.3 --out {{txt}}", "is a file, not a folder")],
    },
    "sensitivity": {
        "MODEL": [("missing", "sensitivity missing.pt --data {data}", "model file not found: missing.pt")],
        "--data": [
            ("none", f"sensitivity {YAML}", "pass --data DATA.yaml"),
            ("none-for-map", f"sensitivity {YAML} --metric map", "measures map on a dataset: pass --data"),
            ("missing", f"sensitivity {YAML} --data no.yaml", "--data no.yaml: dataset file not found"),
        ],
        "--ratios": [
            ("not-numbers", f"sensitivity {YAML} --data {{data}} --ratios a,b", "comma-separated numbers"),
            ("one", f"sensitivity {YAML} --data {{data}} --ratios 0.5,1", "--ratios must be between 0 and 1"),
            ("empty", f"sensitivity {YAML} --data {{data}} --ratios ''", "got ''"),
        ],
        "--metric": [("unknown", f"sensitivity {YAML} --data {{data}} --metric speed", "unknown --metric 'speed'")],
        "--batches": [
            ("zero", f"sensitivity {YAML} --data {{data}} --batches 0", "--batches must be at least 1, got 0"),
            ("with-map", f"sensitivity {YAML} --data {{data}} --metric map --batches 8", "only used with --metric"),
        ],
        "--batch": [("zero", f"sensitivity {YAML} --data {{data}} --batch 0", "--batch must be at least 1, got 0")],
        "--imgsz": [
            ("33", f"sensitivity {YAML} --data {{data}} --imgsz 33", "--imgsz must be a positive multiple of 32"),
            ("huge", f"sensitivity {YAML} --data {{data}} --imgsz 16384", "got 16384"),
        ],
        "--out": [("a-file", f"sensitivity {YAML} --data {{data}} --out {{txt}}", "is a file, not a folder")],
    },
    "train": {
        "MODEL": [
            ("missing", "train missing.pt --data {data}", "model file not found: missing.pt"),
            ("text-as-pt", "train {text_pt} --data {data}", "cannot read {text_pt}"),
        ],
        "--data": [
            ("missing", f"train {YAML} --data no.yaml", "--data no.yaml: dataset file not found"),
            ("a-folder", f"train {YAML} --data {{dir}}", "expected a dataset .yaml file"),
        ],
        "--epochs": [("zero", "train {pt} --data {data} --epochs 0", "--epochs must be at least 1, got 0")],
        "--imgsz": [
            ("33", "train {pt} --data {data} --imgsz 33", "--imgsz must be a positive multiple of 32"),
            ("zero", "train {pt} --data {data} --imgsz 0", "got 0"),
        ],
        "--batch": [("zero", "train {pt} --data {data} --batch 0", "--batch must be at least 1, got 0")],
        "--device": [
            ("absent-gpu", "train {pt} --data {data} --device 0", "--device 0: no CUDA GPU on this machine"),
            ("absent-gpus", "train {pt} --data {data} --device 0,1", "--device 0,1: no CUDA GPU"),
        ],
        "--lr0": [("negative", "train {pt} --data {data} --lr0 -0.1", "--lr0 must be positive, got -0.1")],
        "--workers": [("negative", "train {pt} --data {data} --workers -2", "--workers must be 0 or more")],
        "--seed": [("huge", "train {pt} --data {data} --seed 99999999999", "--seed must be from 0 to 2**32 - 1")],
        "--split": [("bogus", "train {pt} --data {data} --split bogus", "--split bogus: {data} has no 'bogus' split")],
        "--teacher": [
            ("missing", "train {pt} --data {data} --teacher missing.pt", "--teacher: model file not found: missing.pt"),
            ("a-yaml", f"train {{pt}} --data {{data}} --teacher {YAML}", "expected a .pt checkpoint"),
        ],
        "--distill-weight": [
            ("without-teacher", "train {pt} --data {data} --distill-weight 0.5", "it needs --teacher"),
            ("negative", "train {pt} --data {data} --teacher {pt} --distill-weight -1", "must be positive, got -1.0"),
        ],
        "--out": [("a-file", "train {pt} --data {data} --out {txt}", "is a file, not a folder")],
    },
    "val": {
        "MODEL": [
            ("missing", "val missing.pt --data {data}", "model file not found: missing.pt"),
            ("empty", "val {empty_pt} --data {data}", "{empty_pt} is empty"),
            ("a-folder", "val {dir_pt} --data {data}", "{dir_pt} is a directory, not a model file"),
            ("a-yaml", f"val {YAML} --data {{data}}", "expected a .pt checkpoint"),
            ("a-text-file", "val {txt} --data {data}", "expected a .pt checkpoint"),
        ],
        "--data": [("missing", "val {pt} --data no.yaml", "--data no.yaml: dataset file not found")],
        "--split": [
            (
                "bogus",
                "val {pt} --data {data} --split bogus",
                "--split bogus: {data} has no 'bogus' split (it has: train, val)",
            )
        ],
        "--imgsz": [
            ("33", "val {pt} --data {data} --imgsz 33", "--imgsz must be a positive multiple of 32"),
            ("zero", "val {pt} --data {data} --imgsz 0", "got 0"),
        ],
        "--batch": [
            ("zero", "val {pt} --data {data} --batch 0", "--batch must be at least 1, got 0"),
            ("negative", "val {pt} --data {data} --batch -4", "got -4"),
        ],
        "--device": [
            ("absent-gpu", "val {pt} --data {data} --device 0", "--device 0: no CUDA GPU on this machine"),
            ("absent-gpu-7", "val {pt} --data {data} --device 7", "--device 7: no CUDA GPU"),
        ],
    },
    "demo": {
        "--out": [("a-file", "demo --fast --out {txt}", "is a file, not a folder")],
        "--task": [("unknown", "demo --fast --task classify", "unknown --task 'classify'; choose one of")],
    },
    "info": {
        "MODEL": [
            ("missing", "info missing.pt", "model file not found: missing.pt"),
            ("onnx", "info model.onnx", "model.onnx: expected a .pt checkpoint or a model .yaml"),
            ("text-as-pt", "info {text_pt}", "cannot read {text_pt}"),
            ("empty", "info {empty_pt}", "{empty_pt}"),
            ("a-folder", "info {dir_pt}", "{dir_pt}"),
        ],
        "--imgsz": [
            ("33", f"info {YAML} --imgsz 33", "--imgsz must be a positive multiple of 32 (the largest stride)"),
            ("zero", f"info {YAML} --imgsz 0", "got 0"),
            ("negative", f"info {YAML} --imgsz -32", "got -32"),
            ("huge", f"info {YAML} --imgsz 99999", "got 99999"),
            ("not-a-number", f"info {YAML} --imgsz abc", "Invalid value for '--imgsz'"),
        ],
    },
    "synth": {
        "--out": [
            ("a-file", "synth --out {txt}", "--out must be a folder"),
            ("not-synthetic", "synth --out {dir} --train 2 --val 2", "is not a synthetic dataset"),
        ],
        "--train": [("zero", "synth --out out --train 0", "--train must be an integer >= 1, got 0")],
        "--val": [("negative", "synth --out out --val -3", "--val must be an integer >= 1, got -3")],
        "--imgsz": [
            ("small", "synth --out out --imgsz 8", "--imgsz must be an integer >= 32, got 8"),
            ("huge", "synth --out out --imgsz 100000", "--imgsz must be at most 8192"),
        ],
        "--seed": [("negative", "synth --out out --seed -1", "--seed must be an integer >= 0")],
        "--difficulty": [("unknown", "synth --out out --difficulty insane", "--difficulty must be one of easy, hard")],
        "--task": [("unknown", "synth --out out --task classify", "--task must be one of detect, segment")],
    },
    "export": {
        "MODEL": [
            ("missing", "export missing.pt", "model file not found: missing.pt"),
            ("onnx", "export model.onnx", "model.onnx: expected a .pt checkpoint"),
            ("empty", "export {empty_pt}", "{empty_pt} is empty"),
            ("a-folder", "export {dir_pt}", "{dir_pt} is a directory"),
        ],
        "--format": [
            ("unknown", "export {pt} --format trt", "unknown --format 'trt'; choose one of onnx,"),
            ("none", "export {pt} --format ,", "--format names no format"),
            ("engine-without-gpu", "export {pt} --format engine", "--format engine builds for a CUDA GPU"),
        ],
        "--imgsz": [
            ("100", "export {pt} --imgsz 100", "--imgsz must be a positive multiple of 32"),
            ("zero", "export {pt} --imgsz 0", "got 0"),
        ],
        "--dynamic": [
            ("executorch", "export {pt} --format executorch --dynamic", "--dynamic is for --format"),
            ("int8", "export {pt} --int8 --data {data} --dynamic", "--int8 needs a fixed input size; drop --dynamic"),
        ],
        "--opset": [
            ("openvino", "export {pt} --format openvino --opset 12", "--opset is for --format onnx, not openvino"),
            ("no-format-takes-it", "export {pt} --format openvino,ncnn --opset 12", "--opset is for --format onnx"),
        ],
        "--simplify": [("torchscript", "export {pt} --format torchscript --simplify", "--simplify is for --format")],
        "--end2end": [("no-end2end-head", "export {pt} --end2end", "has no end-to-end (one-to-one) head")],
        "--int8": [
            ("without-data", "export {pt} --int8", "--int8 needs --data DATA"),
            ("torchscript", "export {pt} --format torchscript --int8 --data {data}", "--int8 is for --format onnx"),
            ("no-format-takes-it", "export {pt} --format torchscript,ncnn --int8 --data {data}", "--int8 is for"),
        ],
        "--data": [
            ("missing", "export {pt} --data no.yaml", "--data no.yaml: dataset file not found"),
            ("missing-with-int8", "export {pt} --int8 --data no.yaml", "--data no.yaml: dataset file not found"),
            ("coreml", "export {pt} --format coreml --data {data}", "--format coreml does not run here"),
        ],
        "--calib": [
            ("zero", "export {pt} --int8 --data {data} --calib 0", "--calib must be at least 1, got 0"),
            ("without-int8", "export {pt} --calib 10", "only used with --int8"),
        ],
        "--against": [
            ("missing", "export {pt} --against missing.pt", "--against: model file not found: missing.pt"),
            ("itself", "export {pt} --against {pt}", "--against is the original to time against; it is MODEL"),
            ("torchscript", "export {pt} --format torchscript --against {full}", "--format torchscript has none"),
        ],
        "--threads": [
            ("zero", "export {pt} --against {full} --threads 0", "--threads must be at least 1, got 0"),
            ("without-against", "export {pt} --threads 2", "only used when timing with --against"),
        ],
        "--runs": [
            ("zero", "export {pt} --against {full} --runs 0", "--runs must be at least 1, got 0"),
            ("without-against", "export {pt} --runs 5", "only used when timing with --against"),
        ],
        "--tolerance": [
            ("zero", "export {pt} --tolerance 0", "--tolerance must be positive, got 0"),
            ("negative", "export {pt} --tolerance -1e-3", "got -0.001"),
            ("coreml", "export {pt} --format coreml --tolerance 1e-3", "which --format coreml does not have"),
        ],
        "--out": [("over-the-input", "export {pt} --format torchscript --out {pt}", "--out would overwrite the input")],
    },
    "bench": {
        "MODELS": [
            ("missing", "bench {pt} missing.onnx", "model file not found: missing.onnx"),
            ("a-text-file", "bench {pt} {txt}", "expected a .pt checkpoint or an .onnx file"),
            ("a-yaml", f"bench {YAML}", "expected a .pt checkpoint or an .onnx file"),
            ("empty", "bench {empty_pt}", "{empty_pt} is empty"),
        ],
        "--imgsz": [
            ("33", "bench {pt} --imgsz 33", "--imgsz must be a positive multiple of 32"),
            ("huge", "bench {pt} --imgsz 9000", "got 9000"),
        ],
        "--runs": [("zero", "bench {pt} --runs 0", "--runs must be at least 1, got 0")],
        "--warmup": [("negative", "bench {pt} --warmup -1", "--warmup must be 0 or more, got -1")],
        "--threads": [("zero", "bench {pt} --threads 0", "--threads must be at least 1, got 0")],
        "--runtime": [
            ("unknown", "bench {pt} --runtime coreml", "unknown --runtime 'coreml'"),
            ("no-gpu", "bench {pt} --runtime torch-cuda-fp16", "--runtime torch-cuda-fp16 needs a CUDA GPU"),
        ],
        "--batch": [
            ("zero", "bench {pt} --batch 0", "--batch must be at least 1, got 0"),
            ("onnxruntime", "bench {pt} --batch 4", "onnxruntime-cpu times the exported graph at batch 1"),
        ],
    },
    "convert": {
        "SRC": [
            ("missing-voc", "convert nowhere --from voc --out out", "VOC dataset folder not found: nowhere"),
            ("missing-coco", "convert no.json --from coco --images {dir} --out out", "not found: no.json"),
            ("text-as-json", "convert {json} --from coco --images {dir} --out out", "is not valid JSON"),
        ],
        "--from": [("unknown", "convert {dir} --from yolo --out out", "--from must be voc or coco, not 'yolo'")],
        "--out": [
            ("not-empty", "convert {json} --from coco --images {dir} --out {dir}", "is not empty; choose a new --out")
        ],
        "--images": [
            (
                "missing-voc",
                "convert {dir} --from voc --images nowhere --out out",
                "--images nowhere: folder not found",
            ),
            ("missing-coco", "convert {json} --from coco --images nowhere --out out", "--images nowhere"),
            ("coco-without", "convert {json} --from coco --out out", "--from coco needs --images DIR"),
        ],
        "--annotations": [
            ("missing", "convert {dir} --from voc --annotations nowhere --out out", "--annotations nowhere"),
            ("coco", "convert {json} --from coco --images {dir} --annotations {dir} --out out", "is for --from voc"),
        ],
        "--names": [
            ("empty", "convert {dir} --from voc --names , --out out", "--names must name at least one class"),
            ("repeated", "convert {dir} --from voc --names a,b,a --out out", "--names repeats a"),
        ],
        "--split-files": [
            ("coco", "convert {json} --from coco --images {dir} --no-split-files --out out", "--no-split-files")
        ],
        "--val-fraction": [
            ("above-1", "convert {dir} --from voc --val-fraction 1.5 --out out", "--val-fraction must be between 0"),
            ("zero", "convert {dir} --from voc --val-fraction 0 --out out", "not 0.0"),
            (
                "with-split",
                "convert {json} --from coco --images {dir} --split val --val-fraction 0.3 --out out",
                "only used for a random split",
            ),
        ],
        "--seed": [
            ("with-split", "convert {json} --from coco --images {dir} --split val --seed 3 --out out", "random split")
        ],
        "--split": [
            ("voc", "convert {dir} --from voc --split val --out out", "--split is for --from coco"),
            ("bogus", "convert {json} --from coco --images {dir} --split bogus --out out", "--split must be one of"),
        ],
    },
}

# Switches that no value makes wrong, and what they do.
UNREFUSABLE = {
    ("sensitivity", "--json"): "prints the table as JSON",
    ("val", "--json"): "prints JSON",
    ("demo", "--fast"): "a reduced run",
    ("info", "--json"): "prints JSON",
    ("export", "--fast-dfl"): "how DFL is exported, lossless either way",
    ("export", "--json"): "prints JSON",
    ("bench", "--json"): "prints JSON",
    ("convert", "--json"): "prints JSON",
}


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """`yolo-prune ARGS` through `main()`: (exit code, stdout, stderr). main() sets up the package's logging on the
    stderr captured here; the loggers are restored after."""
    loggers = [logging.getLogger(name) for name in ("yolo_prune", "ultralytics")]
    saved = [(logger.handlers[:], logger.propagate, logger.level) for logger in loggers]
    loggers[0].handlers.clear()  # main() adds its handler when there is none
    try:
        with runner.isolation() as (out, err, _):
            try:
                main(args)
                code = 0
            except SystemExit as e:
                code = e.code
            sys.stdout.flush()
            sys.stderr.flush()
            return code, out.getvalue().decode(), err.getvalue().decode()
    finally:
        for logger, (handlers, propagate, level) in zip(loggers, saved):
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, two_class_model, tiny_data) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    (root / "notes.txt").write_text("not a model\n")
    (root / "text.pt").write_text("a text file renamed .pt\n")
    (root / "empty.pt").touch()
    (root / "folder.pt").mkdir()
    (root / "images").mkdir()
    (root / "images" / "a.jpg").write_bytes(b"\xff\xd8")
    (root / "table.json").write_text('{"groups": [], "ratios": [0.5]}')
    (root / "instances.json").write_text("not JSON\n")
    full = root / "full.pt"
    full.write_bytes(two_class_model.read_bytes())
    return {
        "pt": two_class_model,
        "full": full,
        "data": tiny_data,
        "txt": root / "notes.txt",
        "text_pt": root / "text.pt",
        "empty_pt": root / "empty.pt",
        "dir_pt": root / "folder.pt",
        "dir": root / "images",
        "table": root / "table.json",
        "json": root / "instances.json",
    }


@functools.cache
def digest(path: Path, size: int, mtime_ns: int) -> str:
    """The file's SHA-256, read again only when its size or modification time changed (cases share the inputs)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under `roots`, with each file's digest."""
    found = {}
    for root in roots:
        for path in sorted([root, *root.rglob("*")]):
            stat = path.stat()
            found[str(path)] = digest(path, stat.st_size, stat.st_mtime_ns) if path.is_file() else "dir"
    return found


def fill(text: str, inputs: dict[str, Path]) -> str:
    for key, path in inputs.items():
        text = text.replace(f"{{{key}}}", str(path))
    return text


def cases():
    for command, params in CASES.items():
        for param, bad in params.items():
            for what, line, expected in bad:
                yield pytest.param(param, line, expected, id=f"{command} {param} {what}")


@pytest.mark.parametrize(("param", "line", "expected"), list(cases()))
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, inputs, param, line, expected):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    args = [fill(arg, inputs) for arg in shlex.split(line)]
    watched = [tmp_path, inputs["txt"].parent, inputs["pt"].parent, inputs["data"].parent]
    before = snapshot(*watched)

    code, stdout, stderr = run_cli(args)

    assert "Traceback" not in stdout + stderr, stderr[-3000:]
    lines = [text for text in stderr.splitlines() if text.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), (code, stdout[-500:], stderr[-2000:])
    assert fill(expected, inputs) in lines[0]
    if param.startswith("--"):
        assert param in lines[0] or param.replace("--", "--no-") in lines[0]
    assert snapshot(*watched) == before  # nothing written, no input touched


def test_every_parameter_has_bad_input_cases():
    """A new command, option or argument needs its cases above (or a reason in UNREFUSABLE)."""
    commands = typer.main.get_command(app).commands
    assert sorted(CASES) == sorted(commands)
    for name, command in commands.items():
        for param in command.params:
            key = param.opts[0] if param.param_type_name == "option" else param.name.upper()
            if (name, key) not in UNREFUSABLE:
                assert CASES[name].get(key), f"{name} {key}: no bad-input case"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["prune", YAML, "--ratio", "0.3", "--bogus"], "No such option: --bogus"),
        (["bench", "m.pt", "--runs", "many"], "Invalid value for '--runs'"),
        (["val", "m.pt"], "Missing option '--data'"),
        (["export"], "Missing argument"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["export", "m.pt", "--fast-dfl=no"], "Option '--fast-dfl' does not take a value"),
    ],
    ids=["unknown-option", "not-a-number", "missing-option", "missing-argument", "unknown-command", "flag-value"],
)
def test_usage_errors_are_one_line_too(tmp_path, monkeypatch, args, expected):
    """Click's own usage errors are bad input as well: one `error:` line and exit code 1, not a usage box and 2."""
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run_cli(args)
    assert code == 1 and stdout == "" and stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"error: {expected}") and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [[], ["--help"], ["prune", "--help"], ["--version"]], ids=str)
def test_help_and_version_exit_0(args):
    code, stdout, stderr = run_cli(args)
    assert code == 0 and stderr == "" and ("Usage" in stdout or "yolo-prune " in stdout)
