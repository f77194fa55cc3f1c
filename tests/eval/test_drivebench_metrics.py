"""DriveBench scoring against a re-implementation of its official evaluate/eval.py, the judge,
the official prediction file through `python -m eval score`, and the robustness view."""
from __future__ import annotations

import json
import re

import pytest

from eval import robustness
from eval.metrics import ScoreContext
from eval.metrics.drivebench import official_prompts, parse_official_predictions, preprocess_answer, score_items
from eval.metrics.text import CocoText, java_problem

SETTINGS = ("clean", "fog", "text_only")


# --- the oracle: worldbench/drivebench @ 723908f2affe1d1602c51b748525c4fcd0904bc7, evaluate/utils.py
# (preprocess_answer) and evaluate/eval.py (EvaluationSuit.forward routing, eval_accuracy,
# eval_language via language_evaluation.CocoEvaluator = coco-caption PTB tokens + Bleu/Rouge/Cider),
# re-written here as a test oracle.
def oracle_letter(answer: str) -> str:
    answer = answer.strip().lower()
    for choice in "ABCD":
        if re.search(r"\b(" + choice.lower() + "|option " + choice.lower() + r")\b", answer):
            return choice
    return ""


def oracle_bucket(question_type: str, tag: list[int]) -> str | None:
    if question_type == "perception":
        if 2 in tag:
            return "perception_vqa"
        if 0 in tag:
            return "perception_mcq"
        raise NotImplementedError
    if question_type == "prediction":
        if 3 in tag:
            return "prediction_vqa"
        if 0 in tag:
            return None  # "not used for now"
        raise NotImplementedError
    if question_type == "planning" and 1 in tag:
        return "planning_vqa"
    if question_type == "behavior" and 0 in tag:
        return "behavior_mcq"
    raise NotImplementedError


def oracle_language(preds: list[str], gts: list[str]) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    res = tok.tokenize({i: [{"caption": p}] for i, p in enumerate(preds)})
    gt = tok.tokenize({i: [{"caption": g}] for i, g in enumerate(gts)})
    bleu, _ = Bleu(4).compute_score(gt, res, verbose=0)
    return {**{f"bleu_{i + 1}": b for i, b in enumerate(bleu)}, "rouge_l": Rouge().compute_score(gt, res)[0],
            "cider": Cider().compute_score(gt, res)[0]}


def official_records() -> list[dict]:
    """Prediction records as the official file holds them, with answers the preprocessing trips on."""
    mcq = [("A", " A. Going ahead."), ("B", "I think option b is right"), ("C", "The answer is C."),
           ("D", "a car is ahead, so D"), ("A", "none of them"), ("B", "B")]
    vqa = [("There is a white sedan to the front of the ego car.", "A white car is in front of the ego car."),
           ("Keep going at the same speed, high probability.", "Slow down because of the pedestrian."),
           ("Firstly notice <c1,CAM_FRONT,0.5,0.6>. It is moving.", "Notice the truck first; it is parked."),
           ("The ego vehicle should stop.", "The ego vehicle should stop for the red light.")]
    out = []
    for k, setting in enumerate(SETTINGS):
        base = {"scene_token": "a" * 32, "frame_token": f"{k:032x}", "setting": setting}
        for i, (gt, pred) in enumerate(mcq[k:] + mcq[:k]):
            qt = "perception" if i % 2 else "behavior"
            out.append({**base, "question_type": qt, "tag": [0], "question": f"Q{i}? A. x B. y C. z D. w",
                        "answer": gt, "pred": pred})
        for i, (gt, pred) in enumerate(vqa[k:] + vqa[:k]):
            qt, tag = [("perception", [2]), ("prediction", [3]), ("planning", [1]), ("perception", [2, 0])][i]
            out.append({**base, "question_type": qt, "tag": tag, "question": f"V{i}?", "answer": gt,
                        "pred": pred if setting != "text_only" else pred.split()[0]})
        out.append({**base, "question_type": "prediction", "tag": [0], "question": "Yes?", "answer": "Yes",
                    "pred": "No"})
    return out


def _items(records):
    from eval.metrics.drivebench import route

    return [{"setting": r["setting"], "task": route(r["question_type"], r["tag"]), "question": r["question"],
             "reference": r["answer"], "prediction": r["pred"], "desc": ""} for r in records]


@pytest.fixture(scope="module")
def text():
    t = CocoText(meteor=False)
    yield t
    t.close()


def test_preprocess_answer_matches_the_official_rule():
    for s in ["A", " a. going", "Option C", "so the answer is d", "bad", "b) stop", "A or B", "", "(c)"]:
        assert preprocess_answer(s) == oracle_letter(s), s


@pytest.mark.skipif(java_problem() is not None, reason="coco-caption's PTB tokenizer needs Java")
def test_scores_equal_the_official_evaluation_per_setting(text):
    records = official_records()
    got = score_items(_items(records), ScoreContext("drivebench", {}, None, None, text))
    for setting in SETTINGS:
        mine = [r for r in records if r["setting"] == setting]
        buckets: dict[str, list] = {}
        for r in mine:
            b = oracle_bucket(r["question_type"], r["tag"])
            if b:
                buckets.setdefault(b, []).append(r)
        for task in ("perception_mcq", "behavior_mcq"):
            hits = [oracle_letter(r["answer"]) == oracle_letter(r["pred"]) for r in buckets[task]]
            acc = sum(hits) / len(hits)
            assert got[f"{setting}.{task}.accuracy"]["value"] == pytest.approx(acc)
            assert got[f"{setting}.{task}.accuracy"]["n"] == len(buckets[task])
        for task in ("perception_vqa", "prediction_vqa", "planning_vqa"):
            expected = oracle_language([r["pred"] for r in buckets[task]], [r["answer"] for r in buckets[task]])
            for metric, v in expected.items():
                assert got[f"{setting}.{task}.{metric}"]["value"] == pytest.approx(v, abs=1e-9), (setting, task, metric)
        assert got[f"{setting}.unscored"]["value"] == 1
        assert got[f"{setting}.planning_vqa.gpt"]["status"] == "not computed"
    # the gaps compare each task's main metric with clean
    for task, metric in (("perception_mcq", "accuracy"), ("planning_vqa", "rouge_l")):
        clean = got[f"clean.{task}.{metric}"]["value"]
        assert got[f"gap.corrupted.{task}.{metric}"]["value"] == \
            pytest.approx(got[f"fog.{task}.{metric}"]["value"] - clean)
        assert got[f"gap.text_only.{task}.{metric}"]["value"] == \
            pytest.approx(got[f"text_only.{task}.{metric}"]["value"] - clean)


class FakeJudge:
    """Replies with a scoring sheet whose total depends on whether the prediction equals the answer."""

    class cfg:  # noqa: N801  (the attributes template_record reads)
        model, temperature, endpoint = "fake", 0.0, "http://judge"

    def __init__(self):
        self.users = []

    def rate(self, system, user, parse):
        self.users.append(user)
        reply = "1. Answer Correctness (50 points): 50\nTotal Score: 80\n" if "SAME" in user else "Total Score: 35"
        return parse(reply), reply


def test_gpt_score_through_the_judge_with_descriptions(tmp_path, text):
    its = [{"setting": "clean", "task": "planning_vqa", "question": "Q <c1,CAM_FRONT,0.1,0.2>?", "reference": "SAME",
            "prediction": "x", "desc": "white sedan."},
           {"setting": "clean", "task": "planning_vqa", "question": "Q2?", "reference": "r", "prediction": "y",
            "desc": ""}]
    judge = FakeJudge()
    got = score_items(its, ScoreContext("drivebench", {}, judge, None, text))
    assert got["clean.planning_vqa.gpt"]["value"] == pytest.approx((80 + 35) / 2)
    assert 'The visual description of the object in question: "white sedan."' in judge.users[0]
    # the official rubric file, read without executing it
    path = tmp_path / "prompts.py"
    names = ("PERCEPTION_MCQ_PROMPT", "PERCEPTION_VQA_PROMPT", "PREDICTION_VQA_PROMPT", "PLANNING_VQA_PROMPT",
             "BEHAVIOR_MCQ_PROMPT")
    path.write_text("\n".join(f'{n} = """{n}: Q={{QUESTION}} D={{DESC}} GT={{GT}} P={{PRED}}"""' for n in names)
                    + "\nimport os; os.remove(__file__)\n")
    prompts = official_prompts(str(path))
    assert prompts["planning_vqa"].format(question="q", desc="d", reference="g", prediction="p") == \
        "PLANNING_VQA_PROMPT: Q=q D=d GT=g P=p" and path.exists()


def test_official_prediction_file_scores_through_eval_score(tmp_path):
    from eval.submissions import score

    records = [{k: v for k, v in r.items() if k != "setting"} for r in official_records() if r["setting"] == "fog"]
    pred = tmp_path / "fog.json"
    pred.write_text(json.dumps(records))
    assert [r["pred"] for r in parse_official_predictions(pred)] == [r["pred"] for r in records]
    desc = tmp_path / "visual_description.json"
    desc.write_text(json.dumps({}))
    scores = score("drivebench", pred, desc, tmp_path / "out", meteor=False)
    metrics = scores["benchmarks"]["drivebench"]["metrics"]
    expected = sum(oracle_letter(r["answer"]) == oracle_letter(r["pred"]) for r in records
                   if r["question_type"] == "behavior") / 3
    assert metrics["fog.behavior_mcq.accuracy"]["value"] == pytest.approx(expected)
    assert scores["benchmarks"]["drivebench"]["submission"]["matched"] == len(records)
    bad = tmp_path / "clean.json"
    bad.write_text(json.dumps([{"question": "q"}]))
    with pytest.raises(ValueError, match="record 0 lacks"):
        parse_official_predictions(bad)


def test_robustness_figure_and_gaps_for_two_variants(tmp_path):
    def metrics(drop: float) -> dict:
        out = {}
        for s, factor in (("clean", 1.0), ("fog", 1 - drop), ("bright", 1 - drop / 2), ("text_only", 1 - 2 * drop)):
            for t in robustness.TASKS:
                key = "accuracy" if t.endswith("_mcq") else "rouge_l"
                out[f"{s}.{t}.{key}"] = {"value": 0.6 * factor, "n": 10}
        out.update(robustness.gaps(out, ["clean", "fog", "bright", "text_only"]))
        return out

    zs, ft = metrics(0.05), metrics(0.3)
    assert ft["gap.text_only.behavior_mcq.accuracy"]["value"] == pytest.approx(0.6 * -0.6)
    assert ft["gap.corrupted.planning_vqa.rouge_l"]["value"] == pytest.approx(0.6 * -(0.3 + 0.15) / 2)
    report = {"variants": ["zero_shot", "fine_tuned"], "benchmarks": [
        {"benchmark": "drivebench", "contamination": {"contaminated": True}, "metrics": {"zero_shot": zs,
                                                                                         "fine_tuned": ft}}]}
    path = robustness.plot(report, tmp_path / "robustness.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert any("gap.text_only.behavior_mcq.accuracy | -0.06 | -0.36" in line
               for line in robustness.markdown_rows(report))
    assert robustness.plot({"variants": ["a"], "benchmarks": [{"metrics": {"a": {"x.accuracy": {}}}}]},
                           tmp_path / "none.png") is None
