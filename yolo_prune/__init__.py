"""yolo_prune: structured pruning, fine-tuning, validation and export for Ultralytics YOLO detectors.

The Python API, stage by stage (each stage is one module; data flows one way, model in, model out):

    load_model -> make_prunable -> prune -> save_checkpoint

`run_prune` and `model_info` put the stages together, as the CLI does.
"""

__version__ = "0.1.0"

from yolo_prune.checkpoint import save_checkpoint  # noqa: E402
from yolo_prune.config import PruneConfig  # noqa: E402
from yolo_prune.cost import ModelCost, measure  # noqa: E402
from yolo_prune.errors import YoloPruneError  # noqa: E402
from yolo_prune.load import load_model  # noqa: E402
from yolo_prune.pipeline import model_info, run_prune  # noqa: E402
from yolo_prune.prune import PruneResult, prune  # noqa: E402
from yolo_prune.surgery import make_prunable  # noqa: E402

__all__ = [
    "ModelCost",
    "PruneConfig",
    "PruneResult",
    "YoloPruneError",
    "__version__",
    "load_model",
    "make_prunable",
    "measure",
    "model_info",
    "prune",
    "run_prune",
    "save_checkpoint",
]
