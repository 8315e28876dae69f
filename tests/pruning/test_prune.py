"""Structured pruning: MACs targets, exact widths, head shapes, gradients, bad options."""

from __future__ import annotations

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.errors import ConfigError, TargetUnreachableError
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.cost import measure
from yolo_prune.pruning.prune import prune
from yolo_prune.pruning.structure import head_outputs

IMGSZ = 64


def _model(yaml: str, nc: int = 3) -> DetectionModel:
    torch.manual_seed(0)
    return DetectionModel(yaml, nc=nc, verbose=False).eval()


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml"])
def test_target_macs_is_reached_and_head_shapes_kept(yaml):
    model = _model(yaml)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        want = [t.shape for t in head_outputs(model, x)]
    original_state = {k: v.clone() for k, v in model.state_dict().items()}

    pruned, result = prune(model, PruneConfig(target_macs=0.5, imgsz=IMGSZ))

    fraction = measure(pruned, IMGSZ).macs / measure(model, IMGSZ).macs
    assert 0.47 <= fraction <= 0.53
    assert result.macs_fraction == pytest.approx(fraction)
    assert result.after.params < 0.65 * result.before.params
    with torch.no_grad():
        assert [t.shape for t in head_outputs(pruned, x)] == want
    # the input model is untouched
    assert all(torch.equal(v, original_state[k]) for k, v in model.state_dict().items())


def test_ratio_gives_exact_widths():
    model = _model("yolov8n.yaml")
    pruned, _ = prune(model, PruneConfig(ratio=0.25, imgsz=IMGSZ))
    convs = {n: m for n, m in pruned.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert convs["model.0.conv"].out_channels == 12  # 16 channels, a quarter removed
    assert convs["model.7.conv"].out_channels == 192  # 256 -> 192
    # The head's output convs keep the output format: 64 box channels (4 x reg_max 16) and nc class channels.
    assert convs["model.22.cv2.0.2"].out_channels == 64
    assert convs["model.22.cv3.2.2"].out_channels == 3
    assert convs["model.22.dfl.conv"].in_channels == 16


def test_round_to_keeps_multiples():
    model = _model("yolov8n.yaml")
    pruned, _ = prune(model, PruneConfig(ratio=0.3, round_to=8, imgsz=IMGSZ))
    head_outs = {"model.22.cv2.0.2", "model.22.cv3.0.2", "model.22.cv3.1.2", "model.22.cv3.2.2"}
    widths = [
        m.out_channels
        for n, m in pruned.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.groups == 1 and n not in head_outs and "dfl" not in n
    ]
    assert widths and all(w % 8 == 0 for w in widths)


def test_attention_keeps_its_width_and_ffn_is_pruned():
    model = _model("yolo11n.yaml")
    pruned, _ = prune(model, PruneConfig(ratio=0.4, imgsz=IMGSZ))
    block = pruned.model[10].m[0]  # the PSABlock of C2PSA
    assert block.attn.qkv.conv.out_channels == model.model[10].m[0].attn.qkv.conv.out_channels
    assert block.attn.proj.conv.out_channels == block.attn.qkv.conv.in_channels
    assert block.ffn[0].conv.out_channels < model.model[10].m[0].ffn[0].conv.out_channels


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo26n.yaml"])
def test_backward_reaches_every_trainable_parameter(yaml):
    pruned, _ = prune(_model(yaml), PruneConfig(target_macs=0.6, imgsz=IMGSZ))
    pruned.train()
    out = pruned(torch.rand(2, 3, IMGSZ, IMGSZ))
    branches = [out["one2many"], out["one2one"]] if "one2many" in out else [out]
    sum(b["boxes"].sum() + b["scores"].sum() for b in branches).backward()
    missing = [n for n, p in pruned.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_global_pruning_reaches_target():
    model = _model("yolov8n.yaml")
    pruned, result = prune(model, PruneConfig(target_macs=0.5, allocation="global", imgsz=IMGSZ))
    assert 0.47 <= result.macs_fraction <= 0.53


def test_taylor_uses_data_gradients(tiny_data):
    from yolo_prune.data.datasets import batches, resolve_dataset

    data = resolve_dataset(tiny_data, splits=("train",))
    model = _model("yolov8n.yaml", nc=2)
    pruned, result = prune(
        model,
        PruneConfig(target_macs=0.5, method="taylor", data=str(tiny_data), imgsz=IMGSZ),
        gradient_batches=lambda: batches(data, "train", IMGSZ, 4, 2),
    )
    assert 0.47 <= result.macs_fraction <= 0.53
    assert all(p.grad is None for p in pruned.parameters())


def test_unreachable_target_is_an_error():
    with pytest.raises(TargetUnreachableError, match=r"could not reach 0.2% of the MACs: the closest was 1\.\d%"):
        prune(_model("yolov8n.yaml"), PruneConfig(target_macs=0.002, imgsz=IMGSZ))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ratio": 1.5}, "--ratio must be between 0 and 1"),
        ({"ratio": 0.0}, "--ratio must be between 0 and 1"),
        ({"target_macs": -0.2}, "--target-macs must be between 0 and 1"),
        ({}, "exactly one of --target-macs, --target-speedup, --target-latency and --ratio"),
        ({"ratio": 0.3, "target_macs": 0.5}, "exactly one of --target-macs, --target-speedup"),
        ({"ratio": 0.3, "method": "l3"}, "unknown --method 'l3'; choose one of: l1, l2, bn, lamp, taylor, random"),
        ({"ratio": 0.3, "method": "taylor"}, "needs loss gradients: pass --data"),
        ({"ratio": 0.3, "imgsz": 100}, "--imgsz must be a positive multiple of 32"),
        ({"ratio": 0.3, "round_to": 0}, "--round-to must be a positive integer"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        PruneConfig(**kwargs)
