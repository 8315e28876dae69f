"""`import yolo_prune` is cheap: no torch, Ultralytics, matplotlib or onnxruntime until a stage is used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "ultralytics", "matplotlib", "onnxruntime", "torch_pruning", "cv2")


def loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}


def test_importing_the_package_loads_no_heavy_library():
    assert loaded_after("import yolo_prune").isdisjoint(HEAVY)


def test_listing_criteria_allocations_and_formats_stays_light():
    code = (
        "from yolo_prune.pruning import allocation, importance\nfrom yolo_prune.deploy import formats\n"
        "print(importance.names(), allocation.names(), list(formats.FORMATS))"
    )
    assert loaded_after(code).isdisjoint(HEAVY)


def test_using_a_stage_loads_it_but_not_plotting_or_the_trainer():
    loaded = loaded_after("import yolo_prune\nyolo_prune.prune")
    assert "torch_pruning" in loaded  # the probe sees real imports
    assert loaded.isdisjoint({"matplotlib", "onnxruntime"})
    modules = subprocess.run(
        [sys.executable, "-c", "import sys, yolo_prune; yolo_prune.prune; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "ultralytics.models.yolo.detect.train" not in modules
