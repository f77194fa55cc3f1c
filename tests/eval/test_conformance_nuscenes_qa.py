"""nuScenes-QA accuracy equals the official result_eval.py, overall, per type and per type+hop;
`eval score nuscenes_qa` reads the result file it writes.

Oracle re-written from qiantianwen/NuScenes-QA@ff1961b5d8dcd7289d50791f6d2263aa168e41f2,
src/execution/result_eval.py (`Eval`): exact match `str(answer) == predicted`, grouped under
'Overall', `template_type` and `template_type`_`num_hop`, 100 * correct / total.
"""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from eval.metrics.qa import score_nuscenes_qa
from eval.submissions import read_nuscenes_qa

QUESTIONS = [  # (sample_token, question, answer, template_type, num_hop)
    ("s1", "Are there any cars?", "yes", "exist", 0),
    ("s1", "Are there any buses?", "no", "exist", 1),
    ("s1", "How many cars are there?", 2, "count", 0),            # an int answer: str(2) == "2"
    ("s2", "How many cars are there?", 0, "count", 1),
    ("s2", "What is the thing near the car?", "traffic cone", "object", 0),
    ("s2", "What status is the car?", "parked", "status", 1),
    ("s3", "Is the car the same size as the truck?", "no", "comparison", 1),
    ("s3", "Are there any cars?", "yes", "exist", 0),
]
PREDICTIONS = ["yes", "No", "2", "0 ", "traffic cone", "", "no", "yes\n"]   # case, space, empty, newline


def official(questions, predicted):
    correct = defaultdict(list)
    for (_, _, answer, ttype, hop), pred in zip(questions, predicted):
        ok = 1 if str(answer) == pred else 0
        correct["Overall"].append(ok)
        correct[ttype].append(ok)
        correct[f"{ttype}_{hop}"].append(ok)
    return {k: 100.0 * sum(v) / len(v) for k, v in correct.items()}


def ours(s):
    out = {"Overall": s["acc"]["value"]}
    for key, entry in s.items():
        for prefix in ("acc.type.", "acc.type_hop."):
            if key.startswith(prefix):
                out[key[len(prefix):]] = entry["value"]
    return out


def write(tmp_path, questions, lines):
    (tmp_path / "q.json").write_text(json.dumps({"questions": [
        {"sample_token": t, "question": q, "answer": a, "template_type": tt, "num_hop": h}
        for t, q, a, tt, h in questions]}))
    (tmp_path / "result.txt").write_text("".join(f"{t}    {q}    {p}    {a}\n" for t, q, p, a in lines))


def test_accuracy_by_type_and_hop_equals_official(tmp_path):
    # the result file as result_eval.py writes it: a newline or a trailing space cannot survive its
    # line format, so those two are scored from rows in the next test
    preds = [" 0" if p == "0 " else p for p in PREDICTIONS[:-1]] + ["yes"]
    write(tmp_path, QUESTIONS, [(t, q, p, a) for (t, q, a, _, _), p in zip(QUESTIONS, preds)])
    sub = read_nuscenes_qa(tmp_path / "result.txt", tmp_path / "q.json")
    assert (sub.matched, sub.unanswered, sub.unmatched) == (8, 0, 0)
    got = ours(score_nuscenes_qa(sub.rows, None))
    want = official(QUESTIONS, preds)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k


def test_unstripped_text_and_old_normalized_type_scores():
    rows = [{"prediction": [p], "references": [[str(a)]], "prompt": {},
             "sample": {"meta": {"template_type": tt, "num_hop": h}}}
            for (_, _, a, tt, h), p in zip(QUESTIONS, PREDICTIONS)]
    s = score_nuscenes_qa(rows, None)
    want = official(QUESTIONS, PREDICTIONS)
    assert ours(s) == pytest.approx(want, abs=1e-9)
    # the old scorer reported the vocabulary-mapped accuracy per type ("No" read as "no"): now an extra
    assert s["acc.type.exist"]["value"] == pytest.approx(100 / 3)
    assert s["acc_normalized.type.exist"]["value"] == 100.0


def test_missing_and_stray_lines_are_counted(tmp_path):
    lines = [(t, q, "yes", a) for t, q, a, _, _ in QUESTIONS[:3]] + [("s9", "Unknown?", "yes", "yes")]
    write(tmp_path, QUESTIONS, lines)
    sub = read_nuscenes_qa(tmp_path / "result.txt", tmp_path / "q.json")
    assert (sub.matched, sub.unanswered, sub.unmatched) == (3, 5, 1)
    s = score_nuscenes_qa(sub.rows, None)
    assert s["acc"]["n"] == 8 and s["acc"]["value"] == pytest.approx(100 / 8)   # unanswered are wrong
    assert sum(r["error"] is not None for r in sub.rows) == 5


def test_repeated_question_of_a_sample_pairs_in_order(tmp_path):
    qs = [("s1", "Are there any cars?", "yes", "exist", 0), ("s1", "Are there any cars?", "no", "exist", 1)]
    write(tmp_path, qs, [("s1", "Are there any cars?", "yes", "yes"), ("s1", "Are there any cars?", "yes", "no")])
    sub = read_nuscenes_qa(tmp_path / "result.txt", tmp_path / "q.json")
    assert [r["prediction"][0] for r in sub.rows] == ["yes", "yes"]
    assert ours(score_nuscenes_qa(sub.rows, None)) == pytest.approx(official(qs, ["yes", "yes"]))
