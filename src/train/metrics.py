"""Classification metrics, a JSONL metrics log and a PNG of the training curves (drawn with OpenCV)."""
import json
import os

import cv2
import numpy as np

from ..errors import DataError
from ..files import atomic_path, atomic_write


def evaluate(net, dataset, num_classes):
    """Top-1/top-5 and per-class accuracy over ``dataset`` of ``net``: a Cell in eval mode or any callable
    ``images -> logits``."""
    correct1 = correct5 = total = 0
    per_class_total = np.zeros(num_classes, np.int64)
    per_class_correct = np.zeros(num_classes, np.int64)
    for image, label in dataset.create_tuple_iterator(num_epochs=1):
        logits = net(image)
        logits = logits.asnumpy() if hasattr(logits, "asnumpy") else np.asarray(logits)
        label = label.asnumpy()
        top5 = np.argsort(-logits, axis=1)[:, :5]
        hit1 = top5[:, 0] == label
        correct1 += int(hit1.sum())
        correct5 += int((top5 == label[:, None]).any(axis=1).sum())
        total += len(label)
        np.add.at(per_class_total, label, 1)
        np.add.at(per_class_correct, label, hit1.astype(np.int64))
    if total == 0:
        raise DataError("the evaluation dataset is empty")
    per_class = np.where(per_class_total > 0, per_class_correct / np.maximum(per_class_total, 1), np.nan)
    return {"top1": correct1 / total, "top5": correct5 / total, "count": total, "per_class": per_class.tolist()}


class MetricsLog:
    """Appends one JSON object per line to ``path`` (survives interruptions, easy to load)."""

    def __init__(self, path):
        self.path = path

    def append(self, record):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def truncate(self, epochs):
        """Keep only the records of the first ``epochs`` epochs (a resumed run continues after them)."""
        kept = [r for r in self.read() if r.get("epoch", 0) <= epochs]
        if not kept:
            if os.path.exists(self.path):
                os.remove(self.path)
            return
        with atomic_write(self.path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)

    def read(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 80, 20, 30, 48  # margins of each panel's plot box, px
FONT, BLACK, GREY = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (225, 225, 225)


def _text(canvas, text, x, y, align="left", scale=0.4):
    """``text`` with its baseline at ``y``, starting at ``x`` (``align="right"``: ending; ``"center"``: centred)."""
    width = cv2.getTextSize(text, FONT, scale, 1)[0][0]
    x -= {"left": 0, "right": width, "center": width // 2}[align]
    cv2.putText(canvas, text, (int(x), int(y)), FONT, scale, BLACK, 1, cv2.LINE_AA)


def _vertical_text(canvas, text, x, y_center, scale=0.45):
    """``text`` turned 90 degrees (read bottom to top), its left edge at ``x``, centred on ``y_center``."""
    (width, height), base = cv2.getTextSize(text, FONT, scale, 1)
    patch = np.full((height + base + 4, width + 4, 3), 255, np.uint8)
    cv2.putText(patch, text, (2, height + 2), FONT, scale, BLACK, 1, cv2.LINE_AA)
    patch = cv2.rotate(patch, cv2.ROTATE_90_COUNTERCLOCKWISE)
    y = int(y_center) - patch.shape[0] // 2
    region = canvas[y:y + patch.shape[0], x:x + patch.shape[1]]
    np.minimum(region, patch[:region.shape[0], :region.shape[1]], out=region)


def _ticks(lo, hi):
    """About 5 evenly spaced round values in [lo, hi] (a step of 1, 2 or 5 times a power of ten), with labels."""
    power = 10 ** np.floor(np.log10((hi - lo) / 4))
    steps = [m * power for m in (10, 5, 2, 1, 0.5)]
    step = min(steps, key=lambda s: abs(np.floor(hi / s) - np.ceil(lo / s) + 1 - 5))
    digits = max(0, -int(np.floor(np.log10(step))))
    values = np.arange(np.ceil(lo / step), np.floor(hi / step) + 1) * step
    return [(v, f"{v:.{digits}f}") for v in values]


def plot_curves(records, path, width=900, height=360):
    """Training loss and validation top-1 per epoch side by side, each with labelled axes and numeric ticks
    (OpenCV, no plotting library); written atomically."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    panels = [("train loss", "loss", [(r["epoch"], r["train_loss"]) for r in records if "train_loss" in r],
               (200, 80, 0)),
              ("val top-1", "top-1", [(r["epoch"], r["val_top1"]) for r in records if r.get("val_top1") is not None],
               (0, 140, 0))]
    pw = width // 2
    for i, (title, ylabel, points, color) in enumerate(panels):
        x0, y0, x1, y1 = i * pw + PLOT_LEFT, PLOT_TOP, (i + 1) * pw - PLOT_RIGHT, height - PLOT_BOTTOM
        _text(canvas, title, x0, y0 - 10, scale=0.5)
        _text(canvas, "epoch", (x0 + x1) / 2, height - 8, "center", 0.45)
        _vertical_text(canvas, ylabel, i * pw + 4, (y0 + y1) / 2)
        if points:
            xs, ys = np.array(points, np.float64).T
            pad = max(float(np.ptp(ys)) * 0.08, 1e-3)
            lo, hi = float(ys.min()) - pad, float(ys.max()) + pad
            ex_lo, ex_hi = min(1.0, float(xs.min())), max(float(xs.max()), 2.0)

            def px(x, y):
                return (int(round(x0 + (x - ex_lo) / (ex_hi - ex_lo) * (x1 - x0))),
                        int(round(y1 - (y - lo) / (hi - lo) * (y1 - y0))))
            for value, label in _ticks(lo, hi):
                y = px(ex_lo, value)[1]
                cv2.line(canvas, (x0, y), (x1, y), GREY, 1)
                cv2.line(canvas, (x0 - 4, y), (x0, y), BLACK, 1)
                _text(canvas, label, x0 - 7, y + 4, "right")
            step = max(1, int(np.ceil((ex_hi - ex_lo) / 6)))
            for epoch in range(int(ex_lo), int(ex_hi) + 1, step):  # x ticks: whole epochs, at most 7
                x = px(epoch, lo)[0]
                cv2.line(canvas, (x, y1), (x, y1 + 4), BLACK, 1)
                _text(canvas, str(epoch), x, y1 + 18, "center")
            pts = [px(x, y) for x, y in points]
            for a, b in zip(pts, pts[1:]):
                cv2.line(canvas, a, b, color, 2, cv2.LINE_AA)
            for p in pts:
                cv2.circle(canvas, p, 3, color, -1)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), BLACK, 1)
    with atomic_path(path) as tmp:
        cv2.imwrite(tmp, canvas)
    return path
