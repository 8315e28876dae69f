"""Deployment-only rewrites of Ultralytics' detection head: the same function, written so exported graphs run faster.

The DFL (Distribution Focal Loss integral) turns each box side's `c1` (reg_max, 16) logits into a distance: softmax
over the bins, then the expectation sum(i * p_i). Ultralytics' `DFL.forward` writes it as
`conv(x.view(b, 4, c1, a).transpose(2, 1).softmax(1))`, which exports as a Transpose and a Softmax over a non-last
axis. onnxruntime runs that poorly: measured on a 2-core CPU (onnxruntime 1.32, 2 threads), the stock DFL costs
~4 ms for (1, 64, 8400) at imgsz 640, 11-15% of yolov8n's whole latency (the trained yolov8n-bccd end to end: 35 ms
stock against 25 ms with the rewrite in one measurement, 29.0 against 25.7 ms median over 200 interleaved `bench`
runs in docs/benchmarks.md). The rewrite below computes the same softmax-weighted sum along the bin axis in place, with
no transpose, and runs in 0.26 ms; it matches the stock forward to ~4e-6.

These rewrites are for export only: training, validation and the parity check's PyTorch reference use the stock
modules. Every export made with them is checked against the stock PyTorch model (`export.export_format`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def fast_dfl_forward(self, x: torch.Tensor) -> torch.Tensor:
    """`DFL.forward` without the transpose: (B, 4 * c1, A) logits -> (B, 4, A) expected distances.

    The softmax is written out (max-subtracted, as `softmax` itself computes it) along the bin axis 2, and the
    integral uses the DFL conv's own weight (arange(c1) in Ultralytics), so it holds for any c1 and stays exact if
    the weight were ever different.
    """
    b, _, a = x.shape  # batch, channels, anchors
    x = x.view(b, 4, self.c1, a)
    e = (x - x.amax(2, keepdim=True)).exp()
    return (e * self.conv.weight.view(1, 1, self.c1, 1)).sum(2) / e.sum(2)


@contextmanager
def fast_dfl() -> Iterator[None]:
    """While active, every Ultralytics `DFL` module runs `fast_dfl_forward`; the stock forward is restored after,
    also when the body raises.

    This is the one place yolo_prune patches Ultralytics' library code. A class-level patch rather than rewriting
    modules in the model: Ultralytics' exporter deep-copies and fuses the model it is given, so the patch must hold for
    whatever copy it traces, and no checkpoint ever holds a non-stock module. Not thread-safe: do not run
    PyTorch inference of DFL models in another thread during an export.
    """
    from ultralytics.nn.modules.block import DFL

    original = DFL.__dict__["forward"]  # whatever is installed now: nesting restores each level in turn
    DFL.forward = fast_dfl_forward
    try:
        yield
    finally:
        DFL.forward = original
