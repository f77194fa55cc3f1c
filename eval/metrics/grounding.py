"""Box grounding (Talk2Car): the answer's `[x1, y1, x2, y2]` against the referred object's box.

Talk2Car's leaderboard metric is AP50: the share of commands whose predicted box has IoU
> 0.5 with the ground truth (talk2car/Talk2Car README). We report it with the mean IoU.
An answer without four numbers is a failure: counted, and scored as IoU 0 in both (a
grounding answer that names no box grounds nothing).
"""
from __future__ import annotations

import re

from eval.metrics.captions import answers
from eval.metrics.core import missing, scorer, value

NUM = r"-?\d+(?:\.\d+)?"
BOX = re.compile(rf"\[\s*({NUM})\s*,\s*({NUM})\s*,\s*({NUM})\s*,\s*({NUM})\s*\]")


def parse_box(text: str) -> list[float] | None:
    m = BOX.search(text)
    return [float(v) for v in m.groups()] if m else None


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


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
    return {"ap50": value(100.0 * sum(i > 0.5 for i in ious) / n, n, unit="%", note=note),
            "mean_iou": value(sum(ious) / n, n, note=note),
            "parse_failures": value(failures, n, unit="samples")}
