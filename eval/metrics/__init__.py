"""Scorers: each turns one benchmark's prediction rows into named metric values.

A scorer is a function `(rows, ctx) -> {metric name: entry}` registered by name with
`@scorer("name")`; a benchmark YAML lists the scorers it uses. Entries are plain dicts
(`value`, `n`, `status`, optional `failures`, `note`, `judge`, `unit`), written to
scores.json as they are. A metric that cannot be computed (no judge, no Java, no
reference) has `value: None` and `status: "not computed"` with the reason, never 0.
Modules are imported here so their registrations run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

SCORERS: dict[str, Callable] = {}
COMPUTED = "computed"
NOT_COMPUTED = "not computed"


def scorer(name: str):
    def wrap(fn):
        if name in SCORERS:
            raise ValueError(f"scorer {name!r} registered twice")
        SCORERS[name] = fn
        return fn
    return wrap


def value(v: float, n: int, **extra) -> dict:
    """A computed metric over n items."""
    return {"value": float(v), "n": int(n), "status": COMPUTED, **extra}


def missing(reason: str, n: int = 0, **extra) -> dict:
    """A metric that could not be computed, and why (never reported as 0)."""
    return {"value": None, "n": int(n), "status": NOT_COMPUTED, "note": reason, **extra}


@dataclass
class ScoreContext:
    """What scorers may use beyond the rows."""

    benchmark: str
    args: dict = field(default_factory=dict)    # the benchmark's metric_args
    judge: object | None = None                 # eval.judge.Judge, or None
    lingo_judge: Path | None = None             # local Lingo-Judge weights directory
    text: object | None = None                  # eval.metrics.text.CocoText, shared across benchmarks
    cache: Path | None = None                   # where judged replies are kept between runs


from eval.metrics import captions, drivelm, grounding, judged, nuinstruct, omnidrive, planning, qa  # noqa: E402,F401
