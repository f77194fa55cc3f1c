"""Scores from predictions.jsonl, on CPU: each benchmark's scorers over its rows -> scores.json.

Nothing here needs the model or the shards: a predictions file is self-contained
(references and the ground-truth fields the metrics need travel in each row). The
scores file records what produced it: the model and decoding settings from the rows, each
benchmark's version and definition hash, the metric libraries, the judge (never its key)
and the git commit of this code.
"""
from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path

from eval.metrics import SCORERS, ScoreContext
from eval.metrics.text import LIBRARY, CocoText
from eval.predictions import load_predictions
from eval.registry import Benchmark

SCORES = "scores.json"
FORMAT = "eval-scores/1"


def git_commit() -> str:
    """HEAD of the checkout this code runs from, "+dirty" when it has local changes; "" outside git."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def row_failures(rows: list[dict]) -> dict[str, int]:
    return {"errors": sum(1 for r in rows if r.get("error")),
            "empty": sum(1 for r in rows if not r.get("error") and not any(p.strip() for p in r["prediction"]))}


def score_benchmark(bench: Benchmark, rows: list[dict], ctx: ScoreContext) -> dict:
    metrics: dict[str, dict] = {}
    for name in bench.metrics:
        metrics.update(SCORERS[name](rows, ctx))
    parse = sum(int(m["value"]) for k, m in metrics.items() if k.endswith("parse_failures") and m["value"] is not None)
    counts = row_failures(rows)
    return {"benchmark": bench.name, "version": bench.version, "definition_sha1": bench.fingerprint(),
            "dataset": bench.dataset, "split": bench.split, "samples": len(rows), **counts,
            "failures": counts["errors"] + counts["empty"] + parse,
            "headline": [{"metric": h.metric, "higher_is_better": h.higher_is_better} for h in bench.headline],
            "metrics": dict(sorted(metrics.items()))}


def score_variant(variant_dir: Path, benchmarks: list[Benchmark], missing: dict[str, str], *, judge=None,
                  lingo_judge: Path | None = None, meteor: bool = True) -> dict:
    """Score one variant's predictions.jsonl and write its scores.json."""
    rows = load_predictions(Path(variant_dir) / "predictions.jsonl")
    by_bench: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_bench[row["benchmark"]].append(row)
    text = CocoText(meteor=meteor)
    result = {"format": FORMAT, "variant": Path(variant_dir).name, "git_commit": git_commit(),
              "model": rows[0]["model"] if rows else None, "text_metrics": LIBRARY,
              "judge": None if judge is None else {"model": judge.cfg.model, "url": judge.cfg.endpoint,
                                                    "temperature": judge.cfg.temperature},
              "lingo_judge": str(lingo_judge) if lingo_judge else None, "benchmarks": {}}
    try:
        for bench in benchmarks:
            if bench.name in missing:
                result["benchmarks"][bench.name] = {"benchmark": bench.name, "status": "missing shards",
                                                    "note": missing[bench.name], "samples": 0}
                continue
            b_rows = by_bench.get(bench.name, [])
            ctx = ScoreContext(bench.name, bench.metric_args, judge, lingo_judge, text, Path(variant_dir))
            result["benchmarks"][bench.name] = {**score_benchmark(bench, b_rows, ctx),
                                                "decoding": b_rows[0]["decoding"] if b_rows else None}
    finally:
        text.close()
    path = Path(variant_dir) / SCORES
    path.write_text(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return result
