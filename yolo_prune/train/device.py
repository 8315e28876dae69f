"""The device to train or validate on, checked against this machine before anything is loaded."""

from __future__ import annotations

from yolo_prune.errors import ConfigError


def check_device(device: str | int | None) -> None:
    """A device (when given) in a form Ultralytics takes, `cpu`, `mps`, a CUDA GPU index (`0`) or several for DDP
    (`0,1`), that this machine has. A GPU that is not there is one line here instead of Ultralytics' traceback once
    training or validation starts."""
    if device is None:
        return
    text = str(device).strip().lower().replace(" ", "")
    if text == "cpu":
        return
    import torch

    if text == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"--device {device}: no Apple GPU (MPS) on this machine")
        return
    indices = text.removeprefix("cuda:").split(",")
    if not all(i.isdigit() for i in indices):
        raise ConfigError(f"--device must be cpu, mps, a GPU index (0) or several (0,1), got '{device}'")
    count = torch.cuda.device_count()
    missing = [i for i in indices if int(i) >= count]
    if missing:
        have = f" {missing[0]} (it has {count}: {','.join(map(str, range(count)))})" if count else ""
        raise ConfigError(f"--device {device}: no CUDA GPU{have} on this machine")
