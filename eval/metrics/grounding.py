"""Box grounding (Talk2Car): the answer's `[x1, y1, x2, y2]` against the referred object's box.

Talk2Car's leaderboard metric is AP50: the share of commands whose predicted box has IoU
> 0.5 with the ground truth (talk2car/Talk2Car eval.py `evaluate`, `jaccard`). As eval.py:
IoU = intersection / max(union, 1e-7), areas as (x1 - x0)(y1 - y0) unclipped (a degenerate or
inverted box has no intersection, so IoU 0); AP50..95 is the mean of AP at IoU > 0.5, 0.55,
..., 0.95; mean IoU beside it. An answer without four numbers is a failure: counted, and
scored as IoU 0 (a grounding answer that names no box grounds nothing; eval.py would crash).
"""
from __future__ import annotations

import re

import numpy as np

from eval.metrics.captions import answers
from eval.metrics.core import missing, scorer, value

NUM = r"-?\d+(?:\.\d+)?"
BOX = re.compile(rf"\[\s*({NUM})\s*,\s*({NUM})\s*,\s*({NUM})\s*,\s*({NUM})\s*\]")


def parse_box(text: str) -> list[float] | None:
    m = BOX.search(text)
    return [float(v) for v in m.groups()] if m else None


def iou(a: list[float], b: list[float]) -> float:
    """eval.py's jaccard for one pair of [x0, y0, x1, y1] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-7)


THRESHOLDS = np.arange(0.5, 1.0, 0.05).tolist()   # eval.py's floats (0.6000000000000001, ...)


@scorer("grounding")
def score_grounding(rows: list[dict], ctx) -> dict:
    ious, failures = [], 0
    for row in rows:
        gt = parse_box(row["references"][0][0])
        if gt is None:
            continue
        pred = parse_box(answers(row)[0])
        failures += pred is None
        ious.append(iou(pred, gt) if pred is not None else 0.0)
    if not ious:
        return {"ap50": missing("no sample with a reference box")}
    n = len(ious)
    note = f"{failures} answers without a box scored as IoU 0"
    aps = [100.0 * sum(i > t for i in ious) / n for t in THRESHOLDS]
    return {"ap50": value(aps[0], n, unit="%", note=note),
            "ap50_95": value(sum(aps) / len(aps), n, unit="%", note=note),
            "mean_iou": value(sum(ious) / n, n, note=note),
            "parse_failures": value(failures, n, unit="samples")}
