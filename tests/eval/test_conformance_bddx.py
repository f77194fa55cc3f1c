"""BDD-X as RAG-Driver scores it: captions (coco-caption over the predicted image ids) and the
control signal (RMSE, A_sigma); `eval score bddx` reads RAG-Driver's result files.

Oracle re-written from YuanJianhao508/RAG-Driver@24a0bd01f56c6fa4f2563a4c94925856e2ba707e,
evaluate.py (`evaluate_signal`, the `__main__` signal loop and its parsing of "Speed: v Course: c")
and, for the captions, evaluate_on_coco_caption as in jxbbb/ADAPT@c2717ba08220d5fee792ee3b9047f032a56ec7b6
src/evalcap/utils_caption_evaluate.py (COCO.loadRes, COCOEvalCap with params['image_id'] =
cocoRes.getImgIds(): references in one tokenizer call, hypotheses in another, in the reference
file's image order), computed with pycocoevalcap's own scorers.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval.metrics.captions import score_captions, score_control
from eval.metrics.core import ScoreContext
from eval.metrics.text import CocoText
from eval.submissions import read_bddx

IDS = ["7", "3", "12", "5"]
ACTION = {"7": ["The car slows down"], "3": ["The car accelerates"], "12": ["The car turns left."],
          "5": ["The car stops"]}
JUST = {"7": ["because traffic ahead is stopped"], "3": ["because the road is clear"],
        "12": ["because the road turns"], "5": ["because of a red light."]}
SIGNAL = {"7": {"speed": 5.2, "course": 0.0}, "3": {"speed": 9.8, "course": -1.5},
          "12": {"speed": 3.0, "course": 12.25}, "5": {"speed": 0.0, "course": 0.0}}
PRED_ACTION = {"3": "The car is accelerating", "7": "the car slows down.", "5": ""}            # 12 unanswered
PRED_JUST = {"7": "because traffic is stopped", "3": "the road is clear", "12": "No.", "5": "Stop."}
PRED_SIGNAL = {"7": "Speed: 5.0 Course: 0.1", "3": "Speed: .5 Curvature: 1e-1", "12": "Speed: 3.0 Course: 12.25",
               "5": "Speed: 10 Course: -0.05"}
TURNS = {"action": ["What is the action of ego car?"], "justification": ["Why does the ego car doing this?"]}


def coco_file(refs):
    return {"info": [], "licenses": [], "type": "captions", "images": [{"id": i, "file_name": f"{i}.mp4"} for i in IDS],
            "annotations": [{"image_id": i, "id": n, "caption": c} for n, (i, c) in
                            enumerate((i, c) for i in IDS for c in refs[i])]}


def write(tmp_path, pred_action=PRED_ACTION, pred_signal=PRED_SIGNAL):
    gt, pr = tmp_path / "BDDX_gt", tmp_path / "results"
    gt.mkdir(), pr.mkdir()
    (gt / "BDDX_Test_coco_action.json").write_text(json.dumps(coco_file(ACTION)))
    (gt / "BDDX_Test_coco_justification.json").write_text(json.dumps(coco_file(JUST)))
    (gt / "BDDX_Test_control_signal.json").write_text(json.dumps(SIGNAL))
    for name, p in (("action", pred_action), ("justification", PRED_JUST), ("control_signal", pred_signal)):
        items = [{"image_id": i, "caption": c} for i, c in p.items()]
        (pr / f"BDDX_Test_pred_{name}.json").write_text(json.dumps(items))
    return pr, gt


def official_captions(refs, preds):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    img_ids = [i for i in IDS if i in preds]          # cocoRes.getImgIds(): reference images that were predicted
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": c} for c in refs[i]] for i in img_ids})
    res = tok.tokenize({i: [{"caption": preds[i]}] for i in img_ids})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {**{f"bleu_{n + 1}": b for n, b in enumerate(bleu)}, "rouge_l": Rouge().compute_score(gts, res)[0],
            "cider": Cider().compute_score(gts, res)[0]}


def official_signal(gt, pred):
    speeds, courses = [], []
    for idx, g in gt.items():
        p = pred[idx]
        speeds.append((g["speed"], float(p.split(": ")[1].split(" ")[0])))
        courses.append((g["course"], float(p.split(": ")[-1])))
    out = {}
    for name, pairs in (("speed", speeds), ("course", courses)):
        g, p = np.array(pairs).T
        out[f"{name}.rmse"] = float(np.sqrt(np.mean((g - p) ** 2)))   # sklearn mean_squared_error on 1-D arrays
        for sigma in (0.1, 0.5, 1, 5, 10):
            out[f"{name}.a_{sigma:g}"] = 100 * np.count_nonzero(abs(g - p) < sigma) / np.prod(g.shape)
    return out


def test_control_signal_equals_official(tmp_path):
    sub = read_bddx(*write(tmp_path))
    s = score_control(sub.rows, ScoreContext("bddx", {"control_question": "Predict the control signal"}))
    assert s["control.parse_failures"]["value"] == 0
    for k, v in official_signal(SIGNAL, PRED_SIGNAL).items():
        assert s[k]["value"] == pytest.approx(v, abs=1e-9), k


def test_old_regex_read_signals_differently():
    """"Speed: .5 Curvature: 1e-1": evaluate.py reads (0.5, 0.1); the old regex read speed 5 and course 1."""
    from eval.metrics.captions import parse_control

    assert parse_control("Speed: .5 Curvature: 1e-1") == (0.5, 0.1)
    assert parse_control("Speed:5 Course:1") is None          # evaluate.py crashes: a counted failure


def test_captions_equal_official_over_predicted_ids(tmp_path):
    sub = read_bddx(*write(tmp_path))
    assert (sub.matched, sub.unanswered, sub.unmatched) == (4, 0, 0)
    s = score_captions(sub.rows, ScoreContext("bddx", {"turns": TURNS}, text=CocoText(meteor=False)))
    for name, refs, preds in (("action", ACTION, PRED_ACTION), ("justification", JUST, PRED_JUST)):
        want = official_captions(refs, preds)
        assert s[f"{name}.cider"]["n"] == len(preds)
        for k, v in want.items():
            assert s[f"{name}.{k}"]["value"] == pytest.approx(v, abs=1e-9), (name, k)


def test_missing_signal_is_a_failure_and_stray_ids_are_counted(tmp_path):
    signal = {k: v for k, v in PRED_SIGNAL.items() if k != "5"} | {"99": "Speed: 1 Course: 1"}
    sub = read_bddx(*write(tmp_path, pred_signal=signal))
    assert sub.unmatched == 1
    s = score_control(sub.rows, ScoreContext("bddx", {"control_question": "Predict the control signal"}))
    assert s["control.parse_failures"]["value"] == 1 and s["speed.rmse"]["n"] == 3


def test_ground_truth_as_predictions_scores_perfectly(tmp_path):
    """Fixture twin of the real-file test below: the reference signals written back as
    RAG-Driver's "Speed: v Course: c" captions give RMSE 0 and A_0.1 = 100."""
    signal = {i: f"Speed: {v['speed']} Course: {v['course']}" for i, v in SIGNAL.items()}
    sub = read_bddx(*write(tmp_path, pred_action={i: c[0] for i, c in ACTION.items()}, pred_signal=signal))
    assert (sub.matched, sub.unanswered, sub.unmatched) == (4, 0, 0)
    s = score_control(sub.rows, ScoreContext("bddx", {"control_question": "Predict the control signal"}))
    assert s["speed.rmse"]["value"] == 0.0 and s["course.rmse"]["value"] == 0.0
    assert s["speed.a_0.1"]["value"] == 100.0 and s["course.a_0.1"]["value"] == 100.0 and s["speed.rmse"]["n"] == 4


def test_real_rag_driver_ground_truth(tmp_path, real_samples):
    gt = real_samples / "bddx" / "processed"
    pr = tmp_path / "results"
    pr.mkdir()
    sig = json.loads((gt / "BDDX_Test_control_signal.json").read_text())
    for name in ("action", "justification"):
        coco = json.loads((gt / f"BDDX_Test_coco_{name}.json").read_text())
        first = {}
        for a in coco["annotations"]:
            first.setdefault(a["image_id"], a["caption"])
        (pr / f"BDDX_Test_pred_{name}.json").write_text(json.dumps([{"image_id": i, "caption": c}
                                                                    for i, c in first.items()]))
    (pr / "BDDX_Test_pred_control_signal.json").write_text(json.dumps(
        [{"image_id": i, "caption": f"Speed: {v['speed']} Course: {v['course']}"} for i, v in sig.items()]))
    sub = read_bddx(pr, gt)
    assert (sub.matched, sub.unanswered, sub.unmatched) == (2123, 0, 0)
    s = score_control(sub.rows, ScoreContext("bddx", {"control_question": "Predict the control signal"}))
    assert s["speed.rmse"]["value"] == 0.0 and s["course.a_0.1"]["value"] == 100.0
