"""OmniDrive counterfactual reasoning, scored by a fixed keyword classifier.

OmniDrive releases no scoring code for its captions and counterfactuals (NVlabs/OmniDrive
#25); the paper has GPT sort each answer into safety-violation classes and reports
precision and recall. Here a deterministic rule does the sorting (eval.md section 2): an
answer belongs to `collision`, `red_light` and/or `drivable_area` when it uses their
words, else to `safe`; per class, precision and recall of the prediction's classes against
the reference's, over the counterfactual questions. Reproducible and cheap, but not the
paper's number. OmniDrive's captions and QA use the `text` scorer; its planning answers
the `planning` scorer.
"""
from __future__ import annotations

import re

from eval.metrics.captions import answers
from eval.metrics.core import missing, scorer, value

CLASSES = {
    "collision": r"\b(collid\w*|collision|crash\w*|hit\w*|run into|rear-end\w*)\b",
    "red_light": r"\b(red light|red traffic light|run\w* (a|the) red|traffic signal)\b",
    "drivable_area": r"\b(drivable area|off the road|leav\w* the road|out of the road|curb|sidewalk|lane boundary)\b",
}


def classes(text: str) -> set[str]:
    low = text.lower()
    found = {name for name, pattern in CLASSES.items() if re.search(pattern, low)}
    return found or {"safe"}


@scorer("counterfactual")
def score_counterfactual(rows: list[dict], ctx) -> dict:
    rows = [r for r in rows if r["task"] == "vqa.counterfactual"]
    if not rows:
        return {"counterfactual.collision.recall": missing("no counterfactual questions")}
    pairs = [(classes(answers(r)[0]), classes(r["references"][0][0])) for r in rows]
    out = {}
    for name in list(CLASSES) + ["safe"]:
        tp = sum(name in p and name in g for p, g in pairs)
        predicted = sum(name in p for p, _ in pairs)
        actual = sum(name in g for _, g in pairs)
        out[f"counterfactual.{name}.precision"] = value(100.0 * tp / predicted, predicted, unit="%") \
            if predicted else missing("never predicted", 0)
        out[f"counterfactual.{name}.recall"] = value(100.0 * tp / actual, actual, unit="%") \
            if actual else missing("not in the references", 0)
    return out
