"""Caption-style scorers by hand: which answers and references reach each corpus (the COCO
metrics themselves are tested in test_text_mutants.py, so a recording stand-in scores here),
DRAMA-style yes/no accuracy, BDD-X control signals and LingoQA's Lingo-Judge rule.

Control signals follow RAG-Driver evaluate.py (YuanJianhao508/RAG-Driver@24a0bd01, `evaluate_signal`:
RMSE and A_sigma = share of |pred - gt| < sigma; "Speed: v Course: c" read as the number after the
first ": " up to a space and the one after the last ": "). Lingo-Judge follows wayveai/LingoQA
benchmark/judge.py (`LingoJudge.forward`, `compute`: "{cls}\\nQuestion: q\\nAnswer: ref\\nStudent: pred",
max logit over the references) and evaluate.py (correct when the max > 0; score = share correct).
"""
from __future__ import annotations

import math
import sys
import types

import pytest
from eval_helpers import row

from eval.metrics import ScoreContext
from eval.metrics.captions import (
    answers,
    lingo_judge_scores,
    parse_control,
    score_captions,
    score_control,
    score_lingoqa,
    score_text,
    turn_index,
    yes_no,
)
from eval.metrics.text import METRICS

SCORE = {"bleu_1": 0.5, "bleu_2": 0.4, "bleu_3": 0.3, "bleu_4": 0.2, "rouge_l": 0.6, "cider": 1.1}


class RecordingText:
    """CocoText's interface: records the corpora it is given and scores every corpus alike."""

    def __init__(self):
        self.corpora = None

    def score(self, corpora):
        self.corpora = corpora
        return {name: dict(SCORE) for name, (hyps, _) in corpora.items() if hyps}


def ctx(**args):
    return ScoreContext("b", args, text=RecordingText())


def test_answers_read_after_the_marker_and_stripped():
    assert answers(row([" a ", "x. Answer: b "], [["r"], ["s"]], marker="Answer:")) == ["a", "b"]
    assert answers({"prediction": [" c XXXX d "]}) == ["c XXXX d"]        # no prompt: no marker


def test_text_scores_every_answered_turn_in_one_corpus_and_per_task_on_request():
    rows = [row(["A. ", "b"], [["ra", " "], ["  "]], task="t1"),            # blank references dropped
            row("c", ["rc1", "rc2"], task="t2"), row("d", ["rd"], task="t3")]
    c = ctx()
    out = score_text(rows, c)
    assert c.text.corpora == {"": (["A.", "c", "d"], [["ra"], ["rc1", "rc2"], ["rd"]])}
    assert out["cider"] == {"value": 1.1, "n": 3, "status": "computed"} and set(out) == set(METRICS)
    c = ctx(text_by_task=True, text_tasks=["t1", "t2"])
    out = score_text(rows, c)
    assert c.text.corpora == {"": (["A.", "c"], [["ra"], ["rc1", "rc2"]]), "t1": (["A."], [["ra"]]),
                              "t2": (["c"], [["rc1", "rc2"]])}
    assert out["t2.bleu_2"]["value"] == 0.4 and out["t1.rouge_l"]["n"] == 1 and out["rouge_l"]["n"] == 2


def test_text_without_references_is_not_computed():
    out = score_text([row("a", [" "])], ctx())
    assert out == {"cider": {"value": None, "n": 0, "status": "not computed",
                             "note": "no question has a reference answer"}}
    assert score_text([row("a", ["r"], task="t")], ctx(text_tasks=["u"]))["cider"]["value"] is None


def test_turn_index_and_yes_no():
    qs = ["Describe the scene.", "What is the action of ego car?", "Why?"]
    assert turn_index(qs, "action") == 1 and turn_index(qs, ["nothing", "Why"]) == 2
    assert turn_index(qs, "ACTION") is None and turn_index(qs, []) is None
    assert yes_no("YES, there is.") == "yes" and yes_no("Well, no.") == "no"
    assert yes_no("Yesterday, nobody.") is None and yes_no("") is None


def test_captions_pick_turns_by_text_and_prefer_meta_references():
    turns = {"action": "action of ego", "why": ["Why", "reason"], "risk": "any risk", "gone": "absent question"}
    q = ["Is there any risk?", "What is the action of ego car?", "What is the reason?"]
    rows = [row(["Yes.", "Slows. ", "red light"], [["Yes, a car."], ["slows"], ["the light is red"]], questions=q,
                meta={"references": {"action": ["slows down", "brakes", " "], "why": []}}),
            row(["no", "turns", "x"], [["Yes."], ["turns left"], [" "]], questions=q, marker="Answer:"),
            row(["maybe"], [["Maybe."]], questions=["Is there any risk?"]),            # no yes/no in the reference
            row(["skip"], [["s"]], questions=["Unrelated?"])]
    c = ctx(turns=turns, yes_no=["risk", "gone"])
    out = score_captions(rows, c)
    assert c.text.corpora == {"action": (["Slows.", "turns"], [["slows down", "brakes"], ["turns left"]]),
                              "why": (["red light"], [["the light is red"]])}
    assert out["risk.accuracy"] == {"value": pytest.approx(100 / 3), "n": 3, "status": "computed", "unit": "%"}
    assert out["gone.accuracy"] == {"value": None, "n": 0, "status": "not computed", "note": "no such question"}
    assert out["action.cider"]["n"] == 2 and out["why.bleu_1"]["value"] == 0.5
    assert "risk.cider" not in out and "gone.cider" not in out


def test_yes_no_accuracy_needs_the_same_word():
    q = ["Any risk?"]
    rows = [row(["No."], [["no"]], questions=q), row(["Yes"], [["Yes, a bus."]], questions=q),
            row(["yes"], [["No."]], questions=q)]
    out = score_captions(rows, ctx(turns={"risk": "risk"}, yes_no=["risk"]))
    assert out == {"risk.accuracy": {"value": pytest.approx(200 / 3), "n": 3, "status": "computed", "unit": "%"}}


def test_parse_control_as_evaluate_py_reads_it():
    assert parse_control("Speed: 5.2 Course: 0.1") == (5.2, 0.1)
    assert parse_control("speed: 3 m/s course: -2.5") == (3.0, -2.5)
    assert parse_control("Speed: 7") == (7.0, 7.0)               # one ": ": first and last are the same
    # evaluate.py splits on one space: a tab or a second space after "Speed:" makes it crash (None here)
    for bad in ("Speed 5 Course 1", "Speed: fast Course: 1", "Speed: 5 Course: left", "", "Speed: 5.2\tCourse: 0.1",
                "Speed:  5 Course: 1"):
        assert parse_control(bad) is None


def control_row(text, speed=None, course=None, question="Predict the control signal."):
    meta = {} if speed is None else {"control_signal": {"speed": speed, "course": course}}
    return row(["a", text], [["a"], ["x"]], questions=["What?", question], meta=meta)


def test_control_rmse_and_a_sigma_by_hand():
    # speed errors 0.5, 0.05, 7; course errors 0.1, 2, 0 (A_sigma is strict: an error of 0.1 is not < 0.1)
    rows = [control_row("Speed: 8.0 Course: 1.1", 7.5, 1.0), control_row("Speed: 5.05 Course: -2", 5.0, 0.0),
            control_row("Speed: 10 Course: 3", 3.0, 3.0), control_row("no idea", 1.0, 1.0),
            control_row("Speed: 1 Course: 1"),                                    # no ground truth: not scored
            control_row("Speed: 1 Course: 1", 1.0, 1.0, question="Why?")]         # no control question
    out = score_control(rows, ctx())
    note = "1 unparsable answers excluded (see control.parse_failures)"
    assert out["control.parse_failures"] == {"value": 1.0, "n": 4, "status": "computed", "unit": "samples"}
    assert out["speed.rmse"] == {"value": pytest.approx(math.sqrt((0.25 + 0.0025 + 49) / 3)), "n": 3,
                                 "status": "computed", "note": note}
    assert out["course.rmse"]["value"] == pytest.approx(math.sqrt((0.01 + 4) / 3))
    speed = {k: out[f"speed.a_{k}"]["value"] for k in ("0.1", "0.5", "1", "5", "10")}
    assert speed == pytest.approx({"0.1": 100 / 3, "0.5": 100 / 3, "1": 200 / 3, "5": 200 / 3, "10": 100.0})
    course = {k: out[f"course.a_{k}"]["value"] for k in ("0.1", "0.5", "1", "5", "10")}
    assert course == pytest.approx({"0.1": 100 / 3, "0.5": 200 / 3, "1": 200 / 3, "5": 100.0, "10": 100.0})
    assert out["course.a_5"] == {"value": 100.0, "n": 3, "status": "computed", "unit": "%", "note": note}
    assert len(out) == 1 + 2 * 6


def test_control_question_from_args_and_nothing_parsable():
    rows = [control_row("Speed: 2 Course: 0", 2.0, 0.0, question="Next signal?"), control_row("??", 1.0, 0.0)]
    out = score_control(rows, ctx(control_question="Next signal"))
    assert out["speed.rmse"]["value"] == 0.0 and out["control.parse_failures"]["n"] == 1
    out = score_control(rows, ctx())
    why = "no parsable control answer with a reference"
    assert out == {"control.parse_failures": {"value": 1.0, "n": 1, "status": "computed", "unit": "samples"},
                   "speed.rmse": {"value": None, "n": 1, "status": "not computed", "note": why},
                   "course.rmse": {"value": None, "n": 1, "status": "not computed", "note": why}}


def lingo_rows():
    return [row(" It is red. ", ["Red.", "The light is red."], questions=["Colour?"]),
            row("Green", ["Red."], questions=["Colour of the light?"])]


def test_lingoqa_text_against_both_references_without_judge():
    c = ctx()
    out = score_lingoqa(lingo_rows(), c)
    assert c.text.corpora == {"": (["It is red.", "Green"], [["Red.", "The light is red."], ["Red."]])}
    assert out["bleu_4"] == {"value": 0.2, "n": 2, "status": "computed", "note": "against both references"}
    assert out["lingo_judge"] == {"value": None, "n": 2, "status": "not computed",
                                  "note": "no Lingo-Judge weights (--lingo-judge DIR)"}


def test_lingoqa_judge_counts_positive_max_logits(monkeypatch, tmp_path):
    import eval.metrics.captions as captions

    seen = []

    def scores(weights, items):
        seen.append((weights, items))
        return [0.5, 0.0, -1.0, 2.0][:len(items)]

    monkeypatch.setattr(captions, "lingo_judge_scores", scores)
    c = ScoreContext("b", {}, text=RecordingText(), lingo_judge=str(tmp_path))
    out = score_lingoqa(lingo_rows(), c)
    assert seen == [(tmp_path, [("Colour?", ["Red.", "The light is red."], "It is red."),
                                ("Colour of the light?", ["Red."], "Green")])]
    assert out["lingo_judge"] == {"value": 50.0, "n": 2, "status": "computed", "unit": "%",
                                  "note": f"Lingo-Judge weights {tmp_path}"}   # 0.0 is not > 0
    assert "lingo_judge" not in score_lingoqa([], c)


def test_lingo_judge_scores_take_the_max_logit_over_references(monkeypatch, tmp_path):
    import torch

    logits = {"Red.": 1.5, "The light is red.": -0.5, "Blue.": -2.0}
    calls = []

    class Tokenizer:
        cls_token = "[CLS]"

        def __call__(self, texts, **kw):
            calls.append((texts, kw))
            return {"input_ids": torch.tensor([[logits[t.split("\nAnswer: ")[1].split("\n")[0]]] for t in texts])}

    class Model:
        def eval(self):
            return self

        def __call__(self, input_ids):
            return types.SimpleNamespace(logits=input_ids.float())     # shape (references, 1)

    def loader(made):
        def from_pretrained(path, **kw):
            assert path == tmp_path and kw == {"local_files_only": True}
            return made
        return from_pretrained

    fake = types.SimpleNamespace(AutoTokenizer=types.SimpleNamespace(from_pretrained=loader(Tokenizer())),
                                 AutoModelForSequenceClassification=types.SimpleNamespace(
                                     from_pretrained=loader(Model())))
    monkeypatch.setitem(sys.modules, "transformers", fake)
    out = lingo_judge_scores(tmp_path, [("Colour?", ["The light is red.", "Red."], "red"), ("Q", ["Blue."], "b")])
    assert out == [1.5, -2.0] and all(type(s) is float for s in out)
    assert calls[0] == (["[CLS]\nQuestion: Colour?\nAnswer: The light is red.\nStudent: red",
                         "[CLS]\nQuestion: Colour?\nAnswer: Red.\nStudent: red"],
                        {"return_tensors": "pt", "padding": True, "truncation": True, "max_length": 128})
    assert calls[1][0] == ["[CLS]\nQuestion: Q\nAnswer: Blue.\nStudent: b"]
