"""Talk2Car AP50, AP50..95 and mean IoU equal the official eval.py; `eval score talk2car` reads
its predictions.json.

Oracle re-written from talk2car/Talk2Car@eeec6b0dfb79affc3651660d908d53e6eca6828e, eval.py
(`evaluate`, `jaccard`, and `main`'s `list(map(int, command.get_2d_bbox()))`): boxes
[x0, y0, w, h] turned into corners, IoU = intersection / clip(union, 1e-7), AP at IoU > t for
t in np.arange(0.5, 1.0, 0.05), AP50..95 their mean.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval.metrics.grounding import iou, score_grounding
from eval.submissions import read_talk2car


def jaccard(a, b):
    lt = np.maximum(a[:, np.newaxis, :2], b[:, :2])
    rb = np.minimum(a[:, np.newaxis, 2:], b[:, 2:])
    inter = np.clip(rb - lt, 0, None)
    area_i = np.prod(inter, axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return area_i / np.clip(area_a[:, np.newaxis] + area_b - area_i, 1e-7, None)


def official(gt: dict, pred: dict) -> dict:
    assert set(gt) == set(pred)
    ious = []
    for tok in gt:
        g, p = gt[tok], pred[tok]
        ious.append(jaccard(np.array([g[0], g[1], g[0] + g[2], g[1] + g[3]]).reshape(1, -1),
                            np.array([p[0], p[1], p[0] + p[2], p[1] + p[3]]).reshape(1, -1)).squeeze().item())
    aps = [np.mean([int(i > t) for i in ious]) for t in np.arange(0.5, 1.0, 0.05).tolist()]
    return {"mean_iou": float(np.mean(ious)), "ap50": 100 * aps[0], "ap50_95": 100 * float(np.mean(aps))}


GT = {  # command_token: 2d_box as the commands file holds it (floats are truncated by eval.py)
    "same": [100, 100, 50, 40], "touch": [0, 0, 10, 10], "inside": [10, 10, 100, 100], "sixty": [0, 0, 10, 10],
    "half": [0, 0, 10, 10], "degen": [5, 5, 10, 10], "invert": [5, 5, 10, 10], "float": [10.7, 20.2, 30.9, 40.5],
    "tiny": [0, 0, 1, 1], "far": [500, 500, 20, 20],
}
PRED = {
    "same": [100, 100, 50, 40], "touch": [10, 0, 10, 10],            # shares an edge: IoU 0
    "inside": [10, 10, 90, 100], "sixty": [0, 0, 6, 10],              # IoU exactly 0.6 (AP60 uses 0.6000000000000001)
    "half": [5, 0, 10, 10],                                           # IoU 1/3
    "degen": [5, 5, 0, 10], "invert": [15, 15, -10, -10],             # zero width; inverted
    "float": [10.25, 20.5, 30.125, 40.0], "tiny": [0.0, 0.0, 0.0001, 0.0001],   # union < 1e-7 with a sub-pixel box
    "far": [0, 0, 20, 20],
}


def write(tmp_path, gt, pred):
    cmds = [{"command_token": t, "command": f"follow the {t} car", "2d_box": b} for t, b in gt.items()]
    (tmp_path / "val_commands.json").write_text(json.dumps({"commands": cmds}))
    (tmp_path / "predictions.json").write_text(json.dumps(pred))


def test_scores_equal_official(tmp_path):
    write(tmp_path, GT, PRED)
    sub = read_talk2car(tmp_path / "predictions.json", tmp_path / "val_commands.json")
    assert (sub.matched, sub.unanswered, sub.unmatched) == (10, 0, 0)
    s = score_grounding(sub.rows, None)
    want = official({t: [int(v) for v in b] for t, b in GT.items()}, PRED)
    for k, v in want.items():
        assert s[k]["value"] == pytest.approx(v, abs=1e-9), k
    assert s["parse_failures"]["value"] == 0


def test_union_floor_of_sub_pixel_boxes():
    """The old IoU divided by the exact union: a 1e-4 px box on itself scored 1; eval.py gives 0.1."""
    box = [0.0, 0.0, 0.0001, 0.0001]
    want = jaccard(np.array([box]), np.array([box])).item()
    assert iou(box, box) == pytest.approx(want, abs=1e-12) and want == pytest.approx(0.1)


def test_missing_bad_and_stray_predictions(tmp_path):
    pred = {"same": [100, 100, 50, 40], "touch": "the car", "stray": [0, 0, 1, 1]}
    write(tmp_path, {"same": GT["same"], "touch": GT["touch"], "half": GT["half"]}, pred)
    sub = read_talk2car(tmp_path / "predictions.json", tmp_path / "val_commands.json")
    assert (sub.matched, sub.unanswered, sub.unmatched) == (2, 1, 1)
    s = score_grounding(sub.rows, None)
    assert s["parse_failures"]["value"] == 2 and s["ap50"]["value"] == pytest.approx(100 / 3)
    assert s["mean_iou"]["value"] == pytest.approx(1 / 3)


def test_ground_truth_as_predictions_scores_perfectly(tmp_path):
    """Fixture twin of the real-file test below: integer reference boxes (as the commands file
    holds them) predicted exactly give AP50 = AP50..95 = 100 and mean IoU 1."""
    gt = {t: b for t, b in GT.items() if all(isinstance(v, int) for v in b) and b[2] > 0 and b[3] > 0}
    write(tmp_path, gt, gt)
    sub = read_talk2car(tmp_path / "predictions.json", tmp_path / "val_commands.json")
    assert (sub.matched, sub.unanswered, sub.unmatched) == (len(gt), 0, 0) and len(gt) == 9
    s = score_grounding(sub.rows, None)
    assert s["ap50"]["value"] == 100.0 and s["ap50_95"]["value"] == 100.0 and s["mean_iou"]["value"] == 1.0


def test_real_val_commands_with_ground_truth_as_predictions(tmp_path, real_samples):
    val = real_samples / "talk2car" / "val_commands.json"
    cmds = json.loads(val.read_text())["commands"]
    (tmp_path / "p.json").write_text(json.dumps({c["command_token"]: c["2d_box"] for c in cmds}))
    sub = read_talk2car(tmp_path / "p.json", val)
    assert (sub.matched, sub.unanswered, sub.unmatched) == (len(cmds), 0, 0) and len(cmds) == 1163
    s = score_grounding(sub.rows, None)
    assert s["ap50"]["value"] == 100.0 and s["ap50_95"]["value"] == 100.0 and s["mean_iou"]["value"] == 1.0
