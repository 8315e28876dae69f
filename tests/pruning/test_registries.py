"""Importance criteria and allocations: injected objects, registries by name, and what a new entry must provide."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.errors import ConfigError
from yolo_prune.pruning import allocation as allocations
from yolo_prune.pruning import importance as criteria
from yolo_prune.pruning.config import PruneConfig
from yolo_prune.pruning.cost import measure
from yolo_prune.pruning.prune import prune

IMGSZ = 64


@pytest.fixture(scope="module")
def model() -> DetectionModel:
    torch.manual_seed(0)
    return DetectionModel("yolov8n.yaml", nc=2, verbose=False).eval()


class ByIndex(tp.importance.Importance):
    """Scores a channel by its index: the pruner removes the first channels of every group and keeps the last."""

    def __call__(self, group) -> torch.Tensor:
        return torch.arange(len(group[0].idxs), dtype=torch.float32)


def test_prune_takes_an_importance_object_of_ones_own(model):
    pruned, result = prune(model, PruneConfig(ratio=0.25, imgsz=IMGSZ), importance=ByIndex())
    before, after = model.model[0].conv.weight, pruned.model[0].conv.weight
    kept = after.shape[0]
    assert kept == 12 and before.shape[0] == 16
    torch.testing.assert_close(after, before[-kept:, :, :, :])  # the last 12 channels, exactly
    assert result.method == "ByIndex"


def test_an_importance_that_needs_gradients_without_data_is_refused(model):
    class NeedsGrads(ByIndex):
        needs_gradients = True

    assert criteria.needs_gradients(NeedsGrads()) and criteria.needs_gradients(criteria.taylor())
    assert not criteria.needs_gradients(criteria.l2())
    with pytest.raises(ConfigError, match="importance NeedsGrads needs loss gradients: pass --data DATA.yaml"):
        prune(model, PruneConfig(ratio=0.25, imgsz=IMGSZ), importance=NeedsGrads())


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(ConfigError, match="unknown --method 'l3'; choose one of: l1, l2, bn, lamp, taylor, random"):
        PruneConfig(ratio=0.3, method="l3")
    with pytest.raises(ConfigError, match="unknown --allocation 'even'; choose one of: uniform, global, sensitivity"):
        PruneConfig(ratio=0.3, allocation="even")


def test_a_registered_allocation_is_found_by_name_and_drives_the_pruner(model, monkeypatch):
    class Halved(allocations.Allocation):
        """Uniform at half the value: a stand-in for a new strategy."""

        name = "halved"
        summary = "every group loses half the searched share"

        def pruner_args(self, value, model, max_layer_ratio):
            return {"pruning_ratio": value / 2, "global_pruning": False}

    monkeypatch.setitem(allocations._ALLOCATIONS, "halved", Halved)
    assert "halved" in allocations.names()
    halved, result = prune(model, PruneConfig(ratio=0.5, allocation="halved", imgsz=IMGSZ))
    uniform, _ = prune(model, PruneConfig(ratio=0.25, imgsz=IMGSZ))
    assert measure(halved, IMGSZ) == measure(uniform, IMGSZ)
    assert (result.allocation, result.variable, result.value) == ("halved", "channel ratio", 0.5)


def test_a_budget_allocation_needs_a_macs_target_and_a_table():
    with pytest.raises(ConfigError, match="--allocation sensitivity needs --target-macs"):
        PruneConfig(ratio=0.3, allocation="sensitivity", data="d.yaml")
    with pytest.raises(ConfigError, match="allocation 'sensitivity' needs a sensitivity table"):
        allocations.create_allocation("sensitivity")
    with pytest.raises(ConfigError, match="not a sensitivity table"):
        allocations.create_allocation("sensitivity", {"groups": []})
