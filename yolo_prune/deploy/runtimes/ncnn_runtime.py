"""ncnn on the CPU (`ncnn-cpu`): Ultralytics' NCNN export (pnnx's .param/.bin folder), run in float32.

The layer timer writes each conv shape as a two-layer ncnn network (Convolution, or ConvolutionDepthWise for
grouped convs, then Swish, as pnnx writes a Conv + SiLU) straight into ncnn's text and binary formats, loads it from
memory and times the extraction with the same options as `bench`. ncnn packs channels in groups of 16, 8 or 4
(elempack) where a width divides by them; it reports no block, so the latency model learns it from the timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from yolo_prune.checks import check_threads
from yolo_prune.deploy.runtimes.exported import ExportedRuntime
from yolo_prune.deploy.timer_cache import CachedTimer, cpu_machine, wall_ms

if TYPE_CHECKING:
    from yolo_prune.pruning.cost import ConvShape

WARMUP = 5  # ncnn's threads start on the first runs of a network: the first shapes timed after 2 ran up to 2x slow


class NcnnCPU(ExportedRuntime):
    name, format, label, package = "ncnn-cpu", "ncnn", "ncnn", "ncnn"

    def layer_timer(self, threads: int | None = None, batch: int = 1, cache: Path | None = None) -> NcnnTimer:
        self.check(threads, batch, "--batch")
        return NcnnTimer(threads, cache)


RUNTIMES = (NcnnCPU(),)


class NcnnTimer(CachedTimer):
    """Times conv shapes on ncnn's CPU path in float32 with `threads` threads."""

    runtime = "ncnn-cpu"

    def __init__(self, threads: int | None = None, cache: Path | None = None):
        import importlib.metadata

        check_threads(threads)
        self.threads = threads
        version = importlib.metadata.version("ncnn")
        self.machine = f"{cpu_machine()}, ncnn {version}, threads {threads or 'default'}, warm-up {WARMUP}"
        self._open(cache)

    def _time(self, s: ConvShape) -> float:
        import ncnn

        from yolo_prune.deploy.formats import ncnn_net

        param, weights = conv_network(s)
        net = ncnn_net(param, weights, self.threads)
        data = np.random.default_rng(0).random((s.cin, s.h, s.w), dtype=np.float32)
        x = ncnn.Mat(data)  # shares `data`'s memory, which must outlive it
        out = "out" if s.act else "conv"

        def run() -> None:
            with net.create_extractor() as ex:
                ex.input("in0", x)
                ex.extract(out)

        for _ in range(WARMUP):
            run()
        return float(np.median(wall_ms(run)))


def conv_network(s: ConvShape) -> tuple[str, bytes]:
    """The conv `s` (plus Swish when `s.act`) as an ncnn .param text and .bin bytes, random weights.

    In the .bin a conv's weights start with a 4-byte type tag (0: raw float32); its bias follows untagged.
    """
    weight_count = s.cout * (s.cin // s.groups) * s.k * s.k
    layer = "ConvolutionDepthWise" if s.groups > 1 else "Convolution"
    group = f" 7={s.groups}" if s.groups > 1 else ""
    layers = [
        f"Input in0 0 1 in0 0={s.w} 1={s.h} 2={s.cin}",
        f"{layer} conv 1 1 in0 conv 0={s.cout} 1={s.k} 2={s.dilation} 3={s.stride} 4={s.pad} 5=1 6={weight_count}"
        + group,
    ]
    if s.act:
        layers.append("Swish silu 1 1 conv out")
    param = "\n".join(["7767517", f"{len(layers)} {len(layers)}", *layers]) + "\n"
    rng = np.random.default_rng(0)
    weights = (
        np.zeros(1, np.uint32).tobytes()
        + rng.random(weight_count, dtype=np.float32).tobytes()
        + rng.random(s.cout, dtype=np.float32).tobytes()
    )
    return param, weights
