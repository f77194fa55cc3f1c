"""The scorer registry and the entries scorers return; the metric modules import these, and
eval/metrics/__init__.py imports the modules so that their `@scorer` registrations run."""
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
