"""Reference-based text scores: generic captions/QA, questions picked by their text (BDD-X,
DRAMA), BDD-X control signals, and LingoQA (both references; Lingo-Judge with local weights).

`text`: every question with a reference answer is a caption; one corpus for the benchmark
(metric_args `text_by_task: true` adds one per task; `text_tasks` restricts the tasks).
`captions`: metric_args `turns` maps a name to a text (or a list of texts) that
identifies the question ("action": "What is the action of ego car?"); each name is its own corpus, scored against
`meta.references[name]` when the sample has it (BDD-X's COCO references) and else the
question's answer. Names listed in `yes_no` are scored as yes/no accuracy instead (DRAMA's
risk question: the first yes/no word of the answer against the reference's).
`control_signal`: BDD-X speed and course as ADAPT / RAG-Driver score them
(RAG-Driver evaluate.py): RMSE and A_sigma, the share of |pred - gt| < sigma for sigma in
0.1, 0.5, 1, 5, 10; the answer is read as evaluate.py reads it ("Speed: <v> Course: <c>":
the number after the first ": " and the one after the last). A reply it cannot read is a
counted failure, left out of RMSE and A_sigma (the official script would crash).
`lingoqa`: BLEU/METEOR/CIDEr against both references (the repository ships no script for
them), and Lingo-Judge (wayveai/LingoQA benchmark/judge.py, evaluate.py) when a local
weights directory is given: per question the classifier's largest logit over the
references, correct when > 0; the score is the percentage correct.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from eval.metrics.core import missing, scorer, value
from eval.metrics.text import text_entries
from eval.prompting import extract_answer

SIGMAS = (0.1, 0.5, 1, 5, 10)


def answers(row: dict) -> list[str]:
    marker = row.get("prompt", {}).get("answer_marker", "")
    return [extract_answer(p, marker) for p in row["prediction"]]


@scorer("text")
def score_text(rows: list[dict], ctx) -> dict:
    tasks = ctx.args.get("text_tasks")
    corpora: dict[str, tuple[list[str], list[list[str]]]] = {"": ([], [])}
    for row in rows:
        if tasks and row["task"] not in tasks:
            continue
        for hyp, refs in zip(answers(row), row["references"]):
            refs = [r for r in refs if r.strip()]
            if not refs:
                continue
            names = [""] + ([row["task"]] if ctx.args.get("text_by_task") else [])
            for name in names:
                corpora.setdefault(name, ([], []))
                corpora[name][0].append(hyp)
                corpora[name][1].append(refs)
    if not corpora[""][0]:
        return {"cider": missing("no question has a reference answer")}
    return text_entries(ctx, corpora)


def turn_index(questions: list[str], marker) -> int | None:
    """The first question containing the marker (or any of a list of markers)."""
    markers = [marker] if isinstance(marker, str) else list(marker)
    return next((i for i, q in enumerate(questions) if any(m in q for m in markers)), None)


def yes_no(text: str) -> str | None:
    m = re.search(r"\b(yes|no)\b", text.lower())
    return m.group(1) if m else None


@scorer("captions")
def score_captions(rows: list[dict], ctx) -> dict:
    turns: dict[str, str] = ctx.args.get("turns", {})
    binary = set(ctx.args.get("yes_no", []))
    corpora: dict[str, tuple[list[str], list[list[str]]]] = {n: ([], []) for n in turns if n not in binary}
    flags: dict[str, list[bool]] = {n: [] for n in turns if n in binary}
    for row in rows:
        texts = answers(row)
        meta_refs = row["sample"].get("meta", {}).get("references")
        for name, marker in turns.items():
            k = turn_index(row["questions"], marker)
            if k is None:
                continue
            refs = meta_refs.get(name) if isinstance(meta_refs, dict) and meta_refs.get(name) else row["references"][k]
            if name in binary:
                flags[name].append(yes_no(texts[k]) == yes_no(refs[0]) and yes_no(refs[0]) is not None)
            elif any(r.strip() for r in refs):
                corpora[name][0].append(texts[k])
                corpora[name][1].append([r for r in refs if r.strip()])
    out = text_entries(ctx, corpora)
    for name, f in flags.items():
        out[f"{name}.accuracy"] = value(100.0 * sum(f) / len(f), len(f), unit="%") if f else missing("no such question")
    return out


def parse_control(text: str) -> tuple[float, float] | None:
    """RAG-Driver evaluate.py's reading: the float after the first ": " up to a space, and the float
    after the last ": " ("Speed: 5.2 Course: 0.1"); None where the script would crash."""
    parts = text.split(": ")
    try:
        return float(parts[1].split(" ")[0]), float(parts[-1])
    except (IndexError, ValueError):
        return None


def signal_entries(name: str, pred: np.ndarray, gt: np.ndarray, failures: int) -> dict:
    n = len(pred)
    note = f"{failures} unparsable answers excluded (see control.parse_failures)"
    out = {f"{name}.rmse": value(float(np.sqrt(np.mean((pred - gt) ** 2))), n, note=note)}
    for sigma in SIGMAS:
        out[f"{name}.a_{sigma:g}"] = value(100.0 * float(np.mean(np.abs(pred - gt) < sigma)), n, unit="%", note=note)
    return out


@scorer("control_signal")
def score_control(rows: list[dict], ctx) -> dict:
    marker = ctx.args.get("control_question", "control signal")
    preds, gts, failures, scored = [], [], 0, 0
    for row in rows:
        gt = row["sample"].get("meta", {}).get("control_signal")
        k = turn_index(row["questions"], marker)
        if not gt or k is None:
            continue
        scored += 1
        parsed = parse_control(answers(row)[k])
        if parsed is None:
            failures += 1
            continue
        preds.append(parsed)
        gts.append((gt["speed"], gt["course"]))
    out = {"control.parse_failures": value(failures, scored, unit="samples")}
    if not preds:
        return {**out, "speed.rmse": missing("no parsable control answer with a reference", scored),
                "course.rmse": missing("no parsable control answer with a reference", scored)}
    pred, gt = np.array(preds), np.array(gts)
    return {**out, **signal_entries("speed", pred[:, 0], gt[:, 0], failures),
            **signal_entries("course", pred[:, 1], gt[:, 1], failures)}


def lingo_judge_scores(weights: Path, items: list[tuple[str, list[str], str]]) -> list[float]:
    """Max logit over references per (question, references, prediction), as LingoJudge.compute."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(weights, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(weights, local_files_only=True).eval()
    scores = []
    with torch.no_grad():
        for question, refs, pred in items:
            texts = [f"{tok.cls_token}\nQuestion: {question}\nAnswer: {r}\nStudent: {pred}" for r in refs]
            enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=128)
            scores.append(float(model(**enc).logits.squeeze(-1).max()))
    return scores


@scorer("lingoqa")
def score_lingoqa(rows: list[dict], ctx) -> dict:
    hyps = [answers(r)[0] for r in rows]
    refs = [r["references"][0] for r in rows]
    out = text_entries(ctx, {"": (hyps, refs)}, note="against both references")
    if ctx.lingo_judge is None:
        out["lingo_judge"] = missing("no Lingo-Judge weights (--lingo-judge DIR)", len(rows))
    elif rows:
        questions = [r["questions"][0] for r in rows]
        scores = lingo_judge_scores(Path(ctx.lingo_judge), list(zip(questions, refs, hyps)))
        out["lingo_judge"] = value(100.0 * sum(s > 0 for s in scores) / len(scores), len(scores), unit="%",
                                   note=f"Lingo-Judge weights {ctx.lingo_judge}")
    return out
