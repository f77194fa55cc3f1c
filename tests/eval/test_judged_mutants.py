"""Judged scores by hand, with a judge whose endpoint is a function (no HTTP): the 1-10 rating
parser, the mean over parsed replies with failures counted beside it, and CODA-LM's three tasks
with the regional per-super-class means (rules in eval/metrics/judged.py's docstring)."""
from __future__ import annotations

import pytest
from eval_helpers import ScriptedJudge, row

from eval.judge import template_record
from eval.metrics import ScoreContext
from eval.metrics.judged import CODA_CRITERIA, CODA_SYSTEM, CODA_USER, judged_mean, rating_10, score_codalm, super_class


@pytest.mark.parametrize("reply, rating", [
    ("Good. Rating: [[7]]", 7.0), ("[[ 8 ]]", 8.0), ("[[7.5]]", 7.5), ("[[1]]", 1.0), ("[[10]]", 10.0),
    ("[[0]]", None), ("[[11]]", None), ("[[10.5]]", None), ("Rating: 7", None), ("[[3]] then [[9]]", 3.0),
    ("[[seven]]", None), ("[7]", None)])
def test_rating_10(reply, rating):
    assert rating_10(reply) == rating


def number(reply):
    return float(reply) if reply.isdigit() else None


def test_judged_mean_over_parsed_replies_with_failures_beside_it():
    judge = ScriptedJudge(lambda user: {"a": "4", "b": "x" * 300, "c": "8", "d": "no"}[user[-1]])
    items = [{"p": k} for k in "abcd"]
    ctx = ScoreContext("b", {}, judge=judge)
    entry, scores = judged_mean(ctx, items, "S", "item {p}", number, "0-9")
    record = template_record(judge.cfg, "S", "item {p}")
    assert scores == [4.0, None, 8.0, None]
    assert entry == {"value": 6.0, "n": 2, "status": "computed", "unit": "0-9", "failures": 2, "judge": record,
                     "note": "mean over 2 judged items; 2 failed or unparsable replies excluded"}
    assert [m[1]["content"] for m in judge.asked] == ["item a", "item b", "item c", "item d"]
    assert all(m[0]["content"] == "S" for m in judge.asked)


def test_judged_mean_without_usable_replies_or_judge_is_not_computed():
    judge = ScriptedJudge(lambda user: "x" * 250 if user.endswith("a") else "second")
    entry, scores = judged_mean(ScoreContext("b", {}, judge=judge), [{"p": "a"}, {"p": "b"}], "S", "{p}", number, "u")
    assert scores == [None, None]
    assert entry == {"value": None, "n": 2, "status": "not computed", "judge": template_record(judge.cfg, "S", "{p}"),
                     "failures": 2, "note": f"no usable judge reply (2 failed; first: {'x' * 200})"}
    assert judged_mean(ScoreContext("b", {}), [{"p": "a"}], "S", "{p}", number, "u") == (
        {"value": None, "n": 1, "status": "not computed", "note": "no judge (pass --judge-url and --judge-model)"}, [])


@pytest.mark.parametrize("category, group", [
    ("Traffic_Cone", "traffic_cone"), ("motorcyclist", "vru"), ("traffic light", "traffic_light"),
    ("Stop SIGN", "traffic_sign"), ("concrete barrier", "barrier"), ("bus stop sign", "vehicle"), ("dog", "vru"),
    ("plastic bag", "miscellaneous"), ("", "miscellaneous")])
def test_super_class(category, group):
    assert super_class(category) == group


def coda_row(task, pred, ref, category=None, marker=""):
    meta = {} if category is None else {"category_name": category}
    return row(pred, [ref], task=f"vqa.{task}", questions=[f"{task}?"], marker=marker, meta=meta)


def rating_reply(user):
    return "Rating: [[9]]" if "GOOD" in user else "Rating: [[2]]" if "BAD" in user else "seven"


def test_codalm_tasks_prompts_and_regional_super_classes():
    rows = [coda_row("general_perception", "why. Answer: GOOD bus", "A bus.", marker="Answer:"),
            coda_row("general_perception", "BAD", "A bus."),
            coda_row("general_perception", "GOOD", "  "),                     # no reference: not scored
            coda_row("regional_perception", "GOOD cone", "A cone.", "traffic_cone"),
            coda_row("regional_perception", "BAD cone", "A cone.", "Traffic cone"),
            coda_row("regional_perception", "GOOD car", "A car.", "car"),
            coda_row("regional_perception", "??", "A bag.", "bag"),             # unparsable: no group entry
            coda_row("regional_perception", "GOOD", "A thing.")]                # no category: miscellaneous
    judge = ScriptedJudge(rating_reply)
    out = score_codalm(rows, ScoreContext("codalm", {}, judge=judge))
    system = CODA_SYSTEM.format(criteria=CODA_CRITERIA["general_perception"])
    record = template_record(judge.cfg, system, CODA_USER)
    assert out["general_perception"] == {"value": 5.5, "n": 2, "status": "computed", "unit": "1-10", "failures": 0,
                                         "judge": record,
                                         "note": "mean over 2 judged items; 0 failed or unparsable replies excluded"}
    assert judge.asked[0] == [{"role": "system", "content": system}, {"role": "user", "content": CODA_USER.format(
        question="general_perception?", reference="A bus.", prediction="GOOD bus")}]
    assert out["driving_suggestion"] == {"value": None, "n": 0, "status": "not computed",
                                         "note": "no samples with a reference answer (CODA-LM Test ships none)"}
    regional = template_record(judge.cfg, CODA_SYSTEM.format(criteria=CODA_CRITERIA["regional_perception"]),
                               CODA_USER)
    assert out["regional_perception"]["value"] == pytest.approx((9 + 2 + 9 + 9) / 4)
    assert out["regional_perception"]["failures"] == 1
    assert out["regional_perception.traffic_cone"] == {"value": 5.5, "n": 2, "status": "computed", "unit": "1-10",
                                                       "judge": regional}
    assert out["regional_perception.vehicle"]["value"] == 9.0
    assert out["regional_perception.miscellaneous"]["n"] == 1
    assert [k for k in out if k.startswith("regional_perception.")] == [
        "regional_perception.miscellaneous", "regional_perception.traffic_cone", "regional_perception.vehicle"]
    assert len(judge.asked) == 2 + 5


def test_codalm_prompts_from_args_and_no_judge():
    rows = [coda_row("driving_suggestion", "GOOD", "Slow down."), coda_row("general_perception", "BAD", "x")]
    prompts = {"driving_suggestion": {"system": "SYS", "user": "U {prediction} / {reference}"},
               "general_perception": {"user": "only user {question} {prediction}"}}
    judge = ScriptedJudge(rating_reply)
    out = score_codalm(rows, ScoreContext("codalm", {"judge_prompts": prompts}, judge=judge))
    assert [[m["content"] for m in a] for a in judge.asked] == [
        [CODA_SYSTEM.format(criteria=CODA_CRITERIA["general_perception"]), "only user general_perception? BAD"],
        ["SYS", "U GOOD / Slow down."]]
    assert out["driving_suggestion"]["value"] == 9.0 and out["general_perception"]["value"] == 2.0
    assert "regional_perception.vehicle" not in out
    none = score_codalm(rows + [coda_row("regional_perception", "GOOD", "A car.", "car")], ScoreContext("codalm", {}))
    assert none["regional_perception"]["status"] == "not computed"
    assert not any(k.startswith("regional_perception.") for k in none)
