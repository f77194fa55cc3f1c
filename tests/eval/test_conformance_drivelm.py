"""DriveLM accuracy, match and graph filter equal the challenge's evaluation.py; `eval score drivelm`.

Oracle re-written from OpenDriveLab/DriveLM@1de72a74b257e5373400fa68239e99bd5d20580a,
challenge/evaluation.py (`eval_acc`, `match_result`, `eval_graph`, the main loop) on test files
shaped as challenge/extract_data.py writes them (tags as lists; a QA picked twice appears twice).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from eval.metrics.core import ScoreContext
from eval.metrics.drivelm import score_drivelm
from eval.submissions import read_drivelm


def official(test: dict, preds: dict) -> dict:  # noqa: C901  (the official loop, kept in one piece)
    acc, match, graph = [], [], None

    def result(answer, gt):
        a = re.findall(r"\d+\.\d+", answer)
        g = re.findall(r"\d+\.\d+", gt)
        if len(a) % 2:
            a = a[:-1]
        a = np.array([float(x) for x in a]).reshape(-1, 2)
        g = np.array([float(x) for x in g]).reshape(-1, 2)
        length, tp, fp, out = len(g), 0, 0, []
        for p in a:
            best, bi, bg = float("inf"), None, None
            for i, gg in enumerate(g):
                d = np.sum(np.abs(p - gg))
                if d < best:
                    best, bi, bg = d, i, gg
            if best < 16:
                tp += 1
                out.append(bg)
                g = np.delete(g, bi, axis=0)
            else:
                fp += 1
        prec, rec = tp / (tp + fp + 1e-8), tp / (tp + (length - tp) + 1e-8)
        return out, 2 * prec * rec / (prec + rec + 1e-8)

    for scene, sdata in test.items():
        for frame, fdata in sdata["key_frames"].items():
            qa = fdata["QA"]
            first = True
            for i, q in enumerate(qa["perception"] + qa["prediction"] + qa["planning"] + qa["behavior"]):
                pred = preds[f"{scene}_{frame}_{i}"]
                if first:
                    first = False
                    graph = [list(x) for x in result(pred, q["A"])[0]]
                else:
                    nums = np.array([float(x) for x in re.findall(r"\d+\.\d+", q["Q"])]).reshape(-1, 2)
                    if any(list(n) not in graph for n in nums):
                        continue
                if 0 in q["tag"]:
                    acc.append(1.0 if pred == q["A"] else 0.0)
                if 3 in q["tag"]:
                    match.append(result(pred, q["A"])[1] * 100)
    return {"accuracy": sum(acc) / len(acc), "match_f1": sum(match) / len(match), "n_acc": len(acc)}


def no_text(monkeypatch):
    """The language corpus is checked in test_conformance_text.py; here it is left uncomputed."""
    from eval.metrics.core import missing
    from eval.metrics.text import METRICS

    monkeypatch.setattr("eval.metrics.drivelm.text_entries",
                        lambda ctx, corpora, note="": {f"language.{m}": missing("not here") for m in METRICS})


C1, C2 = "<c1,CAM_FRONT,100.0,200.0>", "<c2,CAM_BACK,300.0,400.0>"


def qa(q, a, tag):
    return {"Q": q, "A": a, "tag": [tag]}


def make_test():
    dup = qa(f"Would {C1} be in the moving direction of the ego vehicle?", f"No, {C1} and {C2}.", 0)
    frame = {"QA": {
        "perception": [qa("What are the important objects?", f"A car {C1} and a truck {C2}.", 2),
                       qa(f"What is the moving status of object {C1}? A. Going ahead. B. Stopped.", "B", 0)],
        # the yes/no question is also a graph question: extract_data.py tags it twice, both copies 0
        "prediction": [qa("Which object first, which second?", f"First {C1}, then {C2}.", 3), dup, dup],
        "planning": [qa("What actions could the ego vehicle take?", "Brake.", 1)],
        "behavior": [qa("Predict the behavior of the ego vehicle. A. Go. B. Stop.", "A", 0),
                     qa(f"Is {C2} ahead? A. Yes. B. No.", "A", 0)]}}
    return {"s1": {"key_frames": {"f1": frame, "f2": json.loads(json.dumps(frame))}}}


PREDS = {"s1_f1_0": f"Car {C1}.", "s1_f1_1": " B\n",
         "s1_f1_2": f"First {C1}, then <c9,CAM_BACK,350.0,400.0>.",
         "s1_f1_3": "No", "s1_f1_4": f"No, {C1} and {C2}.", "s1_f1_5": "Brake.", "s1_f1_6": "A", "s1_f1_7": "A",
         "s1_f2_0": f"A car {C1} and a truck {C2}.", "s1_f2_1": "B", "s1_f2_2": "",
         "s1_f2_3": f"No, {C1} and {C2}.",
         "s1_f2_4": "", "s1_f2_5": "", "s1_f2_6": " A", "s1_f2_7": "A"}


def score_files(tmp_path, test, preds):
    (tmp_path / "test_eval.json").write_text(json.dumps(test))
    out = [{"id": k, "question": "", "answer": v} for k, v in preds.items()]
    (tmp_path / "output.json").write_text(json.dumps(out))
    sub = read_drivelm(tmp_path / "output.json", tmp_path / "test_eval.json")
    return sub, score_drivelm(sub.rows, ScoreContext("drivelm", text=None))


def test_accuracy_and_match_equal_official(tmp_path, monkeypatch):
    no_text(monkeypatch)
    test = make_test()
    sub, ours = score_files(tmp_path, test, PREDS)
    want = official(test, PREDS)
    assert (sub.matched, sub.unanswered, sub.unmatched) == (16, 0, 0)
    # " B\n" and " A" are wrong, as the official unstripped equality has it (the old strip made them right)
    assert ours["accuracy"]["value"] == pytest.approx(want["accuracy"], abs=1e-12)
    assert ours["accuracy"]["n"] == want["n_acc"]
    assert ours["match_f1"]["value"] == pytest.approx(want["match_f1"], abs=1e-9)
    assert ours["accuracy_normalized"]["value"] > ours["accuracy"]["value"]


def test_duplicate_tag_counts_twice_for_accuracy_never_for_match(tmp_path, monkeypatch):
    """extract_data.py's shared dict: the QA picked for match (3) and yes/no (0) ends up tag 0, twice."""
    from eval.metrics.drivelm import QA, assign_tags

    no_text(monkeypatch)
    graph = QA("prediction", 0, "Q?", f"No, {C1} is ahead.", "x")
    other = QA("perception", 0, "What is the moving status of object?", "Moving.", "y")
    tagged = assign_tags([other, graph], [{"description": "", "tag": C1}])
    # "" (an empty class) is in every answer, so the perception QA is picked twice too (tag 2, then 0)
    assert [(q.group, q.tag) for q in tagged] == [("perception", 0)] * 2 + [("prediction", 0)] * 2


def test_missing_prediction_is_a_failure_and_counted(tmp_path, monkeypatch):
    no_text(monkeypatch)
    preds = {k: v for k, v in PREDS.items() if k != "s1_f1_5"} | {"s9_x_0": "A"}
    sub, ours = score_files(tmp_path, make_test(), preds)
    assert (sub.matched, sub.unanswered, sub.unmatched) == (15, 1, 1)
    assert ours["accuracy"]["value"] == pytest.approx(official(make_test(), {**preds, "s1_f1_5": ""})["accuracy"])
