"""The LLM-judge client against a local stub of an OpenAI-compatible server, and judged metrics
(CODA-LM ratings, DriveLM's ChatGPT/match/final scores): recorded judge, failures counted,
"not computed" without a judge."""
from __future__ import annotations

import re

import pytest
from eval_helpers import T1, T2, StubJudge, drivelm_rows, row

from eval.judge import Judge, JudgeConfig
from eval.metrics import ScoreContext
from eval.metrics.drivelm import score_drivelm
from eval.metrics.judged import score_codalm
from eval.metrics.text import CocoText


def coda_rows():
    def r(task, pred, ref, category="car"):
        return row(pred, [ref], task=f"vqa.{task}", questions=[f"{task}?"], meta={"category_name": category})

    return [r("general_perception", "GOOD a bus blocks the lane", "A bus blocks the lane."),
            r("general_perception", "BAD nothing", "A bus blocks the lane."),
            r("driving_suggestion", "GOOD slow down", "Slow down."),
            r("regional_perception", "GOOD a cone", "A traffic cone.", "traffic_cone"),
            r("regional_perception", "UNPARSABLE", "A car.", "car")]


def coda_reply(messages):
    user = messages[1]["content"]
    if "UNPARSABLE" in user:
        return "I would say seven."
    return "Good answer. Rating: [[9]]" if "GOOD" in user else "Wrong objects. Rating: [[2]]"


def test_codalm_judged_scores_record_the_judge(tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "secret-123")
    with StubJudge(coda_reply) as stub:
        cfg = JudgeConfig(stub.url, "judge-7b", temperature=0.0, api_key_env="JUDGE_KEY")
        s = score_codalm(coda_rows(), ScoreContext("codalm", {}, judge=Judge(cfg, tmp_path)))
        calls = len(stub.requests)
        first = stub.requests[0]
    assert s["general_perception"]["value"] == pytest.approx((9 + 2) / 2)
    assert s["driving_suggestion"]["value"] == 9.0
    # one unparsable reply: counted, left out of the mean, never scored 0
    assert s["regional_perception"]["value"] == 9.0 and s["regional_perception"]["failures"] == 1
    assert s["regional_perception.traffic_cone"]["value"] == 9.0
    judge = s["general_perception"]["judge"]
    assert judge["model"] == "judge-7b" and judge["temperature"] == 0.0
    assert judge["url"].endswith("/v1/chat/completions")
    assert re.fullmatch(r"[0-9a-f]{40}", judge["prompt_sha1"]) and "Rating: [[k]]" in judge["prompt"]["system"]
    assert calls == 5 and first["path"] == "/v1/chat/completions"
    assert first["body"]["model"] == "judge-7b" and first["body"]["temperature"] == 0.0
    assert first["auth"] == "Bearer secret-123"
    assert "secret-123" not in (tmp_path / "judgments.jsonl").read_text()
    # the replies are cached: scoring again asks nothing
    with StubJudge(coda_reply) as stub2:
        again = score_codalm(coda_rows(), ScoreContext("codalm", {}, judge=Judge(JudgeConfig(stub2.url, "judge-7b"),
                                                                                 tmp_path)))
        assert stub2.requests == []
    assert again["general_perception"]["value"] == s["general_perception"]["value"]


def test_without_judge_or_with_an_unreachable_one_scores_are_not_computed(tmp_path):
    s = score_codalm(coda_rows(), ScoreContext("codalm", {}))
    assert s["general_perception"]["value"] is None and s["general_perception"]["status"] == "not computed"
    dead = Judge(JudgeConfig("http://127.0.0.1:9/v1", "judge", timeout_s=2), None)
    s = score_codalm(coda_rows(), ScoreContext("codalm", {}, judge=dead))
    assert s["driving_suggestion"]["value"] is None and s["driving_suggestion"]["failures"] == 1
    assert "failed" in s["driving_suggestion"]["note"]


def test_drivelm_final_score_weights_with_a_judge(tmp_path):
    rows = drivelm_rows([f"A white sedan {T1} and a red suv.", "Moving.", "x", "No.", f"Watch {T1} and {T2}.",
                         "Keep going.", "Going straight."])
    with StubJudge(lambda m: "80") as stub:
        judge = Judge(JudgeConfig(stub.url, "judge"), tmp_path)
        s = score_drivelm(rows, ScoreContext("drivelm", {}, judge=judge, text=CocoText(meteor=False)))
    assert s["chatgpt"]["value"] == 80.0 and s["accuracy"]["value"] == 1.0
    lang = s["language"]["value"]
    parts = [s[f"language.{m}"]["value"] for m in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider")]
    assert lang == pytest.approx(sum(parts[:4]) / 12 + parts[4] / 3 + parts[5] / 30)
    assert s["match_f1"]["value"] == pytest.approx(100.0, abs=1e-4)
    assert s["match"]["value"] == pytest.approx((100.0 + 80.0) / 2, abs=1e-4)  # coordinate F1 and judge, halved
    assert s["final"]["value"] == pytest.approx(0.4 * 0.8 + 0.2 * lang + 0.2 * 0.9 + 0.2 * 1.0, abs=1e-6)


def test_judge_config_rejects_bad_arguments():
    from dataengine.errors import UsageError

    with pytest.raises(UsageError, match="http"):
        JudgeConfig("localhost:8000", "m")
    with pytest.raises(UsageError, match="NOPE_NOT_SET"):
        JudgeConfig("http://x/v1", "m", api_key_env="NOPE_NOT_SET")
