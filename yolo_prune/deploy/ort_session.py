"""The one place that opens onnxruntime sessions: for timing (`bench`, the layer timer), parity checks and probes.

Every session runs on the CPU provider. `session_options` are the settings a deployment times with; a corrupt or
unsupported file is one `ModelLoadError` line, not onnxruntime's multi-line exception.
"""

from __future__ import annotations

from pathlib import Path

from yolo_prune.errors import ModelLoadError


def session_options(threads: int | None = None):
    """onnxruntime CPU session options for timing: `threads` intra-op threads (None: onnxruntime's default), threads
    that spin within a run and stop after it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # onnxruntime's threads spin while they wait for work (its default, as deployed): without it every parallel op
    # waits for sleeping threads to wake. After a run they stop, or an idle session's threads would steal the cores
    # from the next model's run in the same round (docs/benchmarks.md, section 10).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return options


def open_session(model: str | Path | bytes, options=None):
    """An onnxruntime CPU session of `model` (a file, or a serialized ModelProto) with `options` (default:
    onnxruntime's own)."""
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types: a corrupt or unsupported file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        name = "the graph" if isinstance(model, bytes) else model
        raise ModelLoadError(f"cannot load {name} in onnxruntime: {first}") from e
