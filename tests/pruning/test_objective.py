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


def _branch_loss(model: DetectionModel, batch: dict, branch: str) -> float:
    """Ultralytics' own loss of one branch of an end-to-end head, on its own."""
    criterion = model.init_criterion()
    with torch.no_grad():
        preds = criterion.one2many.parse_output(model(batch["img"]))
        part = getattr(criterion, branch)  # E2ELoss keeps one v8DetectionLoss per branch, named as the branch
        return float(part.loss(preds[branch], batch)[0].sum())


@pytest.mark.parametrize("end2end", [False, True])
def test_an_end_to_end_head_is_measured_on_the_branch_it_runs(end2end):
    """YOLO26's loss weighs its branches 0.8 / 0.2 in a fresh criterion and 0.1 / 0.9 once Ultralytics' schedule has
    run; the objective is the loss of the branch the model validates and exports with: one-to-many by default,
    one-to-one when `end2end` is set."""
    torch.manual_seed(0)
    model = DetectionModel("yolo26n.yaml", nc=2, verbose=False).eval()
    model.end2end = end2end
    batch = _batch()
    measured = detection_loss(model, [batch])
    assert model.criterion is None and not hasattr(model, "args")  # nothing lent is left behind

    model.args = get_cfg()  # what Ultralytics' trainer gives the model
    runs, other = ("one2one", "one2many") if end2end else ("one2many", "one2one")
    assert measured == pytest.approx(_branch_loss(model, batch, runs), rel=1e-5)
    assert abs(measured - _branch_loss(model, batch, other)) > 1e-3 * measured
    fresh = _loss(model, model.init_criterion(), batch)
    assert abs(measured - fresh) > 1e-3 * measured


def test_a_one_branch_head_keeps_its_loss():
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False).eval()
    batch = _batch()
    model.args = get_cfg()
    expected = _loss(model, model.init_criterion(), batch)
    del model.args
    assert detection_loss(model, [batch]) == pytest.approx(expected, rel=1e-5)
