"""Errors that yolo_prune raises for bad input. The CLI prints their message on one line and exits with code 1."""


class YoloPruneError(Exception):
    """Base class: a problem with what the user asked for, reported without a traceback."""


class ConfigError(YoloPruneError, ValueError):
    """An option is out of range, unknown, or conflicts with another option."""


class ModelLoadError(YoloPruneError):
    """A model file is missing, corrupt, or cannot be downloaded."""


class UnsupportedModelError(YoloPruneError):
    """The model is not one that yolo_prune can prune (classification, RT-DETR, YOLO-World, YOLOE, ...)."""


class TargetUnreachableError(YoloPruneError):
    """The requested MACs target cannot be reached with the given limits."""


class DataError(YoloPruneError):
    """A dataset is missing, malformed, or disagrees with the model."""


class ExportError(YoloPruneError):
    """An export failed or its output disagrees with the PyTorch model."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error message, without Ultralytics' 'ERROR ❌' decoration.

    Library errors (Ultralytics, onnxruntime) often span many lines; a `YoloPruneError` built from one keeps one.
    """
    import re

    lines = str(error).strip().splitlines()
    return re.sub(r"^(ERROR)?[\s❌️]*", "", lines[0]) if lines else type(error).__name__
