"""A fresh prune run that fails leaves no folder behind, so the same command can run again."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.app import prune_run
from yolo_prune.errors import ConfigError, TargetUnreachableError
from yolo_prune.pruning import speed
from yolo_prune.pruning.checkpoint import save_checkpoint
from yolo_prune.pruning.config import PruneConfig


@pytest.fixture(autouse=True)
def _seeded():
    """Each test builds random-init models from YAMLs: seeded, so none depends on what ran before it on its worker
    (the speed-round test once stopped at 1.558x for 1.6x in the full suite, and passed alone)."""
    torch.manual_seed(0)


@pytest.fixture
def two_class_weights(tmp_path):
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    model.names = {0: "box", 1: "disc"}  # the tiny dataset's classes
    return str(save_checkpoint(model, tmp_path / "v8n-2.pt"))


def test_a_run_that_fails_in_a_library_leaves_no_folder_and_the_rerun_works(
    tmp_path, tiny_data, two_class_weights, monkeypatch
):
    out = tmp_path / "run"
    config = PruneConfig(target_macs=0.5, imgsz=64, data=str(tiny_data))
    real = speed.prune

    def broken(*args, **kwargs):
        raise IndexError("index 256 is out of bounds for dimension 0 with size 128")  # as torch-pruning fails

    monkeypatch.setattr(speed, "prune", broken)
    with pytest.raises(IndexError):
        prune_run.run_prune(two_class_weights, config, out)
    assert not out.exists()

    monkeypatch.setattr(speed, "prune", real)
    report = prune_run.run_prune(two_class_weights, config, out)
    assert report.after["macs_fraction"] == pytest.approx(0.5, abs=0.03)
    listing = ["map_vs_macs.png", "pruned.pt", "report.json", "sensitivity.json", "sensitivity.png", "state.json"]
    listing += ["step1", "widths.png"]  # the table of the default allocation, sensitivity, is kept in the run
    assert sorted(p.name for p in out.iterdir()) == listing


def test_an_interrupted_run_keeps_what_resume_continues_from(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = speed.prune

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(speed, "prune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prune_run.run_prune("yolov8n.yaml", PruneConfig(ratio=0.3, imgsz=64), out)
    assert (out / "state.json").is_file()  # the CLI tells the user to --resume this folder
    monkeypatch.setattr(speed, "prune", real)
    report = prune_run.resume_run(out)
    assert report.after["macs"] < report.before["macs"] and (out / "pruned.pt").is_file()


def test_an_out_that_is_a_file_is_one_line_and_writes_nothing(tmp_path):
    from yolo_prune.errors import ConfigError

    existing = tmp_path / "notes.pt"
    existing.write_bytes(b"not a folder")
    with pytest.raises(ConfigError, match=f"^--out {existing}: {existing} is a file, not a folder$"):
        prune_run.run_prune("yolov8n.yaml", PruneConfig(ratio=0.3, imgsz=64), existing)
    assert existing.read_bytes() == b"not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.pt"]


def test_the_scanning_default_checks_the_train_split_before_anything(tmp_path, tiny_data, two_class_weights):
    from yolo_prune.errors import DataError

    val_only = tmp_path / "val-only.yaml"
    val_only.write_text(tiny_data.read_text().replace("train: images/train", "train: images/missing"))
    with pytest.raises(DataError, match="the 'train' split's images are not there"):
        prune_run.run_prune(
            two_class_weights, PruneConfig(target_macs=0.5, imgsz=64, data=str(val_only)), tmp_path / "r"
        )
    assert not (tmp_path / "r").exists()


def test_with_data_the_default_is_sensitivity_and_its_scan_is_reused(
    tmp_path, tiny_data, two_class_weights, monkeypatch
):
    from yolo_prune.pruning.allocation import DEFAULT_WITH_DATA

    scans = []
    real_scan = prune_run.scan
    monkeypatch.setattr(prune_run, "scan", lambda *a, **k: scans.append(1) or real_scan(*a, **k))
    monkeypatch.setenv("YOLO_PRUNE_CACHE", str(tmp_path / "cache"))
    from yolo_prune.pruning.allocation import default_allocation

    assert DEFAULT_WITH_DATA == "sensitivity"
    assert default_allocation(has_data=False, has_ratio=False) == "latency"  # no data: widths the runtime likes
    assert default_allocation(has_data=True, has_ratio=True) == "uniform"  # --ratio is a channel ratio
    config = PruneConfig(target_macs=0.5, imgsz=64, data=str(tiny_data))
    assert config.allocation is None  # the run picks it

    from conftest import PaddedTimer

    # modelled timers: the block probe picks the same block in both runs (real timings at 64 px may not)
    first = prune_run.run_prune(
        two_class_weights, config, tmp_path / "a", timers=ModelledTimers(PaddedTimer(16)).timers
    )
    second = prune_run.run_prune(
        two_class_weights,
        PruneConfig(target_macs=0.5, imgsz=64, data=str(tiny_data)),
        tmp_path / "b",
        timers=ModelledTimers(PaddedTimer(16)).timers,
    )
    assert len(scans) == 1  # the second run found the first one's scan
    assert len(list((tmp_path / "cache" / "sensitivity").glob("*.json"))) == 1
    assert first.prune["allocation"] == second.prune["allocation"] == "sensitivity"
    assert first.config["allocation"] == "sensitivity"  # recorded, so a resume prunes the same way
    assert first.prune["group_ratios"] == second.prune["group_ratios"]
    assert first.prune["block"] == first.prune["block_probe"]["chosen"]  # in the runtime's blocks
    assert (tmp_path / "b" / "sensitivity.json").is_file()  # each run folder still holds the table it used


class ModelledTimers:
    """Stands in for a runtime's timers: the latency model times convs with `layers`, and the end-to-end check times
    each model as `runtime`'s prediction, the pruned ones times `error` (the latency model's systematic error that
    correction rounds remove), all plus `overhead` times the original's (fixed costs that no pruning removes, which
    cap the speedup below 1 + 1 / overhead)."""

    def __init__(self, layers, imgsz: int = 64, error: float = 1.0, overhead: float = 0.0, runtime=None):
        self.layers, self.runtime = layers, runtime or layers
        self.imgsz, self.error, self.overhead, self.calls = imgsz, error, overhead, 0

    @contextlib.contextmanager
    def against(self, original):
        from types import SimpleNamespace

        from yolo_prune.pruning.latency import predict_ms

        def time_them(models):
            self.calls += 1
            ms = [predict_ms(m, self.imgsz, self.runtime) for m in (original, *models)]
            ms[1:] = [m * self.error for m in ms[1:]]
            ms = [m + self.overhead * ms[0] for m in ms]
            return [SimpleNamespace(median_ms=m, speedup=ms[0] / m) for m in ms]

        yield time_them

    @property
    def timers(self) -> speed.Timers:
        return speed.Timers(self.layers, self.against)


def test_a_speedup_target_is_corrected_by_what_is_measured(tmp_path):
    from conftest import PaddedTimer

    fake = ModelledTimers(PaddedTimer(16), error=1.15)  # the pruned model runs 15% slower than the model predicts
    config = PruneConfig(target_speedup=1.6, imgsz=64)
    report = prune_run.run_prune("yolov8n.yaml", config, tmp_path / "run", timers=fake.timers)
    speedup = report.prune["speedup"]
    assert speedup["measured"] == pytest.approx(1.6, rel=speed.SPEEDUP_AIM)
    assert len(speedup["rounds"]) >= 2 and fake.calls == len(speedup["rounds"])
    first = speedup["rounds"][0]
    assert first["aimed"] == 1.6 and first["measured"] == pytest.approx(1.6 / 1.15, rel=0.05)
    assert speedup["rounds"][1]["aimed"] > 1.6  # aimed higher to make up for the model's optimism
    assert report.prune["allocation"] == "latency"


def test_a_macs_target_keeps_the_channel_block_that_measures_fastest(tmp_path):
    from conftest import PaddedTimer

    # the latency model learns blocks of 16, but the runtime pads to 32: widths of 48 cost as much as 64
    fake = ModelledTimers(PaddedTimer(16), runtime=PaddedTimer(32))
    config = PruneConfig(target_macs=0.5, imgsz=64)
    report = prune_run.run_prune("yolov8n.yaml", config, tmp_path / "run", timers=fake.timers)
    probe = report.prune["block_probe"]
    assert [b["block"] for b in probe["blocks"]] == [16, 32] and fake.calls == 1  # timed together, once
    sixteen, thirty_two = probe["blocks"]
    assert thirty_two["measured"] * thirty_two["macs_fraction"] > sixteen["measured"] * sixteen["macs_fraction"]
    assert probe["chosen"] == report.prune["block"] == 32
    assert report.prune["block_from"] == "measured end to end"
    layers = report.prune["layers"].values()
    assert all(c["after"] % 32 == 0 for c in layers if c["after"] != c["before"])
    assert sum(c["after"] != c["before"] for c in layers) > 10
    assert report.prune["macs_fraction"] == pytest.approx(0.5, abs=0.03)


def test_round_to_fixes_the_block_and_measures_nothing(tmp_path):
    from conftest import PaddedTimer

    fake = ModelledTimers(PaddedTimer(16))
    config = PruneConfig(target_macs=0.5, imgsz=64, round_to=16)
    report = prune_run.run_prune("yolov8n.yaml", config, tmp_path / "a", timers=fake.timers)
    assert fake.calls == 0 and "block_probe" not in report.prune
    assert (report.prune["block"], report.prune["block_from"]) == (16, "round_to")


def test_a_torch_runtime_times_its_own_convs_and_checkpoints_at_the_prune_batch(tmp_path):
    from yolo_prune.deploy.runtimes.torch_runtime import TorchTimer

    config = PruneConfig(target_speedup=1.4, imgsz=64, runtime="torch-cpu", threads=1, latency_batch=4)
    timers = prune_run.runtime_timers(config)
    assert isinstance(timers.layers, TorchTimer)  # the latency model times its convs on the same runtime and batch
    assert (timers.layers.runtime, timers.layers.threads, timers.layers.batch) == ("torch-cpu", 1, 4)
    model = DetectionModel("yolov8n.yaml", verbose=False)
    with timers.against(model) as timer:
        assert timer.original.suffix == ".pt"  # a checkpoint, not an export
        assert timer.args == {"imgsz": 64, "runtime": "torch-cpu", "threads": 1, "batch": 4, "runs": 100, "warmup": 10}
        original, again = timer([model])
    assert original.speedup == 1.0 and again.precision == "fp32" and again.file_bytes is None
    from yolo_prune.app.render import _timed_on

    assert _timed_on("torch-cpu") == "checkpoints" and _timed_on("onnxruntime-cpu") == "exported ONNX"


def test_an_unreachable_speed_target_on_a_gpu_names_the_launch_cost():
    from yolo_prune.deploy.runtimes import RUNTIMES

    hint = RUNTIMES["torch-cuda-fp16"].unreachable_hint(32)
    assert hint.startswith("; on a GPU at batch 32 a small conv's time is mostly its launch, which pruning keeps")
    assert "--latency-batch" in hint
    assert RUNTIMES["torch-cpu"].unreachable_hint(32) == "" and RUNTIMES["onnxruntime-cpu"].unreachable_hint(1) == ""


def test_a_runtime_this_machine_cannot_time_on_fails_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="unknown --runtime 'tensorrt'; choose one of: onnxruntime-cpu, mnn-cpu, "):
        prune_run.run_prune("yolov8n.yaml", PruneConfig(target_speedup=1.5, runtime="tensorrt"), tmp_path / "a")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--runtime torch-cuda-fp16 needs a CUDA GPU"):
            prune_run.run_prune(
                "yolov8n.yaml", PruneConfig(target_speedup=1.5, runtime="torch-cuda-fp16"), tmp_path / "b"
            )
    with pytest.raises(ConfigError, match="^onnxruntime-cpu times the exported graph at batch 1; --latency-batch 8 "):
        prune_run.run_prune("yolov8n.yaml", PruneConfig(target_speedup=1.5, latency_batch=8), tmp_path / "c")
    with pytest.raises(ConfigError, match="^--latency-batch must be at least 1, got 0"):
        prune_run.run_prune("yolov8n.yaml", PruneConfig(target_speedup=1.5, latency_batch=0), tmp_path / "d")
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_a_speedup_the_runtime_never_reaches_is_one_error_and_no_folder(tmp_path):
    from conftest import PaddedTimer

    fake = ModelledTimers(PaddedTimer(16), overhead=1.0)  # fixed costs: under 2x
    out = tmp_path / "run"
    with pytest.raises(TargetUnreachableError, match=r"could not reach 2.50x on onnxruntime-cpu: the clos"):
        prune_run.run_prune("yolov8n.yaml", PruneConfig(target_speedup=2.5, imgsz=64), out, timers=fake.timers)
    assert not out.exists()


def test_with_data_a_speed_target_takes_the_sensitivity_allocation_in_the_runtimes_blocks(
    tmp_path, tiny_data, two_class_weights, monkeypatch
):
    from conftest import PaddedTimer

    monkeypatch.setenv("YOLO_PRUNE_CACHE", str(tmp_path / "cache"))
    config = PruneConfig(target_speedup=1.3, imgsz=64, data=str(tiny_data))
    timers = ModelledTimers(PaddedTimer(16)).timers
    report = prune_run.run_prune(two_class_weights, config, tmp_path / "a", timers=timers)
    assert report.config["allocation"] == report.prune["allocation"] == "sensitivity"
    assert report.prune["block"] == report.prune["block_probe"]["chosen"]
    assert report.prune["block"] in {b["block"] for b in report.prune["block_probe"]["blocks"]}
    assert report.prune["speedup"]["measured"] == pytest.approx(1.3, rel=speed.SPEEDUP_TOLERANCE)
    # Free widths (--round-to 1) that miss the target are told which widths follow the latency model.
    capped = ModelledTimers(PaddedTimer(16), overhead=1.0).timers
    with pytest.raises(TargetUnreachableError, match="widths in the runtime's channel blocks .* follow the latency"):
        prune_run.run_prune(
            two_class_weights, replace(config, target_speedup=1.8, round_to=1), tmp_path / "b", timers=capped
        )
    assert not (tmp_path / "b").exists()


def test_a_latency_target_becomes_the_speedup_that_reaches_it(tmp_path):
    from conftest import PaddedTimer

    from yolo_prune.pruning.latency import predict_ms
    from yolo_prune.pruning.load import load_model

    fake = ModelledTimers(PaddedTimer(16))
    original_ms = predict_ms(load_model("yolov8n.yaml"), 64, fake.layers)
    config = PruneConfig(target_latency=original_ms / 1.5, imgsz=64)
    report = prune_run.run_prune("yolov8n.yaml", config, tmp_path / "run", timers=fake.timers)
    result = report.prune["speedup"]
    assert result["target"] == pytest.approx(1.5)
    assert result["pruned_ms"] == pytest.approx(original_ms / 1.5, rel=speed.SPEEDUP_AIM)
