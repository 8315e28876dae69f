"""What keeps its width: the output format, attention, and the producers of splits that no rewrite removes."""

from __future__ import annotations

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.cost import conv_widths
from yolo_prune.pruning.prune import prune
from yolo_prune.pruning.structure import head_outputs, split_producers
from yolo_prune.pruning.surgery import make_prunable

# YOLOv9's ADown chunks its *input* (the previous layer's output) in two; no rewrite can split that producer's conv.
ADOWN_YAML = """
nc: 2
backbone:
  - [-1, 1, Conv, [16, 3, 2]]  # 0
  - [-1, 1, Conv, [32, 3, 2]]  # 1
  - [-1, 1, ADown, [64]]  # 2: chunks the output of 1
  - [-1, 1, Conv, [64, 3, 1]]  # 3
  - [-1, 1, ADown, [64]]  # 4: chunks the output of 3
  - [-1, 1, ADown, [64]]  # 5: chunks the output of 4, a concat of its two convs
head:
  - [[3, 4, 5], 1, Detect, [nc]]
"""


@pytest.fixture
def adown_model(tmp_path) -> DetectionModel:
    path = tmp_path / "adown.yaml"
    path.write_text(ADOWN_YAML)
    torch.manual_seed(0)
    return DetectionModel(str(path), verbose=False).eval()


def test_the_producers_of_an_unrewritten_split_are_found(adown_model):
    for p in adown_model.parameters():
        p.requires_grad_(True)
    names = {m: n for n, m in adown_model.named_modules()}
    found = sorted(names[m] for m in split_producers(adown_model, torch.rand(1, 3, 64, 64)))
    assert found == ["model.1.conv", "model.3.conv", "model.4.cv1.conv", "model.4.cv2.conv"]


def test_a_model_with_unrewritten_splits_prunes_around_them(adown_model):
    x = torch.rand(1, 3, 64, 64)
    pruned, _ = prune(adown_model, PruneConfig(ratio=0.5, imgsz=64))
    before, after = conv_widths(adown_model), conv_widths(pruned)
    kept = ["model.1.conv", "model.3.conv", "model.4.cv1.conv", "model.4.cv2.conv"]
    assert {n: after[n] for n in kept} == {n: before[n] for n in kept}
    assert after["model.0.conv"] == 8 and after["model.2.cv1.conv"] == 16  # half of 16 and of 32
    with torch.no_grad():
        assert [t.shape for t in head_outputs(pruned, x)] == [t.shape for t in head_outputs(adown_model, x)]


def test_rewritten_blocks_leave_no_split_behind():
    model = DetectionModel("yolo11n.yaml", nc=2, verbose=False).eval()
    make_prunable(model)
    for p in model.parameters():
        p.requires_grad_(True)
    names = {m: n for n, m in model.named_modules()}
    # only attention's q/k/v split remains, and its qkv conv keeps its width anyway
    assert sorted(names[m] for m in split_producers(model, torch.rand(1, 3, 64, 64))) == ["model.10.m.0.attn.qkv.conv"]


def test_a_stalled_dependency_graph_ends_in_one_line_naming_untested_blocks(adown_model, monkeypatch):
    from ultralytics.nn.modules.block import ADown

    class MyDown(ADown):  # a custom block of the user's: no shipped model has it
        pass

    adown_model.model[2].__class__ = MyDown
    import torch_pruning as tp

    from yolo_prune.errors import UnsupportedModelError
    from yolo_prune.pruning import structure

    def stall(self):  # what torch-pruning did on YOLO12's area attention before it kept its width
        while True:
            pass

    monkeypatch.setattr(structure, "GRAPH_SECONDS", 0.5)
    monkeypatch.setattr(tp.pruner.MetaPruner, "step", stall)
    with pytest.raises(UnsupportedModelError) as error:
        prune(adown_model, PruneConfig(ratio=0.5, imgsz=64))
    assert str(error.value) == (
        "torch-pruning's dependency graph did not finish within 0.5 s on this model (blocks no tested model has: "
        "MyDown); a block whose channels it cannot follow is the likely cause"
    )


@pytest.mark.parametrize("yaml", ["yolo11n.yaml", "yolo26n.yaml", "yolo11n-pose.yaml"])
def test_the_sensitivity_scan_groups_attention_models_and_leaves_attention_out(yaml, monkeypatch):
    """The scan once passed attention's `Conv` blocks to torch-pruning, which compares the convs inside them: the
    attention path was not kept, and the grouping hung (on every YOLO11 and YOLO26 model)."""
    from yolo_prune.pruning import structure
    from yolo_prune.pruning.structure import build_groups

    monkeypatch.setattr(structure, "GRAPH_SECONDS", 30)  # a regression fails in one line instead of hanging
    model = DetectionModel(yaml, nc=2, verbose=False).eval()
    make_prunable(model)
    _, groups = build_groups(model, 64)
    assert len(groups) > 50
    assert not [info.name for info, _ in groups if ".attn." in info.name]  # no group is rooted in attention
