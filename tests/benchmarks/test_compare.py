"""The comparison benchmark (benchmarks/compare.py): its smoke run end to end, its cache, its width search."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import threading
import time
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


def test_smoke_runs_every_row_with_two_seeds(smoke):
    rows, jobs = smoke["summary"]["rows"], smoke["summary"]["jobs"]
    assert set(rows) == {"baseline", "control", "best-50", "uniform-l2-50", "scratch-50", "unstructured-50", "yolo11n"}
    # Structured rows are pruned once and fine-tuned per seed; from-scratch rows run the first seed only.
    assert set(jobs) == {
        "baseline", "control-s0", "control-s1", "best-50-prune", "best-50-s0", "best-50-s1", "uniform-l2-50-prune",
        "uniform-l2-50-s0", "uniform-l2-50-s1", "scratch-50-s0", "unstructured-50-s0", "unstructured-50-s1",
        "yolo11n-s0",
    }  # fmt: skip
    for name, job in jobs.items():
        assert job["command"].startswith("yolo-prune "), name
        if not name.endswith("-prune"):
            assert 0.0 <= job["map50_95"] <= job["map50"] <= 1.0, name
    assert jobs["best-50-prune"]["command"].endswith("--epochs 0 --out " + str(smoke["out"] / "best-50-prune"))
    assert jobs["best-50-s1"]["command"].startswith(f"yolo-prune train {smoke['out'] / 'best-50-prune' / 'pruned.pt'}")
    assert "--seed 1" in jobs["best-50-s1"]["command"] and "--seed 0" in jobs["best-50-s0"]["command"]
    # A row's mAP is the mean of its seeds, each kept.
    best = rows["best-50"]
    assert best["seeds"] == {"0": jobs["best-50-s0"]["map50_95"], "1": jobs["best-50-s1"]["map50_95"]}
    assert best["map50_95"] == pytest.approx((best["seeds"]["0"] + best["seeds"]["1"]) / 2)
    assert len(rows["scratch-50"]["seeds"]) == 1 and best["commands"][0] == jobs["best-50-prune"]["command"]
    base_macs = rows["control"]["macs"]
    assert rows["best-50"]["macs"] / base_macs == pytest.approx(0.5, abs=0.03)
    assert rows["uniform-l2-50"]["macs"] / base_macs == pytest.approx(0.5, abs=0.03)
    # The width-scaled YAML lands on a multiple-of-8 channel step near the target.
    assert rows["scratch-50"]["macs"] / base_macs == pytest.approx(0.5, abs=0.1)
    # Unstructured pruning zeroes the share of parameters the structured best row removed, and keeps every MAC.
    sparsity = float(re.search(r"--unstructured (\S+)", jobs["unstructured-50-s0"]["command"]).group(1))
    assert sparsity == pytest.approx(1 - rows["best-50"]["params"] / rows["control"]["params"], abs=1e-3)
    assert rows["unstructured-50"]["macs"] == base_macs


def test_smoke_writes_table_plot_latency_and_doc(smoke):
    out = smoke["out"]
    timing = json.loads((out / "latency.json").read_text())["64"]
    assert set(timing["rows"]) == {"baseline", "control", "best-50", "uniform-l2-50", "scratch-50",
                                   "unstructured-50", "yolo11n"}  # fmt: skip
    assert "/control-s0/model.pt" in timing["command"]  # the first seed's model is timed
    assert all(entry["median_ms"] > 0 and entry["p90_ms"] >= entry["median_ms"] for entry in timing["rows"].values())
    lines = (out / "results.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 7  # header, rule, one line per row
    control = next(line for line in table if line.startswith("| control |"))
    seeds = smoke["summary"]["rows"]["control"]["seeds"]
    assert f"({seeds['0']:.4f} / {seeds['1']:.4f})" in control
    rows = smoke["summary"]["rows"]
    best = next(line for line in table if line.startswith("| best-50 |"))
    delta = f"{100 * (rows['best-50']['map50_95'] - rows['control']['map50_95']):+.1f}"
    assert f"| {delta} | {delta} |" in best  # against the control, which is also its own
    assert "(one run)" in next(line for line in table if line.startswith("| scratch-50 |"))
    assert any(line.startswith("- At 64 px, yolo11n scores") for line in lines)  # the check against --reference
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = smoke["doc"].read_text()
    assert doc.startswith("# Benchmarks\n\nWritten by hand, kept.\n")
    assert doc.count("<!-- compare.py: start -->") == 1 and "| best-50 |" in doc
    assert (smoke["doc"].parent / "compare-pareto.png").is_file()


def test_rerun_uses_cached_rows(smoke, compare):
    out = smoke["out"]
    logs = {p.name: p.stat().st_size for p in out.glob("*.log")}
    again = compare.main(smoke["argv"])
    assert {p.name: p.stat().st_size for p in out.glob("*.log")} == logs  # no job ran again
    assert again["rows"] == smoke["summary"]["rows"]
    assert again["latency"] == smoke["summary"]["latency"]  # the models did not change: not timed again
    assert json.loads((out / "latency.json").read_text())["64"]["argv"][-3:] == ["--runs", "3", "--json"]
    assert smoke["doc"].read_text().count("<!-- compare.py: start -->") == 1  # the section replaced, not appended


def test_official_checkpoints_are_pruned_at_macs_and_speed_targets(compare, tmp_path):
    argv = ["--data", "d.yaml", "--weights", "v8.pt", "--out", str(tmp_path), "--targets", "0.5,1.4x",
            "--official", "yolo11n.yaml=y11.pt", "--official-targets", "1.4x,0.5", "--seeds", "0,1", "--rows",
            "control,best,official"]  # fmt: skip
    args = compare.parse_args(argv)
    rows = {row.name: row for row in compare.build_rows(args, 3)}
    assert set(rows) == {"control", "best-50", "best-1.4x", "yolo11n", "yolo11n-best-50", "yolo11n-best-1.4x"}
    speed = rows["yolo11n-best-1.4x"]
    assert speed.reference == "yolo11n" and speed.target == "1.4x"
    assert speed.prune[:4] == ["prune", "y11.pt", "--target-speedup", "1.4"]
    jobs = compare.jobs_of(speed, args)
    assert [job.name for job in jobs] == ["yolo11n-best-1.4x-prune", "yolo11n-best-1.4x-s0", "yolo11n-best-1.4x-s1"]
    assert jobs[0].argv({})[-4:] == ["--epochs", "0", "--out", "{out}"]
    trained = jobs[2].argv({})
    assert trained[:2] == ["train", str(tmp_path / "yolo11n-best-1.4x-prune" / "pruned.pt")]
    assert trained[trained.index("--seed") + 1] == "1" and jobs[2].needs == ["yolo11n-best-1.4x-prune"]


def test_frontier_check_reports_the_shortfall(compare):
    row = lambda name, family: compare.Row(name, name, family, None, lambda r, s: [])  # noqa: E731
    rows = [row("yolo11n", "official"), row("best-50", "best"), row("best-33", "best")]
    summary = {"yolo11n": {"map50_95": 0.59}, "best-50": {"map50_95": 0.584}, "best-33": {"map50_95": 0.579}}
    timing = {384: {"yolo11n": {"median_ms": 20.0}, "best-50": {"median_ms": 15.0}, "best-33": {"median_ms": 13.0}}}
    (line,) = compare.frontier_check(rows, summary, timing, "yolo11n", 0.75)
    assert "the best is best-50: 0.5840 in 15.0 ms (75%), which falls 0.6 points short" in line
    summary["best-33"]["map50_95"] = 0.60
    assert (
        "best-33: 0.6000 in 13.0 ms (65%), which dominates it"
        in compare.frontier_check(rows, summary, timing, "yolo11n", 0.75)[0]
    )
    timing[384]["best-50"]["median_ms"] = timing[384]["best-33"]["median_ms"] = 16.0
    assert "no pruned or smaller model runs" in compare.frontier_check(rows, summary, timing, "yolo11n", 0.75)[0]


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


def test_unstructured_rows_without_the_rows_they_read_are_a_usage_error(compare, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.parse_args(["--data", "d.yaml", "--weights", "w.pt", "--rows", "control,unstructured"])
    assert exit_info.value.code == 2
    assert "take their sparsity from the best and control rows" in capsys.readouterr().err


def test_rows_measured_against_a_left_out_row_are_refused(compare, tmp_path):
    argv = ["--data", "d.yaml", "--weights", "w.pt", "--out", str(tmp_path), "--targets", "0.5",
            "--official", "yolo11n.yaml=y11.pt", "--official-targets", "1.4x", "--rows", "control,best"]  # fmt: skip
    with pytest.raises(SystemExit, match=r"--rows leaves out \['yolo11n'\], which other selected rows are measured"):
        compare.build_rows(compare.parse_args(argv), 3)
    twice = ["--data", "d.yaml", "--weights", "w.pt", "--out", str(tmp_path), "--targets", "0.5,0.50", "--rows",
             "control,best"]  # fmt: skip
    with pytest.raises(SystemExit, match=r"two rows share a name: \['best-50'\]"):
        compare.build_rows(compare.parse_args(twice), 3)


def test_prunes_that_time_the_network_run_alone_before_the_others(compare, tmp_path):
    args = compare.parse_args(["--data", "d.yaml", "--weights", "w.pt", "--out", str(tmp_path), "--targets",
                               "0.5,1.4x", "--rows", "control,best,uniform"])  # fmt: skip
    jobs = [job for row in compare.build_rows(args, 3) for job in compare.jobs_of(row, args)]
    alone = [job.name for job in jobs if job.alone]
    # a speed target's rounds and the default recipe's block probe time the network; uniform at a MACs target does not
    assert alone == ["best-50-prune", "best-1.4x-prune", "uniform-l2-1.4x-prune"]
    ran: list[str] = []
    results = compare.run_all(jobs, tmp_path, 2, lambda name, argv, out: ran.append(name) or {"argv": argv})
    assert ran[:3] == alone and set(ran) == set(results)  # one after another, before the pool starts


def test_a_job_waiting_on_another_leaves_its_worker_to_a_ready_one(compare, tmp_path):
    # scan (slow) <- fine-tune; train needs nothing. With two workers, train must start while scan runs, not after.
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def runner(name: str, argv: list[str], out: Path) -> dict:
        with lock:
            events.append(("start", name))
        time.sleep(0.3 if name == "scan" else 0.05)
        with lock:
            events.append(("end", name))
        return {"argv": argv}

    jobs = [
        compare.Job("scan", lambda r: ["scan"], []),
        compare.Job("fine-tune", lambda r: ["fine-tune", *sorted(r)], ["scan"]),
        compare.Job("train", lambda r: ["train"], []),
    ]
    results = compare.run_all(jobs, tmp_path, workers=2, runner=runner)
    assert events.index(("start", "train")) < events.index(("end", "scan"))
    assert events.index(("end", "scan")) < events.index(("start", "fine-tune"))
    assert "scan" in results["fine-tune"]["argv"]  # it was given the result it needed
    orphan = [compare.Job("fine-tune", lambda r: ["fine-tune"], ["never-run"])]
    with pytest.raises(SystemExit, match=r"jobs wait on jobs that never run: \['fine-tune'\]"):
        compare.run_all(orphan, tmp_path, workers=2, runner=runner)


def test_without_the_control_row_the_pruned_rows_are_measured_against_the_baseline(compare, tmp_path):
    """A bigger model's control is a long training: left out, the pruned rows' own reference is the baseline, whose
    MACs and parameters come from its prunes (`val` counts neither)."""
    argv = ["--data", "d.yaml", "--weights", "s.pt", "--out", str(tmp_path), "--targets", "3x", "--seeds", "0",
            "--official", "yolo11n.yaml=n.pt", "--rows", "baseline,best,official"]  # fmt: skip
    args = compare.parse_args(argv)
    rows = compare.build_rows(args, 3)
    assert {row.name: row.reference for row in rows} == {"baseline": "baseline", "best-3x": "baseline",
                                                          "yolo11n": "yolo11n"}  # fmt: skip
    jobs = {
        "baseline": {"macs": None, "params": None, "map50": 0.9, "map50_95": 0.60, "command": "val", "wall_s": 1},
        "best-3x-prune": {"macs": 1e9, "params": 2e6, "map50_95": 0.2, "base_macs": 4e9, "base_params": 9e6,
                          "command": "prune", "wall_s": 1},
        "best-3x-s0": {"macs": 1e9, "params": 2e6, "map50": 0.9, "map50_95": 0.59, "command": "train", "wall_s": 1},
        "yolo11n-s0": {"macs": 1.1e9, "params": 2.6e6, "map50": 0.9, "map50_95": 0.58, "command": "t", "wall_s": 1},
    }  # fmt: skip
    summary = compare.summarize(rows, jobs, args)
    assert (summary["baseline"]["macs"], summary["baseline"]["params"]) == (4e9, 9e6)
    timing = {384: {"baseline": {"median_ms": 30.0}, "best-3x": {"median_ms": 10.0}, "yolo11n": {"median_ms": 10.5}}}
    lines = compare.table(rows, summary, timing).splitlines()
    best = next(line for line in lines if line.startswith("| best-3x "))
    assert "1.000 (25.0%)" in best and "| -1.0 | -1.0 |" in best and "3.00x" in best
    assert compare.frontier_check(rows, summary, timing, "yolo11n", 1.0)[0].endswith(
        "the best is best-3x: 0.5900 in 10.0 ms (95%), which dominates it."
    )


def test_a_speed_target_has_a_uniform_row_at_the_same_measured_speed(compare, tmp_path):
    argv = ["--data", "d.yaml", "--weights", "n.pt", "--out", str(tmp_path), "--targets", "0.5,2x", "--seeds", "0",
            "--rows", "control,best,uniform"]  # fmt: skip
    rows = {row.name: row for row in compare.build_rows(compare.parse_args(argv), 6)}
    assert set(rows) == {"control", "best-50", "best-2x", "uniform-l2-50", "uniform-l2-2x"}
    uniform = rows["uniform-l2-2x"]
    assert uniform.prune[:4] == ["prune", "n.pt", "--target-speedup", "2"] and uniform.prune[-2:] == [
        "--allocation", "uniform"]  # fmt: skip
    without_control = argv[:-1] + ["baseline,best,uniform"]  # without a control: measured against the baseline
    rows = {row.name: row for row in compare.build_rows(compare.parse_args(without_control), 6)}
    assert rows["uniform-l2-2x"].reference == rows["uniform-l2-50"].reference == "baseline"
    prune = compare.jobs_of(uniform, compare.parse_args(argv))[0]
    assert prune.name == "uniform-l2-2x-prune" and prune.alone  # timed end to end, on a quiet machine


def test_data_free_rows_prune_without_data_and_are_opt_in(compare, tmp_path):
    base = ["--data", "d.yaml", "--weights", "n.pt", "--out", str(tmp_path), "--targets", "0.5,2x", "--seeds", "0,1",
            "--imgsz", "192"]  # fmt: skip
    assert "free" not in compare.parse_args(base).rows  # the default rows leave them out
    args = compare.parse_args([*base, "--rows", "control,best,free"])
    rows = {row.name: row for row in compare.build_rows(args, 6)}
    assert set(rows) == {"control", "best-50", "best-2x", "free-50", "free-2x"}
    assert rows["free-2x"].prune == ["prune", "n.pt", "--target-speedup", "2", "--imgsz", "192"]  # no --data
    assert rows["free-50"].prune == ["prune", "n.pt", "--target-macs", "0.5", "--imgsz", "192"]
    assert rows["best-50"].prune[4:6] == ["--data", "d.yaml"]
    jobs = compare.jobs_of(rows["free-50"], args)
    assert [job.name for job in jobs] == ["free-50-prune", "free-50-s0", "free-50-s1"]
    assert jobs[0].alone  # the latency allocation times the network: on a quiet machine
    train = jobs[2].argv({})
    assert train[:2] == ["train", str(tmp_path / "free-50-prune" / "pruned.pt")] and "--seed" in train
    assert train[train.index("--seed") + 1] == "1" and "--data" in train  # fine-tuned on the data like every row
