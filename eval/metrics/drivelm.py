"""DriveLM-nuScenes as the 2024 challenge scores it (OpenDriveLab/DriveLM challenge/evaluation.py,
extract_data.py, gpt_eval.py; eval.md section 1.1).

Which questions count and how is decided per key frame, as `extract_data.py` does:
- perception: the first QA whose answer names every key object's class (tag 2, language
  score) and the first "What is the moving status of object" QA (tag 0, accuracy);
- prediction: the first QA whose answer contains every key object's tag (tag 3, match
  score) and the first whose answer contains "yes" or "no" as a substring (tag 0);
- planning: the first "What actions could the ego vehicle take", "lead to a collision"
  and "safe actions" QAs (tag 1, GPT score); behavior: every QA (tag 0).
Other QAs are not part of the challenge's test set and are not scored (counted). A QA
picked twice is scored twice under the tag assigned last (the script's shared dict makes
both copies carry it): a QA that is both the graph and the yes/no question of its frame
counts twice for accuracy and never for match, as in the official test files. Rows read
from an official test file (`python -m eval score drivelm`) keep its entries and tags.
In each frame the first scored QA's matched coordinates form the "graph"; a later QA whose
question holds a coordinate missing from it is dropped, as `eval_graph` does (counted
here as `graph_filtered`).

Metrics: accuracy = exact string equality of the unstripped answer (no normalisation; `accuracy_normalized` also
ignores case, spaces and a final period); chatgpt = judge's 0-100 rating; language =
BLEU-1..4, ROUGE-L, CIDEr of the tag-2 corpus and (B1+B2+B3+B4)/12 + ROUGE-L/3 + CIDEr/30;
match = (mean coordinate F1 x 100 + mean judge rating) / 2, where decimals-with-a-dot are
read as (x, y) pairs (odd count: last dropped) and each predicted point takes the nearest
unused reference point by L1 distance, a hit below 16 px; final = 0.4 chatgpt/100 + 0.2
language + 0.2 match/100 + 0.2 accuracy. Differences: the official test set turns the
moving-status and behavior questions into 4-way multiple choice; our shards keep the
free answers, so accuracy compares those. Without a judge chatgpt, match and final are
"not computed"; `match_f1` is reported alone.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from eval.metrics.core import missing, scorer, value
from eval.metrics.judged import judged_mean
from eval.metrics.text import text_entries

GROUPS = ("perception", "prediction", "planning", "behavior")
NUMBER = re.compile(r"\d+\.\d+")
MATCH_PX = 16.0
GPT_SYSTEM = "You are an evaluator who rates an answer against the correct answer."
GPT_USER = ("Rate my answer against the correct answer on a scale of 0 to 100, where a higher score means my answer "
            "is closer to the correct one. Be precise to single digits, like 62, 78 or 41. Output the number only. "
            "This is the correct answer: {reference} This is my answer: {prediction}")
PLANNING_KEYS = ("what actions could the ego vehicle take", "lead to a collision", "safe actions")


@dataclass
class QA:
    group: str
    index: int
    question: str
    answer: str
    prediction: str
    tags: tuple[int, ...] = ()
    order: int | None = None      # position in an official test file (its tags are given)

    @property
    def tag(self) -> int | None:
        return self.tags[-1] if self.tags else None


def raw_answer(text: str, marker: str) -> str:
    """The model's text as the official script sees it: never stripped (its exact match counts
    " D\n" against "D" as wrong); after the answer marker when the benchmark sets one."""
    return text.rsplit(marker, 1)[1].strip() if marker and marker in text else text


def frame_qas(rows: list[dict]) -> dict[str, tuple[list[QA], list[dict]]]:
    """frame_id -> (its QAs in group/index order, its key objects); per-QA and per-frame rows.
    Rows read from an official test file carry `tag` and `order` in their meta: that order and
    those tags are kept."""
    frames: dict[str, tuple[list[QA], list[dict]]] = {}
    for row in rows:
        meta, marker = row["sample"]["meta"], row.get("prompt", {}).get("answer_marker", "")
        preds = [raw_answer(p, marker) for p in row["prediction"]]
        infos = meta.get("turns") or [meta]
        qas, _ = frames.setdefault(row["sample"]["frame_id"], ([], row["sample"].get("objects") or []))
        for k, info in enumerate(infos):
            qas.append(QA(info["qa_group"], info["qa_index"], row["questions"][k], row["references"][k][0],
                          preds[k] if k < len(preds) else "", tuple(info.get("tag") or ()), info.get("order")))
    for qas, _ in frames.values():
        qas.sort(key=lambda q: (q.order,) if q.order is not None else (GROUPS.index(q.group), q.index))
    return frames


def assign_tags(qas: list[QA], objects: list[dict]) -> list[QA]:
    """The frame's test entries in extract_data.py's order, each with its tag. As there, a QA picked
    twice appears twice and both copies carry the tag assigned last (the script overwrites
    `qa['tag']` on one shared dict): the official score counts it twice under that tag only."""
    if qas and all(q.tags for q in qas):
        return list(qas)  # an official test file: its entries and tags as written
    classes = [str(o.get("description", "")).split(".")[0].lower() for o in objects]
    locations = [str(o.get("tag", "")).lower() for o in objects]
    by = {g: [q for q in qas if q.group == g] for g in GROUPS}
    picked: list[QA] = []
    last: dict[int, int] = {}

    def take(q: QA | None, tag: int) -> None:
        if q is not None:
            picked.append(q)
            last[id(q)] = tag

    def first(group: str, test) -> QA | None:
        return next((q for q in by[group] if test(q)), None)

    take(first("perception", lambda q: all(c in q.answer.lower() for c in classes)), 2)
    take(first("perception", lambda q: "what is the moving status of object" in q.question.lower()), 0)
    take(first("prediction", lambda q: all(loc in q.answer.lower() for loc in locations)), 3)
    take(first("prediction", lambda q: "yes" in q.answer.lower() or "no" in q.answer.lower()), 0)
    added = set()
    for q in by["planning"]:
        for key in PLANNING_KEYS:
            if key in q.question.lower() and key not in added:
                take(q, 1)
                added.add(key)
        if len(added) == len(PLANNING_KEYS):
            break
    for q in by["behavior"]:
        take(q, 0)
    return [QA(q.group, q.index, q.question, q.answer, q.prediction, (last[id(q)],)) for q in picked]


def coordinates(text: str) -> np.ndarray:
    nums = [float(x) for x in NUMBER.findall(text)]
    if len(nums) % 2:
        nums = nums[:-1]
    return np.array(nums, dtype=float).reshape(-1, 2)


def match_f1(prediction: str, reference: str) -> tuple[list[list[float]], float]:
    """(matched reference points, F1) as `match_result`: greedy nearest by L1, hit below 16 px."""
    pred, gt = coordinates(prediction), coordinates(reference)
    total, tp, fp, matched = len(gt), 0, 0, []
    for p in pred:
        if len(gt):
            d = np.abs(gt - p).sum(axis=1)
            i = int(np.argmin(d))
            if d[i] < MATCH_PX:
                tp += 1
                matched.append(gt[i].tolist())
                gt = np.delete(gt, i, axis=0)
                continue
        fp += 1
    precision = tp / (tp + fp + 1e-8)
    recall = tp / (tp + (total - tp) + 1e-8)
    return matched, 2 * precision * recall / (precision + recall + 1e-8)


def in_graph(question: str, graph: list[list[float]]) -> bool:
    return all(q.tolist() in graph for q in coordinates(question))


def collect(rows: list[dict]) -> tuple[dict[int, list[QA]], int, int]:
    """Scored QAs by tag, plus counts of untagged and graph-filtered QAs."""
    by_tag: dict[int, list[QA]] = defaultdict(list)
    untagged = filtered = 0
    for qas, objects in frame_qas(rows).values():
        scored = assign_tags(qas, objects)
        picked = {(q.group, q.index) for q in scored}
        untagged += sum((q.group, q.index) not in picked for q in qas)
        graph = None
        for q in scored:
            if graph is None:
                graph = match_f1(q.prediction, q.answer)[0]
            elif not in_graph(q.question, graph):
                filtered += 1
                continue
            for tag in sorted(set(q.tags)):
                by_tag[tag].append(q)
    return by_tag, untagged, filtered


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


@scorer("drivelm")
def score_drivelm(rows: list[dict], ctx) -> dict:
    by_tag, untagged, filtered = collect(rows)
    out = {"untagged": value(untagged, untagged, unit="questions", note="not in the challenge's scored subset"),
           "graph_filtered": value(filtered, filtered, unit="questions", note="dropped by eval_graph")}
    out.update(_accuracy(by_tag[0]))
    lang = by_tag[2]
    text = text_entries(ctx, {"language": ([q.prediction for q in lang], [[q.answer] for q in lang])})
    out.update({k: v for k, v in text.items() if not k.endswith("meteor")})
    parts = [text[f"language.{m}"] for m in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider")]
    if all(p["value"] is not None for p in parts):
        b1, b2, b3, b4, rouge, cider = (p["value"] for p in parts)
        out["language"] = value((b1 + b2 + b3 + b4) / 12 + rouge / 3 + cider / 30, len(lang))
    else:
        out["language"] = missing("no tag-2 (language) questions scored")
    out["chatgpt"], _ = judged_mean(ctx, _items(by_tag[1]), GPT_SYSTEM, GPT_USER, rating_100, "0-100")
    out.update(_match(ctx, by_tag[3]))
    out["final"] = _final(out)
    return out


def _accuracy(acc: list[QA]) -> dict:
    if not acc:
        return {"accuracy": missing("no tag-0 questions"), "accuracy_normalized": missing("no tag-0 questions")}
    exact = sum(q.prediction == q.answer for q in acc) / len(acc)
    loose = sum(_norm(q.prediction) == _norm(q.answer) for q in acc) / len(acc)
    return {"accuracy": value(exact, len(acc)), "accuracy_normalized": value(loose, len(acc))}


def _items(qas: list[QA]) -> list[dict]:
    return [{"reference": q.answer, "prediction": q.prediction} for q in qas]


def rating_100(reply: str) -> float | None:
    text = reply.strip()
    return float(text) if re.fullmatch(r"\d+(?:\.\d+)?", text) and float(text) <= 100 else None


def _match(ctx, qas: list[QA]) -> dict:
    if not qas:
        return {"match_f1": missing("no tag-3 questions"), "match": missing("no tag-3 questions")}
    f1 = 100.0 * float(np.mean([match_f1(q.prediction, q.answer)[1] for q in qas]))
    gpt, _ = judged_mean(ctx, _items(qas), GPT_SYSTEM, GPT_USER, rating_100, "0-100")
    out = {"match_f1": value(f1, len(qas), unit="0-100"), "match_judge": gpt}
    out["match"] = value((f1 + gpt["value"]) / 2, len(qas), unit="0-100", judge=gpt.get("judge")) \
        if gpt["value"] is not None else missing("match needs the judge's half: " + gpt.get("note", ""), len(qas))
    return out


def _final(out: dict) -> dict:
    parts = {k: out[k]["value"] for k in ("chatgpt", "language", "match", "accuracy")}
    if any(v is None for v in parts.values()):
        return missing("needs " + ", ".join(k for k, v in parts.items() if v is None))
    score = (0.4 * parts["chatgpt"] / 100 + 0.2 * parts["language"] + 0.2 * parts["match"] / 100
             + 0.2 * parts["accuracy"])
    return value(score, out["accuracy"]["n"], judge=out["chatgpt"].get("judge"))
