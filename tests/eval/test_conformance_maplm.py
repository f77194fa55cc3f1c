"""MAPLM QNS/FRM equal LLVM-AD/MAPLM's run_eval.py on choices with their final period.

Oracle re-written from LLVM-AD/MAPLM@b4a8897f56edb91fdad7b8c936f40b4fd1853d1d,
baseline/evaluation/run_eval.py (main loop) and utils.py (`completion_to_answer`, `compute_acc`).
"""
from __future__ import annotations

import json

import pytest

from converters.maplm.converter import inline_options
from eval.metrics.qa import score_maplm

QLT = ("What is the point cloud data quality in current road area of this image? Your potential choice is: "
       "Very clear. Not clear, road mark is worn. Not clear, road mark is occluded by some vehicle. "
       "Not clear, road mark is worn and occluded by vehicle.")
SCN = "What kind of road scene is it in the images? Your potential choice is: Normal city road. Roundabout. None."


def official(frames):
    """frames: [(frame, [(choices, answer, completion)])] -> (question_overall, frame_overall) in %."""
    q_ok = q_n = f_ok = 0
    for _, qas in frames:
        corrects = []
        for choices, answer, completion in qas:
            pred = next((i for i, c in enumerate(choices) if c.lower() in completion.lower()), None)
            corrects.append(pred == answer)
            q_n += 1
            q_ok += int(pred == answer)
        f_ok += int(all(corrects))
    return q_ok / q_n * 100, f_ok / len(frames) * 100


def test_prefix_choice_with_period_equals_official():
    qlt, scn = inline_options(QLT), inline_options(SCN)
    assert qlt[1] == "Not clear, road mark is worn."   # the period kept: not a prefix of option 3 any more
    frames = [("F1", [(qlt, 3, "The answer is Not clear, road mark is worn and occluded by vehicle."),
                      (scn, 0, "The answer is Normal city road.")]),
              ("F2", [(qlt, 1, "The answer is Not clear, road mark is worn."), (scn, 2, "None.")]),
              ("F3", [(qlt, 0, "very clear."), (scn, 1, "")]),
              ("F4", [(qlt, 0, "Very clear"), (scn, 1, "  roundabout.  ")])]
    rows = [{"prediction": [c], "prompt": {}, "sample": {"meta": {
        "maplm_frame": f, "question_type": "QLT" if opts is qlt else "SCN", "options": opts, "answer_index": a}}}
        for f, qas in frames for opts, a, c in qas]
    s = score_maplm(rows, None)
    qns, frm = official(frames)
    assert s["qns"]["value"] == pytest.approx(qns, abs=1e-9) and s["frm"]["value"] == pytest.approx(frm, abs=1e-9)
    assert s["qlt"]["value"] == pytest.approx(75.0)   # F1 right only with the period kept; F4 "Very clear" misses


def run_eval(problems, test_ids, output):
    """run_eval.py's main loop (retrieve_completion with its lane rewrite, completion_to_answer)
    on an aligned output.json -> (question_overall, frame_overall) in %."""
    q_ok = q_n = f_ok = 0
    for i, fid in enumerate(test_ids):
        assert output[i]["id"] == fid
        corrects = []
        for qa in problems[fid]["qa"]:
            if qa["task"] != "closed choice":
                continue
            question = qa["question"]
            if question == "How many lanes in current road?":
                question = "How many lanes on the current road?"
            turns = output[i]["conversations"]
            completion = next(turns[k + 1]["value"] for k, t in enumerate(turns) if question in t["value"])
            pred = next((k for k, c in enumerate(qa["choices"]) if c.lower() in completion.lower()), None)
            corrects.append(pred == qa["answer"])
            q_n += 1
            q_ok += int(pred == qa["answer"])
        f_ok += int(all(corrects))
    return q_ok / q_n * 100, f_ok / len(test_ids) * 100


def test_output_json_reader_equals_run_eval(tmp_path):
    from eval.submissions import read_maplm

    qlt_choices = inline_options(QLT)
    lane = ["1.", "2.", "3.", "4."]
    problems = {f"FR{k}": {"image": f"FR{k}/photo_forward.jpg", "qa": [
        {"task": "closed choice", "question": QLT.split(" Your")[0], "choices": qlt_choices, "answer": k % 4},
        {"task": "closed choice", "question": "How many lanes in current road?", "choices": lane, "answer": 1},
        {"task": "open", "question": "Describe the lane attribute.", "answer": "two lanes"}]} for k in range(4)}
    replies = {"FR0": ["Very clear.", "2."], "FR1": ["Not clear, road mark is worn and occluded by vehicle.", "2."],
               "FR2": ["not clear, road mark is occluded by some vehicle.", "There are 12."], "FR3": ["", "3."]}
    output = [{"id": fid, "conversations": [
        {"from": "human", "value": QLT}, {"from": "gpt", "value": replies[fid][0]},
        {"from": "human", "value": "How many lanes on the current road?"}, {"from": "gpt", "value": replies[fid][1]},
        {"from": "human", "value": "Describe the lane attribute."}, {"from": "gpt", "value": "two"}]}
        for fid in problems]
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "problems.json").write_text(json.dumps(problems))
    (tmp_path / "ref" / "pid_splits.json").write_text(json.dumps({"train": [], "val": [], "test": list(problems)}))
    (tmp_path / "output.json").write_text(json.dumps(output))
    sub = read_maplm(tmp_path / "output.json", tmp_path / "ref")
    assert (sub.matched, sub.unanswered, sub.unmatched) == (4, 0, 0)
    s = score_maplm(sub.rows, None)
    qns, frm = run_eval(problems, list(problems), output)
    assert s["qns"]["value"] == pytest.approx(qns, abs=1e-9) and s["frm"]["value"] == pytest.approx(frm, abs=1e-9)
    # a frame missing from output.json: its questions are failures (run_eval.py would stop at its assert)
    (tmp_path / "output.json").write_text(json.dumps(output[:3] + [{"id": "FR9", "conversations": []}]))
    sub = read_maplm(tmp_path / "output.json", tmp_path / "ref")
    assert (sub.matched, sub.unanswered, sub.unmatched) == (3, 1, 1)
    assert score_maplm(sub.rows, None)["qns"]["n"] == 8


def test_output_json_on_the_fixture_test_file(tmp_path):
    """Fixture twin of the real-file test below: the generated maplm_test.json (LLaVA layout)
    read as its own output answers every question right."""
    from converters.maplm.fixture import make_maplm_root
    from eval.submissions import read_maplm

    ref = make_maplm_root(tmp_path / "maplm") / "maplm_test.json"
    frames = len(json.loads(ref.read_text()))
    sub = read_maplm(ref, ref)
    assert (sub.matched, sub.unanswered, sub.unmatched) == (frames, 0, 0) and frames > 0
    s = score_maplm(sub.rows, None)
    assert s["qns"]["value"] == 100.0 and s["frm"]["value"] == 100.0 and s["qns"]["n"] > frames


def test_output_json_on_real_test_file(tmp_path, real_samples):
    from eval.submissions import read_maplm

    ref = real_samples / "maplm" / "maplm_test_first300.json"
    sub = read_maplm(ref, ref)       # the reference file as its own output: every answer is the reference
    assert (sub.matched, sub.unanswered, sub.unmatched) == (300, 0, 0)
    s = score_maplm(sub.rows, None)
    assert s["qns"]["value"] == 100.0 and s["frm"]["value"] == 100.0
