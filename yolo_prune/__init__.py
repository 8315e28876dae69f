"""yolo_prune: structured pruning, fine-tuning, validation and export for Ultralytics YOLO detectors.

The Python API, stage by stage (one module each; data flows one way, model in, model out):

    load_model -> make_prunable -> prune -> finetune -> validate -> export_onnx / quantize_int8 -> bench

`run_prune`, `run_train`, `run_sensitivity`, `run_unstructured` and `model_info` (in `pipeline`) chain the stages as
the CLI commands do; `convert_voc`/`convert_coco` and `synthetic.generate` make datasets.
"""

__version__ = "0.1.0"

from yolo_prune.bench import bench  # noqa: E402
from yolo_prune.checkpoint import save_checkpoint  # noqa: E402
from yolo_prune.config import PruneConfig  # noqa: E402
from yolo_prune.convert import convert_coco, convert_voc  # noqa: E402
from yolo_prune.cost import ModelCost, measure  # noqa: E402
from yolo_prune.errors import YoloPruneError  # noqa: E402
from yolo_prune.export import export_onnx  # noqa: E402
from yolo_prune.finetune import FinetuneConfig, finetune  # noqa: E402
from yolo_prune.load import load_model  # noqa: E402
from yolo_prune.pipeline import model_info, run_prune, run_sensitivity, run_train, run_unstructured  # noqa: E402
from yolo_prune.prune import PruneResult, prune  # noqa: E402
from yolo_prune.quantize import quantize_int8  # noqa: E402
from yolo_prune.surgery import make_prunable  # noqa: E402
from yolo_prune.validate import validate  # noqa: E402

__all__ = [
    "FinetuneConfig",
    "ModelCost",
    "PruneConfig",
    "PruneResult",
    "YoloPruneError",
    "__version__",
    "bench",
    "convert_coco",
    "convert_voc",
    "export_onnx",
    "finetune",
    "load_model",
    "make_prunable",
    "measure",
    "model_info",
    "prune",
    "quantize_int8",
    "run_prune",
    "run_sensitivity",
    "run_train",
    "run_unstructured",
    "save_checkpoint",
    "validate",
]
