"""Scorers: each turns one benchmark's prediction rows into named metric values.

A scorer is a function `(rows, ctx) -> {metric name: entry}` registered by name with
`@scorer("name")` (eval/metrics/core.py); a benchmark YAML lists the scorers it uses.
Entries are plain dicts (`value`, `n`, `status`, optional `failures`, `note`, `judge`,
`unit`), written to scores.json as they are. A metric that cannot be computed (no judge, no
Java, no reference) has `value: None` and `status: "not computed"` with the reason, never 0.
Importing this package imports every metric module, so SCORERS is complete; the modules
depend only on light code (no model, no torch), so scoring runs anywhere.
"""
from __future__ import annotations

from eval.metrics import captions, drivebench, drivelm, grounding, judged, nuinstruct, omnidrive, planning, qa  # noqa: F401
from eval.metrics.core import COMPUTED, NOT_COMPUTED, SCORERS, ScoreContext, missing, scorer, value

__all__ = ["COMPUTED", "NOT_COMPUTED", "SCORERS", "ScoreContext", "missing", "scorer", "value"]
