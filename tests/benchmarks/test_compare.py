"""The comparison benchmark (benchmarks/compare.py): its smoke run end to end, its cache, its width search."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.pruning.cost import measure

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare.py"


def load_compare():
    spec = importlib.util.spec_from_file_location("compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compare():
    return load_compare()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, compare):
    root = tmp_path_factory.mktemp("compare")
    doc = root / "doc.md"
    doc.write_text("# Benchmarks\n\nWritten by hand, kept.\n")
    argv = ["--smoke", "--out", str(root / "out"), "--doc", str(doc)]
    summary = compare.main(argv)
    return {"root": root, "out": root / "out", "doc": doc, "summary": summary, "argv": argv}


def test_smoke_runs_every_row(smoke):
    rows = smoke["summary"]["rows"]
    expected = {"baseline", "control", "sensitivity", "best-50", "uniform-l2-50", "scratch-50", "unstructured-50"}
    assert expected | {"yolo11n"} == set(rows)
    for name in expected - {"sensitivity"} | {"yolo11n"}:
        assert 0.0 <= rows[name]["map50_95"] <= rows[name]["map50"] <= 1.0, name
        assert rows[name]["command"].startswith("yolo-prune ")
    base_macs = rows["control"]["macs"]
    assert rows["best-50"]["macs"] / base_macs == pytest.approx(0.5, abs=0.03)
    assert rows["uniform-l2-50"]["macs"] / base_macs == pytest.approx(0.5, abs=0.03)
    # The width-scaled YAML lands on a multiple-of-8 channel step near the target.
    assert rows["scratch-50"]["macs"] / base_macs == pytest.approx(0.5, abs=0.1)
    # Unstructured pruning zeroes the share of parameters the structured best row removed, and keeps every MAC.
    sparsity = float(re.search(r"--unstructured (\S+)", rows["unstructured-50"]["command"]).group(1))
    assert sparsity == pytest.approx(1 - rows["best-50"]["params"] / rows["control"]["params"], abs=1e-3)
    assert rows["unstructured-50"]["macs"] == base_macs


def test_smoke_writes_table_plot_latency_and_doc(smoke):
    out = smoke["out"]
    timing = json.loads((out / "latency.json").read_text())
    assert set(timing["rows"]) == {"baseline", "control", "best-50", "uniform-l2-50", "scratch-50",
                                   "unstructured-50", "yolo11n"}  # fmt: skip
    assert all(entry["median_ms"] > 0 and entry["p90_ms"] >= entry["median_ms"] for entry in timing["rows"].values())
    table = (out / "results.md").read_text().splitlines()
    assert len(table) == 2 + 7  # header, rule, one line per row (the sensitivity scan has no mAP)
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = smoke["doc"].read_text()
    assert doc.startswith("# Benchmarks\n\nWritten by hand, kept.\n")
    assert doc.count("<!-- compare.py: start -->") == 1 and "| best-50 |" in doc
    assert (smoke["doc"].parent / "compare-pareto.png").is_file()


def test_rerun_uses_cached_rows(smoke, compare):
    out = smoke["out"]
    logs = {p.name: p.stat().st_size for p in out.glob("*.log")}
    again = compare.main(smoke["argv"])
    assert {p.name: p.stat().st_size for p in out.glob("*.log")} == logs  # no row ran again
    assert again["rows"] == smoke["summary"]["rows"]
    assert smoke["doc"].read_text().count("<!-- compare.py: start -->") == 1  # the section replaced, not appended


def test_scaled_yaml_matches_the_macs_target(compare, tmp_path):
    path, achieved = compare.scaled_yaml("yolov8n.yaml", 0.33, 128, 3, tmp_path)
    assert achieved == pytest.approx(0.33, abs=0.03)
    original = measure(DetectionModel("yolov8n.yaml", nc=3, verbose=False), 128).macs
    rebuilt = measure(DetectionModel(str(path), nc=3, verbose=False), 128).macs
    assert rebuilt / original == pytest.approx(achieved, rel=1e-9)


def test_update_doc_appends_then_replaces(compare, tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n")
    compare.update_doc(doc, "first")
    compare.update_doc(doc, "second")
    text = doc.read_text()
    assert text.startswith("intro\n") and "second" in text and "first" not in text


def test_missing_inputs_are_a_usage_error(compare, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "--data and --weights are required (or --smoke)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written
