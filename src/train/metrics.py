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


def plot_curves(records, path, width=900, height=360):
    """Draw training loss and validation top-1 per epoch side by side; written atomically."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    panels = [("train loss", [(r["epoch"], r["train_loss"]) for r in records if "train_loss" in r], (200, 80, 0)),
              ("val top-1", [(r["epoch"], r["val_top1"]) for r in records if r.get("val_top1") is not None],
               (0, 140, 0))]
    pw = width // 2
    for i, (title, points, color) in enumerate(panels):
        x0, y0, x1, y1 = i * pw + 50, 30, (i + 1) * pw - 20, height - 40
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (0, 0, 0), 1)
        cv2.putText(canvas, title, (x0, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        if not points:
            continue
        xs, ys = np.array(points, np.float64).T
        lo, hi = float(ys.min()), float(ys.max())
        hi = hi if hi > lo else lo + 1e-6
        xmax = max(float(xs.max()), 1.0)
        pts = [(int(x0 + (x / xmax) * (x1 - x0)), int(y1 - (y - lo) / (hi - lo) * (y1 - y0))) for x, y in points]
        for a, b in zip(pts, pts[1:]):
            cv2.line(canvas, a, b, color, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(canvas, p, 3, color, -1)
        for value, y in ((hi, y0 + 12), (lo, y1 - 4)):
            cv2.putText(canvas, f"{value:.3f}", (x0 - 48, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(canvas, f"epoch {int(xmax)}", (x1 - 60, y1 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    with atomic_path(path) as tmp:
        cv2.imwrite(tmp, canvas)
    return path
