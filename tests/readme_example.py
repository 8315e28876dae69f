"""Run the README's Python quick start, as a user would, in the current folder: `python tests/readme_example.py`.

The block is the first ```python block after the `<!-- python-quick-start -->` marker in README.md. Its inputs are
made here: `best.pt` is the demo's shipped baseline and `data.yaml` a tiny synthetic dataset; its sizes are shrunk
(SHRINK) so that it runs in seconds on a CPU. Used by tests/app/test_readme.py and by `.ci/wheel-check`, which runs it
with the package installed from the wheel, outside the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- python-quick-start -->"
SHRINK = {"epochs=30": "epochs=1", "imgsz=640": "imgsz=64"}


def example_code(readme: Path = README) -> str:
    """The README's Python quick start, as printed."""
    text = readme.read_text()
    if MARKER not in text:
        raise SystemExit(f"{readme}: no {MARKER} marker")
    match = re.search(r"```python\n(.*?)```", text.split(MARKER, 1)[1], re.S)
    if match is None:
        raise SystemExit(f"{readme}: no python block after {MARKER}")
    return match.group(1)


def shrunk(code: str) -> str:
    for big, small in SHRINK.items():
        if big not in code:
            raise SystemExit(f"the README example no longer has '{big}': update SHRINK in {__file__}")
        code = code.replace(big, small)
    return code


def prepare_inputs(folder: Path) -> None:
    """`best.pt` and `data.yaml`, the names the example uses, in `folder`."""
    from yolo_prune.app.demo import TASKS
    from yolo_prune.data.synthetic import generate

    shutil.copyfile(TASKS["detect"].baseline, folder / "best.pt")
    data = generate(folder / "data", n_train=16, n_val=8, imgsz=64)
    shutil.copyfile(data, folder / "data.yaml")


def main() -> None:
    folder = Path.cwd()
    prepare_inputs(folder)
    namespace: dict = {}
    exec(compile(shrunk(example_code()), "README.md (python quick start)", "exec"), namespace)
    report = namespace["report"]
    weights = Path(report.files["weights"])
    if not weights.is_file() or not 0.45 <= report.after["macs_fraction"] <= 0.55:
        sys.exit(f"the example ran but its result is off: {weights}, {report.after['macs_fraction']}")


if __name__ == "__main__":
    main()
