"""NuInstruct: per-subtask metrics (xmed-lab/NuInstruct ships no evaluation script).

The metric of each subtask follows the paper as a third-party evaluator lists it
(reference datasets.md section 10; [secondary]): MAE for distance, speed, instance count
and motion (the mean absolute difference of the numbers; for motion the Euclidean distance
of the (x, y) point); accuracy for closest, status and same-road questions (the answer's
words against the reference's, case-insensitive); BLEU-4 (coco-caption) for reasoning; and
for the risk subtasks, whose answers list objects `<class>[cN, x1, y1, x2, y2]`, an F1 over
(class, camera) pairs (the paper reports mAP, which needs confidences free text does not
give). An answer without the needed number is a counted failure; its MAE is left out.
"""
from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from eval.metrics.captions import answers
from eval.metrics.core import missing, scorer, value
from eval.metrics.text import text_entries

NUM = re.compile(r"-?\d+(?:\.\d+)?")
OBJECT = re.compile(r"([A-Za-z_ ]+?)\s*\[\s*(c\d+|CAM_[A-Z_]+)", re.I)
KIND = {"distance": "mae", "speed": "mae", "instance_count": "mae", "motion_ego": "point", "motion_other": "point",
        "closest": "accuracy", "status": "accuracy", "in_the_same_road": "accuracy", "status_ego": "accuracy",
        "status_others": "accuracy", "reasoning": "text"}


def kind_of(subtask: str) -> str:
    group, _, name = subtask.partition("-")
    return "objects" if group == "risk" else KIND.get(name, "text")


def _numbers(text: str) -> list[float]:
    return [float(x) for x in NUM.findall(text)]


def _objects(text: str) -> set[tuple[str, str]]:
    return {(c.strip().lower(), cam.lower()) for c, cam in OBJECT.findall(text)}


def _f1(pred: set, gt: set) -> float:
    if not pred and not gt:
        return 1.0
    tp = len(pred & gt)
    return 2 * tp / (len(pred) + len(gt)) if pred or gt else 0.0


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def _item(kind: str, pred: str, ref: str) -> float | None:
    if kind == "mae":
        p, g = _numbers(pred), _numbers(ref)
        return abs(p[0] - g[0]) if p and g else None
    if kind == "point":
        p, g = _numbers(pred), _numbers(ref)
        return float(np.hypot(p[0] - g[0], p[1] - g[1])) if len(p) >= 2 and len(g) >= 2 else None
    if kind == "accuracy":
        return 100.0 * (_words(pred) == _words(ref))
    return 100.0 * _f1(_objects(pred), _objects(ref))


@scorer("nuinstruct")
def score_nuinstruct(rows: list[dict], ctx) -> dict:
    values: dict[str, list] = defaultdict(list)
    texts: dict[str, tuple[list[str], list[list[str]]]] = {}
    for row in rows:
        subtask = row["sample"]["meta"]["subtask"]
        kind, pred, ref = kind_of(subtask), answers(row)[0], row["references"][0][0]
        if kind == "text":
            texts.setdefault(subtask, ([], []))
            texts[subtask][0].append(pred)
            texts[subtask][1].append([ref])
        else:
            values[subtask].append(_item(kind, pred, ref))
    out = {"parse_failures": value(sum(v is None for vals in values.values() for v in vals),
                                   sum(len(v) for v in values.values()), unit="samples")}
    for subtask, vals in sorted(values.items()):
        ok = [v for v in vals if v is not None]
        kind = kind_of(subtask)
        name = {"mae": "mae", "point": "mae", "accuracy": "accuracy", "objects": "f1"}[kind]
        unit = "%" if name != "mae" else ("m" if kind == "point" else "")
        out[f"{subtask}.{name}"] = value(float(np.mean(ok)), len(ok), unit=unit, failures=len(vals) - len(ok)) \
            if ok else missing(f"{len(vals)} answers without the needed numbers", len(vals), failures=len(vals))
    text = text_entries(ctx, texts)
    out.update({k: v for k, v in text.items() if k.endswith(".bleu_4")})
    return out
