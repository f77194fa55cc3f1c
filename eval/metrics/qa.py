"""Closed-answer accuracy: nuScenes-QA (by question type and hop) and MAPLM (per question, QNS, FRM).

nuScenes-QA (qiantianwen/NuScenes-QA src/execution/result_eval.py): `acc` is the script's
exact match of the answer against `str(answer)`, on the model's text unstripped (as the
script compares its predicted string; after an answer marker, the text after it), overall,
per `template_type` (exist, count, object, status, comparison: papers' Ext/Cnt/Obj/Sts/Cmp)
and per `template_type`_`num_hop`, plus per hop (H0/H1, which papers print but the script
does not). `acc_normalized` is our variant, never the headline alone: the free text mapped
onto the 30-word answer vocabulary first (lmms-eval#673: exact match under-counts LLM
outputs): lower case, number words to digits, plurals to the singular, then the first
vocabulary answer of the question type's kind in the text (yes/no for exist and
comparison, a number for count, a class for object, a status for status).

MAPLM (LLVM-AD/MAPLM baseline/evaluation/run_eval.py, utils.py): the predicted choice is
the first option whose lower-cased text is a substring of the lower-cased answer (order
dependent, as the official parser: "1" matches inside "12"); no match is wrong. Reported
in percent: per question type (LAN, INT, QLT, SCN), QNS (all closed-choice questions) and
FRM (frames whose closed-choice questions are all right).
"""
from __future__ import annotations

import re
from collections import defaultdict

from eval.metrics.core import missing, scorer, value
from eval.prompting import extract_answer

NUMBER_WORDS = {w: str(i) for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven",
                                                   "eight", "nine", "ten"))}
CLASSES = ("construction vehicle", "traffic cone", "barrier", "bicycle", "bus", "car", "motorcycle", "pedestrian",
           "trailer", "truck")
STATUS = ("not standing", "without rider", "with rider", "standing", "moving", "parked", "stopped")
KINDS = {"exist": ("yes", "no"), "comparison": ("yes", "no"), "count": tuple(str(i) for i in range(11)),
         "object": CLASSES, "status": STATUS}
VOCAB = tuple(str(i) for i in range(11)) + ("yes", "no") + CLASSES + STATUS


def answer_of(row: dict) -> str:
    """The scored text of a single-question row (after the benchmark's answer marker)."""
    text = row["prediction"][-1] if row["prediction"] else ""
    return extract_answer(text, row.get("prompt", {}).get("answer_marker", ""))


def _canonical_words(text: str) -> str:
    text = re.sub(r"[^a-z0-9 ]+", " ", text.lower())
    words = [NUMBER_WORDS.get(w, w) for w in text.split()]
    return " " + " ".join(words) + " "


def normalize_nuscenes_qa(text: str, template_type: str) -> str:
    """The vocabulary answer a free-text reply gives, or the cleaned text when it names none."""
    words = _canonical_words(text)
    candidates = KINDS.get(template_type, VOCAB)
    best = None
    for answer in candidates:
        m = re.search(rf" {re.escape(answer)}(s|es)? ", words)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), answer)
    return best[1] if best else words.strip()


def _accuracy(flags: list[bool]) -> float:
    return 100.0 * sum(flags) / len(flags)


def exact_answer(row: dict) -> str:
    """The text result_eval.py compares: never stripped (after an answer marker, the text after it)."""
    text = row["prediction"][-1] if row["prediction"] else ""
    marker = row.get("prompt", {}).get("answer_marker", "")
    return text.rsplit(marker, 1)[1].strip() if marker and marker in text else text


def _by_type_and_hop(name: str, flags: list[bool], metas: list[dict]) -> dict:
    groups: dict[str, list[bool]] = defaultdict(list)
    for ok, meta in zip(flags, metas):
        groups[f"type.{meta['template_type']}"].append(ok)
        groups[f"hop.H{meta['num_hop']}"].append(ok)
        groups[f"type_hop.{meta['template_type']}_{meta['num_hop']}"].append(ok)
    return {f"{name}.{key}": value(_accuracy(groups[key]), len(groups[key]), unit="%") for key in sorted(groups)}


@scorer("nuscenes_qa")
def score_nuscenes_qa(rows: list[dict], ctx) -> dict:
    if not rows:
        return {"acc": missing("no samples"), "acc_normalized": missing("no samples")}
    metas = [row["sample"]["meta"] for row in rows]
    refs = [str(row["references"][0][0]) for row in rows]
    raw = [exact_answer(row) == ref for row, ref in zip(rows, refs)]
    norm = [normalize_nuscenes_qa(answer_of(row), meta["template_type"]) == ref
            for row, meta, ref in zip(rows, metas, refs)]
    return {"acc": value(_accuracy(raw), len(rows), unit="%", note="exact match, as result_eval.py"),
            "acc_normalized": value(_accuracy(norm), len(rows), unit="%",
                                    note="our variant: answer mapped onto the vocabulary"),
            **_by_type_and_hop("acc", raw, metas), **_by_type_and_hop("acc_normalized", norm, metas)}


def choice_index(completion: str, options: list[str]) -> int | None:
    """MAPLM's parser: the first option contained in the completion (lower case)."""
    low = completion.lower()
    return next((i for i, opt in enumerate(options) if opt.lower() in low), None)


def maplm_correct(row: dict) -> bool:
    meta = row["sample"]["meta"]
    text = answer_of(row)
    if meta.get("options") and meta.get("answer_index") is not None:
        return choice_index(text, meta["options"]) == meta["answer_index"]
    return str(meta.get("answer", "")).lower() in text.lower()  # no options shown: the answer's text


@scorer("maplm")
def score_maplm(rows: list[dict], ctx) -> dict:
    rows = [r for r in rows if r["sample"]["meta"].get("qa_task", "closed choice") == "closed choice"]
    if not rows:
        return {"qns": missing("no closed-choice questions")}
    per_type: dict[str, list[bool]] = defaultdict(list)
    per_frame: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        ok = maplm_correct(row)
        meta = row["sample"]["meta"]
        per_type[meta["question_type"]].append(ok)
        per_frame[meta["maplm_frame"]].append(ok)
    flags = [ok for v in per_type.values() for ok in v]
    out = {"qns": value(_accuracy(flags), len(flags), unit="%"),
           "frm": value(_accuracy([all(v) for v in per_frame.values()]), len(per_frame), unit="%",
                        note="frames whose closed-choice questions are all right")}
    for qtype in sorted(per_type):
        out[qtype.lower()] = value(_accuracy(per_type[qtype]), len(per_type[qtype]), unit="%")
    return out
