"""Zero-shot against fine-tuned, per benchmark, said plainly: for each headline metric the two
values, their difference and its direction (the metric's own `higher_is_better` decides), and
one verdict per benchmark, so that a reader never has to work out from a table of numbers
whether fine-tuning helped.

A metric that only the later variant computes (the earlier one produced nothing scoreable, e.g.
no parseable trajectory, so L2 is "not computed") counts as better, and is named so; one
that only the earlier variant computes counts as worse. Nothing here changes a value: the
figures are the metrics' own. Two values within 0.1% (or 1e-4) of each other read as the
same: a BLEU-4 going from 0 to 3e-13 is numerical dust, not learning.
"""
from __future__ import annotations

import math

BETTER, WORSE, SAME = "better", "worse", "same"
ONLY_LATER, ONLY_EARLIER, NEITHER = "only {b} computed", "only {a} computed", "not computed"
IMPROVED, REGRESSED, MIXED, UNCHANGED, NOT_COMPARABLE = "improved", "worse", "mixed", "unchanged", "not comparable"


def direction(a: float | None, b: float | None, higher_is_better: bool) -> str:
    """Whether going from `a` to `b` is better, worse or the same for this metric."""
    if a is None and b is None:
        return NEITHER
    if a is None:
        return ONLY_LATER
    if b is None:
        return ONLY_EARLIER
    if math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-4):
        return SAME
    return BETTER if (b > a) == higher_is_better else WORSE


def verdict(directions: list[str]) -> str:
    """One word for a benchmark from its headline metrics' directions."""
    up = any(d in (BETTER, ONLY_LATER) for d in directions)
    down = any(d in (WORSE, ONLY_EARLIER) for d in directions)
    if up and down:
        return MIXED
    if up:
        return IMPROVED
    if down:
        return REGRESSED
    return UNCHANGED if SAME in directions else NOT_COMPARABLE


def compare(row: dict, first: str, last: str) -> dict:
    """`comparison` of one report.json benchmark row: first -> last per headline metric, and a verdict."""
    metrics = []
    for h in row["headline"]:
        a, b = h["values"].get(first), h["values"].get(last)
        d = direction(a, b, h.get("higher_is_better", True))
        metrics.append({"metric": h["metric"], "higher_is_better": h.get("higher_is_better", True),
                        first: a, last: b, "difference": None if a is None or b is None else b - a,
                        "direction": d.format(a=first, b=last)})
    raw = [direction(m[first], m[last], m["higher_is_better"]) for m in metrics]
    return {"from": first, "to": last, "headline": metrics,
            "verdict": verdict(raw) if row.get("status", "scored") == "scored" else NOT_COMPARABLE}


def summary(report: dict) -> list[str]:
    """Plain sentences: per group, which benchmarks improved, got worse, were mixed or unchanged."""
    rows = [b for b in report["benchmarks"] if b.get("comparison")]
    if not rows:
        return []
    first, last = rows[0]["comparison"]["from"], rows[0]["comparison"]["to"]
    lines = []
    for group in dict.fromkeys(b["group"] for b in rows):
        mine = [b for b in rows if b["group"] == group]
        parts = []
        for word in (IMPROVED, MIXED, REGRESSED, UNCHANGED, NOT_COMPARABLE):
            names = [b["benchmark"] for b in mine if b["comparison"]["verdict"] == word]
            if names:
                parts.append(f"{word}: {', '.join(names)}")
        improved = sum(b["comparison"]["verdict"] == IMPROVED for b in mine)
        lines.append(f"{group}: {last} improved on {improved} of {len(mine)} benchmarks over {first} "
                     f"({'; '.join(parts)}).")
    return lines


def fmt_difference(v: float | None) -> str:
    return "-" if v is None else f"{v:+.4g}"


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """group, benchmark, headline metric, first, last, difference, direction, verdict."""
    rows = [b for b in report["benchmarks"] if b.get("comparison")]
    if not rows:
        return [], []
    first, last = rows[0]["comparison"]["from"], rows[0]["comparison"]["to"]
    head = ["group", "benchmark", "headline metric", first, last, "difference", "direction", "verdict"]
    body = []
    for b in sorted(rows, key=lambda b: (b["group"] != "seen", b["group"])):
        c = b["comparison"]
        for i, m in enumerate(c["headline"] or [{"metric": "-", first: None, last: None, "difference": None,
                                                 "direction": "-", "higher_is_better": True}]):
            arrow = " (higher is better)" if m["higher_is_better"] else " (lower is better)"
            body.append([b["group"] if i == 0 else "", b["benchmark"] if i == 0 else "", m["metric"] + arrow,
                         _value(m[first]), _value(m[last]), fmt_difference(m["difference"]), m["direction"],
                         c["verdict"].upper() if i == 0 else ""])
    return head, body


def _value(v) -> str:
    return "not computed" if v is None else f"{v:.4g}"
