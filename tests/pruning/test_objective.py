"""The loss behind the sensitivity scan and gradient importances: Ultralytics' own, as a trained model ends on."""

from __future__ import annotations

import pytest
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.pruning.objective import detection_loss


def _batch() -> dict:
    torch.manual_seed(1)
    return {
        "img": torch.rand(2, 3, 64, 64),
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
        "cls": torch.tensor([[0.0], [1.0], [1.0]]),
        "bboxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5]]),
    }


def _loss(model: DetectionModel, criterion, batch: dict) -> float:
    with torch.no_grad():
        return float(criterion(model(batch["img"]), batch)[0].sum())


def test_an_end_to_end_head_is_measured_with_the_gains_its_training_ends_on():
    """YOLO26's loss weighs the one-to-one branch (the one inference runs) 0.2 in a fresh criterion and 0.9 once
    Ultralytics' schedule has run its course: the objective must be the latter."""
    torch.manual_seed(0)
    model = DetectionModel("yolo26n.yaml", nc=2, verbose=False).eval()
    batch = _batch()
    measured = detection_loss(model, [batch])
    assert model.criterion is None and not hasattr(model, "args")  # nothing lent is left behind

    model.args = get_cfg()  # what Ultralytics' trainer gives the model
    trained, fresh = model.init_criterion(), model.init_criterion()
    trained.updates = trained.one2one.hyp.epochs  # the end of the schedule: o2m at its final gain
    trained.update()
    assert trained.o2m == pytest.approx(0.1) and fresh.o2m == pytest.approx(0.8)
    assert measured == pytest.approx(_loss(model, trained, batch), rel=1e-5)
    assert abs(measured - _loss(model, fresh, batch)) > 1e-3 * measured


def test_a_one_branch_head_keeps_its_loss():
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False).eval()
    batch = _batch()
    model.args = get_cfg()
    expected = _loss(model, model.init_criterion(), batch)
    del model.args
    assert detection_loss(model, [batch]) == pytest.approx(expected, rel=1e-5)
