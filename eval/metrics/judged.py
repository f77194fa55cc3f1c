"""Judged scores through an LLM judge, and CODA-LM's three tasks.

`judged_mean` asks the judge once per item, parses a number from each reply, and reports
the mean over parsed replies with the count of failed or unparsable ones beside it (CODA-LM's
scripts silently skip those, which shrinks the denominator) and the judge record (model,
temperature, URL, prompt template and its sha1). Without a judge the metric is
"not computed", never 0.

CODA-LM (DLUT-LYZ/CODA-LM evaluation/stage{1,2,3}_eval_batch.py): the judge rates each
answer 1-10 against the reference, replying `Rating: [[k]]`; general perception and driving
suggestion are the mean rating over images, regional perception the mean over all objects
(micro), with per super-class means beside it. The prompts here are our own wording of
the same criteria, without the official few-shot examples: judged numbers are comparable
within one judge and prompt, not with the paper's (a benchmark YAML can replace them with
metric_args `judge_prompts`).
"""
from __future__ import annotations

import re
from collections import defaultdict

from eval.judge import template_record
from eval.metrics.captions import answers
from eval.metrics.core import missing, scorer, value

CODA_SYSTEM = (
    "You are an impartial judge of answers about driving scenes. You get a question about a traffic scene, "
    "a reference answer written by a human expert and an assistant's answer. Judge how well the assistant's "
    "answer agrees with the reference. {criteria} Give a short justification, then output your rating on a "
    "scale of 1 to 10 strictly in the format: Rating: [[k]]")
CODA_CRITERIA = {
    "general_perception": "Reward correctly identified objects and correct reasons why they matter for the ego "
                          "car; penalise objects that are not in the reference (hallucinations) and reasons that "
                          "contradict it.",
    "driving_suggestion": "Reward suggestions that are safe, specific and consistent with the reference; penalise "
                          "suggestions that contradict it or ignore the hazards it names.",
    "regional_perception": "Judge the similarity of the object description and of the explanation of its "
                           "influence on the ego car to the reference.",
}
CODA_USER = "[Question]\n{question}\n\n[Reference answer]\n{reference}\n\n[Assistant's answer]\n{prediction}"
SUPER_CLASSES = {
    "vehicle": ("car", "truck", "bus", "van", "vehicle", "trailer", "tricycle", "motorcycle", "machinery", "tanker"),
    "vru": ("pedestrian", "cyclist", "motorcyclist", "person", "rider", "bicycle", "child", "animal", "dog"),
    "traffic_sign": ("sign",), "traffic_light": ("light",), "traffic_cone": ("cone",),
    "barrier": ("barrier", "bollard", "barricade", "fence", "pole"),
}


def rating_10(reply: str) -> float | None:
    m = re.search(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", reply)
    return float(m.group(1)) if m and 1 <= float(m.group(1)) <= 10 else None


def judged_mean(ctx, items: list[dict], system: str, user: str, parse, unit: str) -> tuple[dict, list]:
    """(entry, per-item scores with None for failures); items hold the template's fields."""
    if ctx.judge is None:
        return missing("no judge (pass --judge-url and --judge-model)", len(items)), []
    record = template_record(ctx.judge.cfg, system, user)
    scores, first_error = [], ""
    for item in items:
        score, reply = ctx.judge.rate(system, user.format(**item), parse)
        scores.append(score)
        if score is None and not first_error:
            first_error = reply[:200]
    ok = [s for s in scores if s is not None]
    failures = len(scores) - len(ok)
    if not ok:
        return missing(f"no usable judge reply ({failures} failed; first: {first_error})", len(items),
                       judge=record, failures=failures), scores
    return value(sum(ok) / len(ok), len(ok), unit=unit, failures=failures, judge=record,
                 note=f"mean over {len(ok)} judged items; {failures} failed or unparsable replies excluded"), scores


def super_class(category: str) -> str:
    low = category.lower()
    return next((sc for sc, words in SUPER_CLASSES.items() if any(w in low for w in words)), "miscellaneous")


@scorer("codalm")
def score_codalm(rows: list[dict], ctx) -> dict:
    prompts = ctx.args.get("judge_prompts", {})
    out = {}
    for task in CODA_CRITERIA:
        task_rows = [r for r in rows if r["task"].endswith(task) and r["references"][0][0].strip()]
        if not task_rows:
            out[task] = missing("no samples with a reference answer (CODA-LM Test ships none)")
            continue
        p = prompts.get(task, {})
        system = p.get("system", CODA_SYSTEM.format(criteria=CODA_CRITERIA[task]))
        user = p.get("user", CODA_USER)
        items = [{"question": r["questions"][0], "reference": r["references"][0][0], "prediction": answers(r)[0]}
                 for r in task_rows]
        out[task], scores = judged_mean(ctx, items, system, user, rating_10, "1-10")
        if task == "regional_perception" and scores:
            out.update(_by_super_class(task_rows, scores, out[task].get("judge")))
    return out


def _by_super_class(rows: list[dict], scores: list, judge: dict | None) -> dict:
    groups: dict[str, list[float]] = defaultdict(list)
    for row, score in zip(rows, scores):
        if score is not None:
            groups[super_class(str(row["sample"]["meta"].get("category_name", "")))].append(score)
    return {f"regional_perception.{sc}": value(sum(v) / len(v), len(v), unit="1-10", judge=judge)
            for sc, v in sorted(groups.items())}
