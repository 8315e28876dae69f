"""A dataset must hold the model's classes: the same count, names and order (a class id is a position)."""

from __future__ import annotations

import pytest

from yolo_prune.data.datasets import check_classes
from yolo_prune.errors import DataError

MODEL = {0: "RBC", 1: "WBC", 2: "Platelets"}


def dataset(*names: str) -> dict:
    return {"nc": len(names), "names": dict(enumerate(names))}


def test_the_same_classes_in_the_same_order_pass():
    check_classes(dataset("RBC", "WBC", "Platelets"), MODEL)
    check_classes(dataset("RBC", "WBC", "Platelets"), ["RBC", "WBC", "Platelets"])


def test_another_order_is_refused_with_both_orders_and_the_fix():
    with pytest.raises(DataError) as error:
        check_classes(dataset("WBC", "RBC", "Platelets"), MODEL)
    assert str(error.value) == (
        "the dataset has the model's classes in another order: model RBC, WBC, Platelets; dataset WBC, RBC, "
        "Platelets. Convert the dataset again with --names RBC,WBC,Platelets"
    )


def test_other_names_and_other_counts_are_refused():
    with pytest.raises(DataError) as error:
        check_classes(dataset("cat", "dog", "Platelets"), MODEL)
    assert str(error.value) == "the dataset's classes (cat, dog, Platelets) are not the model's (RBC, WBC, Platelets)"
    with pytest.raises(DataError, match="^the dataset has 2 classes but the model has 3$"):
        check_classes(dataset("RBC", "WBC"), MODEL)


def test_a_model_built_from_yaml_has_placeholder_names_and_is_checked_by_count():
    check_classes(dataset("box", "disc"), {0: "0", 1: "1"})
    with pytest.raises(DataError, match="^the dataset has 2 classes but the model has 3$"):
        check_classes(dataset("box", "disc"), {0: "0", 1: "1", 2: "2"})


def test_a_pose_model_needs_the_datasets_keypoints():
    pose = {**dataset("RBC", "WBC", "Platelets"), "kpt_shape": [4, 3]}
    check_classes(pose, MODEL, kpt_shape=[4, 3])
    with pytest.raises(DataError) as error:
        check_classes(pose, MODEL, kpt_shape=[17, 3])
    assert str(error.value) == "the model predicts keypoints [17, 3] but the dataset has kpt_shape [4, 3]"
    with pytest.raises(DataError, match=r"^the model predicts keypoints \[4, 3\] but the dataset has no kpt_shape$"):
        check_classes(dataset("RBC", "WBC", "Platelets"), MODEL, kpt_shape=[4, 3])
