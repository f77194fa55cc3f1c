"""DriveBench as its `evaluate/eval.py` scores it (worldbench/drivebench @ 723908f), per setting.

Routing (`EvaluationSuit.forward`): perception with tag 2 is VQA, else with tag 0 MCQ;
prediction with tag 3 is VQA (tag 0 MCQ is "not used for now": counted, not scored);
planning with tag 1 is VQA; behavior with tag 0 is MCQ. Metrics:
- MCQ accuracy: reference and prediction both reduced to a letter by `preprocess_answer`
  (`evaluate/utils.py`): lower-cased, stripped, the first of A, B, C, D (in that order)
  whose `\\b(x|option x)\\b` pattern matches, else ""; correct when the two are equal.
- VQA language: BLEU-1..4, ROUGE-L and CIDEr of the task's corpus, one reference each,
  as `language_evaluation.CocoEvaluator(coco_types=["BLEU", "ROUGE_L", "CIDEr"])` computes
  them (coco-caption, PTB tokens; eval/metrics/text.py), 0-1 scale.
- GPT score: the judge rates each answer 0-100 with the task's rubric (`evaluate/prompts.py`:
  the question, the reference, the prediction and, where the rubric has one, the visual
  description of the object the question refers to, stored by the converter as
  `meta.desc`); the score is the integer after "Total Score:" (`request.py`), averaged.
  Our rubrics are our own wording of the official criteria and points; metric_args
  `official_prompts` may name a local `evaluate/prompts.py` to use its text instead (read as
  string constants, never executed). Without a judge: "not computed".
Every metric is computed per setting (`meta.setting`: clean, each corruption, text_only) as
`<setting>.<task>.<metric>`; `gap.corrupted.*` and `gap.text_only.*` (eval/robustness.py)
compare each task's main metric with the clean setting.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from eval.metrics.captions import answers
from eval.metrics.core import missing, scorer, value
from eval.metrics.judged import judged_mean
from eval.metrics.text import text_entries
from eval.robustness import TASKS, gaps

CHOICES = {c: re.compile(rf"\b({c.lower()}|option {c.lower()})\b") for c in "ABCD"}
LANGUAGE = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider")
TOTAL_RE = re.compile(r"Total Score:\s*(\d{1,3})\b")
JUDGE_SYSTEM = "You rate answers by how close they come to the correct answer."
_SHEET = ("\n\nFill in the scoring sheet below, one line per criterion with its points, then the total as "
          "'Total Score: <0-100>', then a brief summary of why.\n{sheet}\nTotal Score: \n\nBrief Summary: ")
_HEAD = ("Score the predicted answer from 0 to 100; a higher score means it agrees more closely with the correct "
         "answer and its reasoning is better supported. Be strict: give full points for a criterion only when it is "
         "met without any error, and take points off for small mistakes, omissions or unclear wording. The 100 "
         "points are split over these criteria:\n")
_NO_EXPLANATION = "\nWithout any explanation, criteria 2 to 5 get 0 points."


def _rubric(criteria: list[tuple[str, int, str]], fields: str, no_explanation: bool = False) -> str:
    lines = [f"{i + 1}. {name} ({pts} points): {what}" for i, (name, pts, what) in enumerate(criteria)]
    sheet = "\n".join(f"{i + 1}. {name} ({pts} points):" for i, (name, pts, _) in enumerate(criteria))
    return (_HEAD + "\n".join(lines) + (_NO_EXPLANATION if no_explanation else "") + "\n\n" + fields +
            _SHEET.format(sheet=sheet))


_Q, _GT, _PRED, _DESC = ('The question: "{question}"\n', 'The correct answer: "{reference}"\n',
                         'The predicted answer (and explanation, if any): "{prediction}"\n',
                         'The visual description of the object in question: "{desc}"\n')
# our wording of evaluate/prompts.py's rubrics: same criteria, same points, same output line
PROMPTS = {
    "perception_mcq": _rubric([
        ("Answer Correctness", 50, "50 if the chosen option is exactly the correct one, else 0, however good the "
                                   "explanation."),
        ("Object Recognition", 10, "up to 5 for finding all relevant objects and up to 5 for describing them "
                                   "correctly (colour, material, size, shape)."),
        ("Object Location and Orientation", 15, "up to 5 each for the position relative to the ego vehicle, for "
                                                "the conditions that affect visibility and for the situational "
                                                "context (obstacles, traffic, hazards)."),
        ("Environmental Condition Awareness", 15, "for taking weather, lighting or sensor limits into account."),
        ("Clarity of Reasoning", 10, "up to 5 for clear, logical reasoning and up to 5 for correct grammar.")],
        _Q + _DESC + _GT + _PRED, no_explanation=True),
    "perception_vqa": _rubric([
        ("Action Alignment", 20, "how exactly the predicted action (forward, turn left, turn right) matches; 0 "
                                 "without one."),
        ("Motion Precision", 20, "how closely the predicted motion (speed up, slow down) matches in kind and "
                                 "degree; 0 without one."),
        ("Driving Context Appropriateness", 15, "how well the answer fits the driving context of the correct "
                                                "answer."),
        ("Situational Awareness", 15, "awareness of the traffic participants and obstacles that matter."),
        ("Conciseness and Clarity", 20, "short, clear, easy to follow."),
        ("Grammar", 10, "up to 5 for logical flow and up to 5 for grammatical accuracy.")],
        _Q + _PRED + _GT),
    "prediction_vqa": _rubric([
        ("Object Identification and Priority Order", 20, "the right objects in the right order of priority."),
        ("Object Category and Visual Description Accuracy", 20, "each object's category and visual attributes."),
        ("State of the Object", 15, "moving or stationary, as in the correct answer."),
        ("Recommended Action for Ego Vehicle", 15, "the right action of the ego vehicle for each object."),
        ("Logical Flow and Reasonableness of Prediction", 20, "a consistent, step-by-step rationale."),
        ("Clarity and Grammar", 10, "up to 5 for structure and readability and up to 5 for grammar.")],
        _Q + _GT + _PRED),
    "planning_vqa": _rubric([
        ("Action Prediction Accuracy", 40, "how exactly the ego vehicle's action (keep going, turn, accelerate, "
                                           "decelerate) matches, above all where safety is at stake."),
        ("Reasoning and Justification", 20, "a clear, logical reason for the action."),
        ("Probability or Confidence Level", 15, "a plausible probability that the action is safe or feasible."),
        ("Contextual Awareness and Safety Considerations", 15, "obstacles, traffic participants and safety."),
        ("Conciseness and Clarity", 10, "short and clear; 0 without an explanation.")],
        _Q + _DESC + _GT + _PRED),
    "behavior_mcq": _rubric([
        ("Answer Correctness", 50, "50 if the chosen option is exactly the correct one, else 0."),
        ("Behavioral Understanding and Detail", 15, "the ego vehicle's direction and speed as in the correct "
                                                    "answer."),
        ("Reasoning and Justification", 15, "a clear reason why this behavior fits (road, traffic, cues)."),
        ("Contextual Relevance", 10, "the road conditions and objects that bear on the behavior."),
        ("Clarity and Grammar", 10, "concise, coherent, grammatical.")],
        _Q + _GT + _PRED, no_explanation=True),
}
# evaluate/prompts.py's constant per task, for metric_args official_prompts
OFFICIAL_NAMES = {"perception_mcq": "PERCEPTION_MCQ_PROMPT", "perception_vqa": "PERCEPTION_VQA_PROMPT",
                  "prediction_vqa": "PREDICTION_VQA_PROMPT", "planning_vqa": "PLANNING_VQA_PROMPT",
                  "behavior_mcq": "BEHAVIOR_MCQ_PROMPT"}
OFFICIAL_FIELDS = {"{QUESTION}": "{question}", "{GT}": "{reference}", "{PRED}": "{prediction}", "{DESC}": "{desc}"}


def preprocess_answer(text: str) -> str:
    """The option letter in a text, as `evaluate/utils.py:preprocess_answer` finds it ("" for none)."""
    low = text.strip().lower()
    return next((c for c, pattern in CHOICES.items() if pattern.search(low)), "")


def route(question_type: str, tag: list[int]) -> str | None:
    """`EvaluationSuit.forward`'s bucket as our task name, "prediction_mcq" (unscored), or None."""
    if question_type == "perception":
        return "perception_vqa" if 2 in tag else "perception_mcq" if 0 in tag else None
    if question_type == "prediction":
        return "prediction_vqa" if 3 in tag else "prediction_mcq" if 0 in tag else None
    if question_type == "planning":
        return "planning_vqa" if 1 in tag else None
    if question_type == "behavior":
        return "behavior_mcq" if 0 in tag else None
    return None


def total_score(reply: str) -> float | None:
    m = TOTAL_RE.search(reply)
    return float(m.group(1)) if m else None


def official_prompts(path: str) -> dict[str, str]:
    """The rubric strings of a local `evaluate/prompts.py`, with our field names (never executed)."""
    consts = {}
    for node in ast.parse(Path(path).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            consts.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    out = {}
    for task, name in OFFICIAL_NAMES.items():
        text = consts[name].replace("{", "{{").replace("}", "}}")
        for theirs, ours in OFFICIAL_FIELDS.items():
            text = text.replace("{" + theirs + "}", ours)
        out[task] = text
    return out


def items(rows: list[dict]) -> list[dict]:
    """One item per question: setting, task, question, reference, prediction, desc."""
    out = []
    for row in rows:
        meta, preds = row["sample"]["meta"], answers(row)
        for k, question in enumerate(row["questions"]):
            out.append({"setting": meta.get("setting", "clean"), "task": route(meta["question_type"], meta["tag"]),
                        "question": question, "reference": row["references"][k][0], "prediction": preds[k],
                        "desc": meta.get("desc") or ""})
    return out


def score_items(its: list[dict], ctx) -> dict:
    """The per-setting entries and the gaps, from items (our rows or an official prediction file)."""
    out: dict[str, dict] = {}
    settings = list(dict.fromkeys(i["setting"] for i in its))
    prompts = official_prompts(ctx.args["official_prompts"]) if ctx.args.get("official_prompts") else PROMPTS
    prompts = {**prompts, **ctx.args.get("judge_prompts", {})}
    corpora = {}
    for setting in settings:
        mine = [i for i in its if i["setting"] == setting]
        unscored = sum(i["task"] in (None, "prediction_mcq") for i in mine)
        out[f"{setting}.unscored"] = value(unscored, unscored, unit="questions",
                                           note="prediction MCQ: not used by evaluate/eval.py")
        for task in TASKS:
            t_items = [i for i in mine if i["task"] == task]
            key = f"{setting}.{task}"
            if task.endswith("_mcq"):
                out[f"{key}.accuracy"] = value(
                    sum(preprocess_answer(i["reference"]) == preprocess_answer(i["prediction"]) for i in t_items)
                    / len(t_items), len(t_items)) if t_items else missing("no questions", 0)
            elif t_items:
                corpora[key] = ([i["prediction"] for i in t_items], [[i["reference"]] for i in t_items])
            out[f"{key}.gpt"] = judged_mean(ctx, t_items, JUDGE_SYSTEM, prompts[task], total_score, "0-100")[0] \
                if t_items else missing("no questions", 0)
    if corpora:
        text = text_entries(ctx, corpora, note="coco-caption, one reference (CocoEvaluator)")
        out.update({k: v for k, v in text.items() if k.rsplit(".", 1)[1] in LANGUAGE})
    out.update(gaps(out, settings))
    return out


@scorer("drivebench")
def score_drivebench(rows: list[dict], ctx) -> dict:
    return score_items(items(rows), ctx)


# ---------------------------------------------------------------- the official prediction file
PRED_FIELDS = ("scene_token", "frame_token", "question_type", "question", "answer", "tag", "pred")
# file stems of script/llava1.5-7b.sh's outputs -> our settings ("noimage" is text_only)
STEM_SETTINGS = {"noimage": "text_only", "clean": "clean"}
NO_DESC_QUESTION = "In this scenario, what are safe actions to take for the ego vehicle?"


def parse_official_predictions(path: str | Path) -> list[dict]:
    """The records of an official prediction file (`docs/GET_STARTED.md`: the question records
    with a `pred` field); raises ValueError naming the first bad record."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: not a JSON list of prediction records")
    for i, rec in enumerate(data):
        bad = [f for f in PRED_FIELDS if not isinstance(rec, dict) or f not in rec]
        if bad:
            raise ValueError(f"{path}: record {i} lacks {', '.join(bad)}")
        if not isinstance(rec["tag"], list) or not all(isinstance(t, str) for t in (rec["question"], rec["answer"])):
            raise ValueError(f"{path}: record {i} needs a tag list and question/answer strings")
        if not isinstance(rec["pred"], str):
            rec["pred"] = "" if rec["pred"] is None else str(rec["pred"])
    return data


def setting_of(path: str | Path) -> str:
    """The setting an official prediction file holds, from its name (`clean.json`, `fog.json`, `noimage.json`)."""
    stem = Path(path).name.split(".")[0].lower()
    return STEM_SETTINGS.get(stem, stem)


def official_desc(descriptions: dict, scene: str, frame: str, question: str) -> str | None:
    """`extract_visual_description` (evaluate/eval.py); None where it finds nothing (it raises)."""
    if question == NO_DESC_QUESTION:
        return "No visual description needed for this question."
    match = re.search(r"<(.*)>", question)
    if not match:
        return None
    prefix = "<" + ",".join(match.group(1).split(",")[:2])
    infos = descriptions.get(scene, {}).get("key_frames", {}).get(frame, {}).get("key_object_infos", {})
    key = next((k for k in infos if k.startswith(prefix)), None)
    return str(infos[key].get("Visual_description", "")).lower() if key else None
