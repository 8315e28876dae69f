"""yolo_prune: structured pruning, fine-tuning, validation and export for Ultralytics YOLO detectors.

The package is layered; each layer imports only the ones below it (tests/test_layers.py checks this):

    app/      one module per run (prune, train, sensitivity, unstructured, export, info), demo, render, plots, cli
    train/    Ultralytics' trainer and validator, subclassed        deploy/   export formats, parity, INT8, bench
    pruning/  load, surgery, structure, importance, allocation, search, prune, sensitivity, cost, checkpoint
    data/     dataset checks and loaders, VOC/COCO conversion, synthetic data, the YOLO label writer
    errors, checks, atomic, _version    (the foundation: no torch, no Ultralytics)

The names below are the Python API, one per stage (model in, model out) and one per run. They load on first use,
so `import yolo_prune` itself imports no torch, Ultralytics, matplotlib or onnxruntime.

    load_model -> make_prunable -> prune -> finetune -> validate -> export_onnx / quantize_int8 -> bench
"""

from __future__ import annotations

import importlib

from yolo_prune._version import __version__

# public name -> module that defines it
_API = {
    "load_model": "yolo_prune.pruning.load",
    "make_prunable": "yolo_prune.pruning.surgery",
    "PruneConfig": "yolo_prune.pruning.config",
    "prune": "yolo_prune.pruning.prune",
    "PruneResult": "yolo_prune.pruning.prune",
    "Allocation": "yolo_prune.pruning.allocation",
    "create_allocation": "yolo_prune.pruning.allocation",
    "ModelCost": "yolo_prune.pruning.cost",
    "measure": "yolo_prune.pruning.cost",
    "save_checkpoint": "yolo_prune.pruning.checkpoint",
    "FinetuneConfig": "yolo_prune.train.finetune",
    "finetune": "yolo_prune.train.finetune",
    "PrunedDetectionTrainer": "yolo_prune.train.trainers",
    "PrunedSegmentationTrainer": "yolo_prune.train.trainers",
    "PrunedPoseTrainer": "yolo_prune.train.trainers",
    "PrunedOBBTrainer": "yolo_prune.train.trainers",
    "validate": "yolo_prune.train.validate",
    "export_onnx": "yolo_prune.deploy.export",
    "quantize_int8": "yolo_prune.deploy.quantize",
    "bench": "yolo_prune.deploy.bench",
    "convert_voc": "yolo_prune.data.convert",
    "convert_coco": "yolo_prune.data.convert",
    "run_prune": "yolo_prune.app.prune_run",
    "resume_run": "yolo_prune.app.prune_run",
    "run_train": "yolo_prune.app.train_run",
    "run_sensitivity": "yolo_prune.app.sensitivity_run",
    "run_unstructured": "yolo_prune.app.unstructured_run",
    "run_export": "yolo_prune.app.export_run",
    "model_info": "yolo_prune.app.info",
    "YoloPruneError": "yolo_prune.errors",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'yolo_prune' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
