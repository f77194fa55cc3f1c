"""DriveBench scoring pieces by hand: rubric text and points, routing, the judge's total, the
official prompt file, items per question, per-setting entries and the official prediction file.

Rules from worldbench/drivebench@723908f: evaluate/eval.py (`EvaluationSuit.forward` routing,
`extract_visual_description`), evaluate/utils.py (`preprocess_answer`), evaluate/request.py
(`extract_answer`: r"Total Score:\\s*(\\d{1,3})\\b"), evaluate/prompts.py (criteria and points,
100 in all). The COCO metrics are tested in test_text_mutants.py: a recording stand-in scores here.
"""
from __future__ import annotations

import json
import re

import pytest

from eval.judge import Judge, JudgeConfig, template_record
from eval.metrics import ScoreContext
from eval.metrics.drivebench import (
    _HEAD,
    _NO_EXPLANATION,
    JUDGE_SYSTEM,
    NO_DESC_QUESTION,
    PROMPTS,
    _rubric,
    items,
    official_desc,
    official_prompts,
    parse_official_predictions,
    preprocess_answer,
    route,
    score_drivebench,
    score_items,
    setting_of,
    total_score,
)
from eval.robustness import TASKS


class RecordingText:
    """CocoText's interface: records the corpora and gives every corpus the same scores."""

    SCORES = {"bleu_1": 0.5, "bleu_2": 0.4, "bleu_3": 0.3, "bleu_4": 0.2, "rouge_l": 0.6, "cider": 1.1,
              "meteor": 0.3}

    def __init__(self):
        self.corpora = None

    def score(self, corpora):
        self.corpora = corpora
        return {name: dict(self.SCORES) for name, (hyps, _) in corpora.items() if hyps}


class ScriptedJudge(Judge):
    """A Judge whose endpoint replies "Total Score: <n>" with n = 90 when the prediction says
    "good", else 30 (no HTTP)."""

    def __init__(self):
        super().__init__(JudgeConfig("http://judge.test/v1", "m"))
        self.asked = []

    def _post(self, messages):
        self.asked.append(messages)
        return "Total Score: 90" if "good" in messages[1]["content"] else "Total Score: 30\nsummary"


def test_rubric_lists_criteria_fields_and_the_scoring_sheet():
    text = _rubric([("First", 60, "does x."), ("Second", 40, "does y.")], "F: {question}\n")
    sheet = ("\n\nFill in the scoring sheet below, one line per criterion with its points, then the total as "
             "'Total Score: <0-100>', then a brief summary of why.\n1. First (60 points):\n2. Second (40 points):\n"
             "Total Score: \n\nBrief Summary: ")
    assert text == _HEAD + "1. First (60 points): does x.\n2. Second (40 points): does y.\n\nF: {question}\n" + sheet
    strict = _rubric([("First", 100, "all.")], "")
    assert _rubric([("First", 100, "all.")], "", no_explanation=True) == strict.replace(
        "1. First (100 points): all.\n", "1. First (100 points): all." + _NO_EXPLANATION + "\n", 1)


@pytest.mark.parametrize("task, fields", [
    ("perception_mcq", ("question", "desc", "reference", "prediction")),
    ("perception_vqa", ("question", "prediction", "reference")), ("prediction_vqa", ("question", "reference",
                                                                                       "prediction")),
    ("planning_vqa", ("question", "desc", "reference", "prediction")),
    ("behavior_mcq", ("question", "reference", "prediction"))])
def test_official_points_add_up_to_100_and_fields_in_order(task, fields):
    prompt = PROMPTS[task]
    head = prompt.split("\n\nFill in the scoring sheet")[0]
    assert sum(int(p) for p in re.findall(r"^\d+\. .* \((\d+) points\): ", head, flags=re.M)) == 100
    assert re.findall(r"\{(\w+)\}", prompt) == list(fields)
    assert (_NO_EXPLANATION in prompt) == task.endswith("_mcq")


@pytest.mark.parametrize("text, letter", [
    ("B and A", "A"),                 # the first of A..D that matches, not the first in the text
    ("  Option D ", "D"), ("OPTION c.", "C"), ("a car ahead", "A"), ("bad", ""), ("", ""), ("d)", "D"),
    ("option e", ""), ("abcd", "")])
def test_preprocess_answer(text, letter):
    assert preprocess_answer(text) == letter


@pytest.mark.parametrize("question_type, tag, task", [
    ("perception", [2], "perception_vqa"), ("perception", [0, 2], "perception_vqa"), ("perception", [0], "perception_mcq"),
    ("perception", [1], None), ("prediction", [3, 0], "prediction_vqa"), ("prediction", [0], "prediction_mcq"),
    ("prediction", [2], None), ("planning", [1], "planning_vqa"), ("planning", [0], None),
    ("behavior", [0], "behavior_mcq"), ("behavior", [1], None), ("other", [0, 1, 2, 3], None)])
def test_route(question_type, tag, task):
    assert route(question_type, tag) == task


@pytest.mark.parametrize("reply, score", [
    ("1. x (50 points): 50\nTotal Score: 85\nBrief", 85.0), ("Total Score:\n 7 points", 7.0),
    ("Total Score: 42.5", 42.0), ("Total Score: 1000", None), ("total score: 5", None), ("no score", None)])
def test_total_score(reply, score):
    assert total_score(reply) == score


NAMES = ("PERCEPTION_MCQ_PROMPT", "PERCEPTION_VQA_PROMPT", "PREDICTION_VQA_PROMPT", "PLANNING_VQA_PROMPT",
         "BEHAVIOR_MCQ_PROMPT")


def test_official_prompts_read_string_constants_with_our_field_names(tmp_path):
    path = tmp_path / "prompts.py"
    body = [f'{n} = "{n} {{QUESTION}}|{{DESC}}|{{GT}}|{{PRED}} {{\\"json\\": 1}} {{OTHER}}"' for n in NAMES[1:]]
    path.write_text("\n".join([f'X = {NAMES[0]} = "both {{GT}}"', "N = 5", "A, B = 'a', 'b'",
                               'T: str = "annotated"', *body]) + "\n")
    prompts = official_prompts(str(path))
    assert set(prompts) == set(PROMPTS)
    assert prompts["perception_mcq"].format(reference="g") == "both g"
    assert prompts["planning_vqa"].format(question="q", desc="d", reference="g", prediction="p") == \
        'PLANNING_VQA_PROMPT q|d|g|p {"json": 1} {OTHER}'
    path.write_text('PERCEPTION_MCQ_PROMPT = "x"\n')
    with pytest.raises(KeyError):
        official_prompts(str(path))


def db_row(questions, refs, preds, qt="planning", tag=(1,), marker="", **meta):
    return {"questions": questions, "references": [[r] for r in refs], "prediction": preds,
            "prompt": {"answer_marker": marker},
            "sample": {"meta": {"question_type": qt, "tag": list(tag), **meta}}}


def test_items_one_per_question():
    rows = [db_row(["q1", "q2"], ["r1", "r2"], [" a ", "x Answer: b"], marker="Answer:", setting="fog", desc="D"),
            db_row(["q3"], ["r3"], ["c"], qt="behavior", tag=(0,), desc=None)]
    assert items(rows) == [
        {"setting": "fog", "task": "planning_vqa", "question": "q1", "reference": "r1", "prediction": "a", "desc": "D"},
        {"setting": "fog", "task": "planning_vqa", "question": "q2", "reference": "r2", "prediction": "b", "desc": "D"},
        {"setting": "clean", "task": "behavior_mcq", "question": "q3", "reference": "r3", "prediction": "c",
         "desc": ""}]


def item(setting, task, reference, prediction, question="q", desc=""):
    return {"setting": setting, "task": task, "question": question, "reference": reference,
            "prediction": prediction, "desc": desc}


ITEMS = [item("clean", "behavior_mcq", "A", "a. go"), item("clean", "behavior_mcq", "B", "C"),
         item("clean", "planning_vqa", "stop", "good stop", desc="red car"),
         item("clean", "prediction_mcq", "Yes", "No"), item("clean", None, "x", "y"),
         item("fog", "behavior_mcq", "D", "option d"), item("fog", "planning_vqa", "go", "bad go"),
         item("fog", "perception_vqa", "car", "good car")]


def test_score_items_per_setting_with_judge_and_gaps():
    text, judge = RecordingText(), ScriptedJudge()
    out = score_items(ITEMS, ScoreContext("drivebench", {}, judge=judge, text=text))
    assert text.corpora == {"clean.planning_vqa": (["good stop"], [["stop"]]),
                            "fog.planning_vqa": (["bad go"], [["go"]]), "fog.perception_vqa": (["good car"], [["car"]])}
    assert out["clean.unscored"] == {"value": 2.0, "n": 2, "status": "computed", "unit": "questions",
                                     "note": "prediction MCQ: not used by evaluate/eval.py"}
    assert out["fog.unscored"]["value"] == 0.0
    assert out["clean.behavior_mcq.accuracy"] == {"value": 0.5, "n": 2, "status": "computed"}
    assert out["fog.behavior_mcq.accuracy"] == {"value": 1.0, "n": 1, "status": "computed"}
    assert out["clean.perception_mcq.accuracy"] == {"value": None, "n": 0, "status": "not computed",
                                                    "note": "no questions"}
    assert out["clean.perception_vqa.gpt"] == {"value": None, "n": 0, "status": "not computed", "note": "no questions"}
    assert out["clean.planning_vqa.rouge_l"] == {"value": 0.6, "n": 1, "status": "computed",
                                                 "note": "coco-caption, one reference (CocoEvaluator)"}
    assert "clean.planning_vqa.meteor" not in out and "clean.perception_vqa.bleu_1" not in out
    gpt = out["clean.planning_vqa.gpt"]
    assert gpt["value"] == 90.0 and gpt["n"] == 1 and gpt["unit"] == "0-100"
    assert gpt["judge"] == template_record(judge.cfg, JUDGE_SYSTEM, PROMPTS["planning_vqa"])
    assert out["clean.behavior_mcq.gpt"]["value"] == 30.0 and out["clean.behavior_mcq.gpt"]["n"] == 2
    assert out["fog.perception_vqa.gpt"]["value"] == 90.0
    planning = PROMPTS["planning_vqa"].format(question="q", desc="red car", reference="stop", prediction="good stop")
    assert [JUDGE_SYSTEM, planning] in [[m[0]["content"], m[1]["content"]] for m in judge.asked]
    # gaps: the main metric per task (accuracy; the judge's score where every setting has one), fog minus clean
    assert out["gap.corrupted.behavior_mcq.accuracy"]["value"] == pytest.approx(0.5)
    assert out["gap.corrupted.planning_vqa.gpt"]["value"] == pytest.approx(30 - 90)
    assert out["gap.text_only.behavior_mcq.accuracy"]["value"] is None
    settings_keys = [k for k in out if not k.startswith("gap.")]
    assert settings_keys.index("clean.unscored") < settings_keys.index("fog.unscored")
    assert {k.split(".", 1)[1] for k in out if k.startswith("fog.") and k.count(".") == 2} >= {
        f"{t}.gpt" for t in TASKS}


def test_prompts_from_the_official_file_and_per_task_overrides(tmp_path):
    path = tmp_path / "prompts.py"
    path.write_text("\n".join(f'{n} = "{n}: {{QUESTION}} -> {{PRED}}"' for n in NAMES) + "\n")
    judge = ScriptedJudge()
    args = {"official_prompts": str(path), "judge_prompts": {"behavior_mcq": "mine: {prediction}"}}
    out = score_items(ITEMS[:3], ScoreContext("drivebench", args, judge=judge, text=RecordingText()))
    users = [m[1]["content"] for m in judge.asked]
    assert users == ["PLANNING_VQA_PROMPT: q -> good stop", "mine: a. go", "mine: C"]     # tasks in TASKS order
    assert out["clean.planning_vqa.gpt"]["judge"]["prompt"]["user"] == "PLANNING_VQA_PROMPT: {question} -> {prediction}"


def test_no_vqa_item_asks_no_text_scorer():
    text = RecordingText()
    out = score_items(ITEMS[:2], ScoreContext("drivebench", {}, text=text))
    assert text.corpora is None and out["clean.behavior_mcq.gpt"]["status"] == "not computed"
    assert score_drivebench([db_row(["q"], ["A"], ["A"], qt="behavior", tag=(0,))],
                            ScoreContext("drivebench", {}, text=text))["clean.behavior_mcq.accuracy"]["value"] == 1.0


def test_parse_official_predictions(tmp_path):
    rec = {"scene_token": "s", "frame_token": "f", "question_type": "behavior", "question": "q", "answer": "A",
           "tag": [0], "pred": None}
    path = tmp_path / "clean.json"
    path.write_text(json.dumps([rec, {**rec, "pred": 5}, {**rec, "pred": "B"}]))
    assert [r["pred"] for r in parse_official_predictions(path)] == ["", "5", "B"]
    for data, why in (({"a": 1}, "not a JSON list of prediction records"),
                      ([rec, ["x"]], "record 1 lacks scene_token, frame_token, question_type, question, answer, "
                                     "tag, pred"),
                      ([{k: v for k, v in rec.items() if k not in ("tag", "answer")}], "record 0 lacks answer, tag"),
                      ([{**rec, "tag": 0}], "record 0 needs a tag list and question/answer strings"),
                      ([{**rec, "question": 1}], "record 0 needs a tag list"),
                      ([{**rec, "answer": None}], "record 0 needs a tag list")):
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=re.escape(f"{path}: {why}")):
            parse_official_predictions(path)


def test_setting_of_file_names():
    assert setting_of("out/noimage.json") == "text_only" and setting_of("Clean.json") == "clean"
    assert setting_of("a.b/Motion_Blur.v2.json") == "motion_blur" and setting_of("fog") == "fog"


def test_official_desc_finds_the_object_by_its_first_two_fields():
    infos = {"<c1,CAM_FRONT,10.0,20.0>": {"Visual_description": "White SEDAN."}, "<c2,CAM_BACK,1.0,2.0>": {}}
    desc = {"s": {"key_frames": {"f": {"key_object_infos": infos}}}}
    assert official_desc(desc, "s", "f", NO_DESC_QUESTION) == "No visual description needed for this question."
    assert official_desc(desc, "s", "f", "What about <c1,CAM_FRONT,10.5,20.5>?") == "white sedan."
    assert official_desc(desc, "s", "f", "Is <c2,CAM_BACK,1.0,2.0> moving?") == ""
    assert official_desc(desc, "s", "f", "Is <c3,CAM_FRONT,1.0,2.0> moving?") is None
    assert official_desc(desc, "s", "f", "No object here?") is None
    assert official_desc(desc, "t", "f", "What about <c1,CAM_FRONT,1.0,2.0>?") is None
    assert official_desc(desc, "s", "g", "What about <c1,CAM_FRONT,1.0,2.0>?") is None
    assert official_desc({"s": {}}, "s", "f", "What about <c1,CAM_FRONT,1.0,2.0>?") is None
    assert official_desc({"s": {"key_frames": {"f": {}}}}, "s", "f", "What about <c1,CAM_FRONT,1.0,2.0>?") is None
    # greedy <(.*)>: the first two fields of the first object named
    assert official_desc(desc, "s", "f", "Is <c1,CAM_FRONT,0.0,0.0> near <c2,CAM_BACK,1.0,2.0>?") == "white sedan."
