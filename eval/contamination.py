"""Is a held-out benchmark really held out? The leakage audit, run before the report.

The training data of a run is read from its curriculum (run.json names it; its source
patterns are matched against the shard root as the trainer matched them). Then
`dataengine.audit` compares every evaluation split with every training split over shared
scenes, frames and images; a benchmark whose evaluation samples share any of those with a
training dataset of this run has an `overlap` count, and one declared unseen (in the
`unseen` group) with an overlap is `contaminated`, which every report shows. A benchmark
whose own split the curriculum trains on is fully contaminated. Without a run (a bare
`--model`), nothing is known about its training data and the flag reads "unknown".
"""
from __future__ import annotations

from pathlib import Path

from curricula.sources import match
from curricula.spec import load_curriculum
from dataengine.audit import AuditConfig, run_audit, to_json
from dataengine.audit_report import write_report
from dataengine.errors import UsageError
from dataengine.manifest import dataset_splits
from eval.predictor import run_info
from eval.registry import Benchmark


def training_parts(run: Path, shards: Path) -> tuple[list[tuple[str, str]], str]:
    """(dataset, split) pairs the run's curriculum trains on, and how that was found out."""
    name = run_info(run).get("curriculum", "")
    try:
        curriculum = load_curriculum(name)
    except (UsageError, OSError) as exc:
        parts = [p for p in dataset_splits(shards) if p[1] == "train"]
        return parts, f"every train split under {shards} (curriculum {name!r} not loadable: {exc})"
    available = dataset_splits(shards)
    parts = sorted({p for stage in curriculum.stages for s in stage.sources for p in match(s.pattern, available)})
    return parts, f"curriculum {curriculum.name!r} matched against {shards}"


def assess(shards: Path, benchmarks: list[Benchmark], unseen: set[str], parts: list[tuple[str, str]] | None,
           basis: str, out: Path | None = None) -> dict:
    """Per benchmark: overlapping samples, the training datasets involved, the contamination flag."""
    names = tuple(sorted({b.dataset for b in benchmarks if b.name in unseen}))
    audit = run_audit(AuditConfig(root=Path(shards), unseen=names))
    if out is not None:
        write_report(audit, Path(out))
    result = {"basis": basis if parts is not None else "no training run given: training data unknown",
              "audit": {"clean": to_json(audit)["clean"], "unseen_datasets": list(names)}, "benchmarks": {}}
    trained = {d for d, s in parts or [] if s == "train"}
    for bench in benchmarks:
        result["benchmarks"][bench.name] = _one(bench, audit, trained, parts, bench.name in unseen)
    return result


def _one(bench: Benchmark, audit, trained: set[str], parts, declared_unseen: bool) -> dict:
    if parts is None:
        return {"unseen": declared_unseen, "contaminated": None, "overlap": None, "with": []}
    if (bench.dataset, bench.split) in parts:
        return {"unseen": declared_unseen, "contaminated": declared_unseen, "overlap": "all",
                "with": [f"{bench.dataset}/{bench.split} itself"]}
    hits = [e for e in audit.overlaps if e["dataset"] == bench.dataset and e["split"] == bench.split
            and any(t in trained for t in e["train"])]
    involved = sorted({t for e in hits for t in e["train"] if t in trained})
    return {"unseen": declared_unseen, "contaminated": declared_unseen and bool(hits), "overlap": len(hits),
            "with": involved}
