"""PNG figures for run folders.

Figures are matplotlib `Figure` objects drawn straight to PNG (the Agg canvas that `savefig` picks for the format):
no pyplot, so nothing here switches the plotting backend of a notebook or script that uses yolo_prune, and no window
is ever opened.
"""

from __future__ import annotations

from pathlib import Path

from yolo_prune.atomic import atomic_path


def _figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def map_vs_macs(points: list[dict], path: str | Path, title: str = "") -> Path:
    """mAP50-95 against the MACs fraction, one point per pruning step (plus the unpruned start), in order."""
    fig = _figure((5.5, 4))
    ax = fig.subplots()
    xs = [100 * p["macs_fraction"] for p in points]
    ys = [p["map50_95"] for p in points]
    ax.plot(xs, ys, "o-", color="tab:blue")
    for p, x, y in zip(points, xs, ys):
        ax.annotate(p["label"], (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xlabel("MACs (% of the original)")
    ax.set_ylabel("mAP50-95")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.set_title(title or "accuracy along the pruning schedule")
    return _save(fig, path)


def layer_widths(before: list[dict], after: list[dict], path: str | Path, title: str = "") -> Path:
    """Output channels of every layer before and after pruning, side by side."""
    rows = [(b, a) for b, a in zip(before, after) if b["out_channels"] is not None]
    fig = _figure((max(6, 0.35 * len(rows)), 4))
    ax = fig.subplots()
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [b["out_channels"] for b, _ in rows], width=0.4, label="before", color="0.7")
    ax.bar([x + 0.2 for x in xs], [a["out_channels"] for _, a in rows], width=0.4, label="after", color="tab:blue")
    ax.set_xticks(list(xs), [f"{b['index']} {b['type']}" for b, _ in rows], rotation=70, fontsize=7)
    ax.set_ylabel("output channels")
    ax.legend()
    ax.set_title(title or "channels per layer")
    return _save(fig, path)


def sensitivity_heatmap(table: dict, path: str | Path, top: int = 60) -> Path:
    """Heat map of the drop per group (rows, in network order) and ratio (columns)."""
    import numpy as np

    groups = table["groups"][:top]
    ratios = table["ratios"]
    values = np.array([[g["drop"][str(r)] for r in ratios] for g in groups])
    fig = _figure((4 + 0.6 * len(ratios), max(4, 0.18 * len(groups))))
    ax = fig.subplots()
    image = ax.imshow(values, aspect="auto", cmap="magma_r")
    ax.set_xticks(range(len(ratios)), [f"{r:g}" for r in ratios])
    ax.set_yticks(range(len(groups)), [g["group"].removesuffix(".conv") for g in groups], fontsize=6)
    ax.set_xlabel("share of the group's channels removed")
    fig.colorbar(image, ax=ax, label="drop (" + ("mAP" if table.get("higher_is_better") else "loss increase") + ")")
    ax.set_title("sensitivity per dependency group")
    return _save(fig, path)


def predictions_side_by_side(
    original: str | Path,
    pruned: str | Path,
    data: str | Path,
    path: str | Path,
    *,
    imgsz: int = 640,
    count: int = 4,
    conf: float = 0.25,
) -> Path:
    """A few validation images with the boxes each model predicts: original on the left, pruned on the right.

    Boxes are drawn with OpenCV rather than Ultralytics' annotator, which fetches a font on first use.
    """
    import cv2
    from ultralytics import YOLO
    from ultralytics.data.utils import check_det_dataset

    val = Path(check_det_dataset(str(data), autodownload=False)["val"])
    images = sorted(p for p in val.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    from matplotlib import colormaps

    fig = _figure((6, 3 * len(images)))
    axes = fig.subplots(len(images), 2, squeeze=False)
    palette = colormaps["tab10"]
    for col, (title, weights) in enumerate((("original", original), ("pruned", pruned))):
        model = YOLO(str(weights))
        for row, image in enumerate(images):
            result = model.predict(str(image), imgsz=imgsz, conf=conf, verbose=False)[0]
            canvas = cv2.cvtColor(result.orig_img, cv2.COLOR_BGR2RGB)
            boxes = result.boxes if result.boxes is not None else result.obb  # OBB models: the rotated boxes' extents
            for xyxy, cls in zip(boxes.xyxy.tolist(), boxes.cls.tolist()):
                color = tuple(int(255 * c) for c in palette(int(cls) % 10)[:3])
                x1, y1, x2, y2 = (int(v) for v in xyxy)
                cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)
                cv2.putText(canvas, result.names[int(cls)][:3], (x1, max(y1 - 2, 8)), 0, 0.3, color, 1)
            ax = axes[row][col]
            ax.imshow(canvas)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title)
    return _save(fig, path)
