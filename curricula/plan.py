"""`curricula plan FILE --shards DIR`: what each stage will draw, before any GPU is used.

Per stage and source: the dataset/splits matched, size, eligible samples, target weight,
samples and tokens drawn, repeats (draws per eligible sample) and the samples dropped for
length or image count; then warnings: a missing source, a zero weight, a budget the caps
cannot reach, and a source the leakage audit finds in an unseen benchmark.

The audit is read from `<DIR>/audit/audit.json` (written by `dataengine audit DIR`, format
`audit/1`): its `unseen` list names the held-out benchmarks, and each `unseen_leaks` entry
says that `eval_dataset/eval_split` shares `samples` of `eval_samples` with `train_dataset`'s
train split.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from curricula.lengths import ExactLengths
from curricula.sampler import DROP_REASONS, StagePlan, plan_stage
from curricula.sources import resolve
from curricula.spec import Curriculum, StageSpec

AUDIT_JSON = Path("audit") / "audit.json"


@dataclass
class PlannedStage:
    index: int
    spec: StageSpec
    plan: StagePlan
    warnings: list[str]


def read_audit(root: Path) -> dict | None:
    path = Path(root) / AUDIT_JSON
    return json.loads(path.read_text()) if path.is_file() else None


def audit_warnings(plan: StagePlan, audit: dict | None) -> list[str]:
    """A trained source whose dataset is an unseen benchmark, or whose train split shares
    scenes, frames or images with an unseen benchmark's evaluation split."""
    if audit is None:
        return []
    out = []
    unseen = set(audit.get("unseen", []))
    for sp in plan.sources:
        if not sp.samples:
            continue
        datasets = {p.split("/")[0] for p in sp.parts}
        trained = {p.split("/")[0] for p in sp.parts if p.endswith("/train")}
        for d in sorted(datasets & unseen):
            out.append(f"source {sp.pattern!r}: trains on {d}, which the audit declares an unseen benchmark")
        for leak in audit.get("unseen_leaks", []):
            if leak["train_dataset"] in trained:
                out.append(f"source {sp.pattern!r}: the audit finds {leak['train_dataset']} train data in unseen "
                           f"benchmark {leak['eval_dataset']}/{leak['eval_split']} ({leak['samples']} of "
                           f"{leak['eval_samples']} samples share a scene, frame or image)")
    return out


def plan_curriculum(curriculum: Curriculum, root: Path, cache_dir: Path | None = None,
                    lengths: ExactLengths | None = None) -> list[PlannedStage]:
    """Every stage's plan (built or read from the cache) with its warnings; with `lengths`,
    on the model's exact lengths (over-length and incompatible samples dropped, counted)."""
    audit = read_audit(root)
    out = []
    for i, stage in enumerate(curriculum.stages):
        rows, reasons = resolve(stage, root), None
        if lengths is not None:
            rows, reasons = lengths.stage_rows(Path(root), stage, rows, cache_dir)
        plan = plan_stage(stage, rows, curriculum.seed, cache_dir, reasons)
        out.append(PlannedStage(i, stage, plan, plan.warnings + audit_warnings(plan, audit)))
    return out


def _budget(stage: StageSpec) -> str:
    b = stage.budget
    return f"{b.value:g} {b.kind}" if b.kind == "epochs" else f"{int(b.value):,} {b.kind}"


def _mixing(stage: StageSpec) -> str:
    return f"temperature {stage.temperature:g}" if stage.temperature is not None else "weights"


def _stage_text(ps: PlannedStage, n_stages: int, exact: bool) -> list[str]:
    s, plan = ps.spec, ps.plan
    lrs = ", ".join(f"{k} {v:g}" for k, v in s.lr.items())
    lines = [f"stage {ps.index + 1}/{n_stages} {s.name}: budget {_budget(s)}, {_mixing(s)}; "
             f"train {'+'.join(s.train)} (lr {lrs}); style {s.prompt_style}",
             f"  max_seq_len {s.max_seq_len}, max_images {s.max_images}, frames/video {s.frames_per_video}, "
             f"video {s.video}, batch {s.batch_size}/rank, plan {plan.fingerprint[:12]}"]
    header = ("source", "matched", "size", "eligible", "weight", "samples", "tokens" if exact else "est. tokens",
              "repeats", "drop len", "drop img", "drop video", "drop enc")
    rows = [header]
    for sp in plan.sources:
        rows.append((sp.pattern, ",".join(sp.parts) or "-", f"{sp.size:,}", f"{sp.eligible:,}", f"{sp.weight:.3f}",
                     f"{sp.samples:,}", f"{sp.tokens:,}", f"{sp.repeats:.2f}",
                     *(f"{sp.dropped.get(r, 0):,}" for r in DROP_REASONS)))
    rows.append(("total", "", f"{sum(x.size for x in plan.sources):,}",
                 f"{sum(x.eligible for x in plan.sources):,}", "", f"{len(plan):,}", f"{plan.tokens:,}", "",
                 *(f"{sum(x.dropped.get(r, 0) for x in plan.sources):,}" for r in DROP_REASONS)))
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [v.rjust(w) for v, w in zip(r[2:], widths[2:])]
        lines.append("  " + "  ".join(cells).rstrip())
    lines += [f"  WARNING: {w}" for w in ps.warnings]
    return lines


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def lengths_label(model: str | None) -> str:
    return (f"exact lengths for model {model}" if model else
            "estimated lengths (manifest estimates; `--model DIR` for the model's exact lengths)")


def format_text(curriculum: Curriculum, root: Path, stages: list[PlannedStage], model: str | None = None) -> str:
    head = f"curriculum {curriculum.name} (seed {curriculum.seed}) on {root}; {lengths_label(model)}"
    audit = "audit: " + (str(Path(root) / AUDIT_JSON) if read_audit(root) is not None
                         else f"none ({Path(root) / AUDIT_JSON} absent; run `dataengine audit {root}`)")
    lines = [head, audit]
    for ps in stages:
        lines += [""] + _stage_text(ps, len(stages), model is not None)
    n_warn = sum(len(ps.warnings) for ps in stages)
    lines += ["", f"{plural(len(stages), 'stage')}, {plural(n_warn, 'warning')}"]
    return "\n".join(lines) + "\n"


def to_json(curriculum: Curriculum, root: Path, stages: list[PlannedStage], model: str | None = None) -> dict:
    out = {"curriculum": curriculum.name, "seed": curriculum.seed, "shards": str(root),
           "audit": read_audit(root) is not None, "lengths": "exact" if model else "estimate", "model": model,
           "stages": []}
    for ps in stages:
        s, plan = ps.spec, ps.plan
        out["stages"].append({
            "index": ps.index, "name": s.name, "budget": {"kind": s.budget.kind, "value": s.budget.value},
            "temperature": s.temperature, "train": list(s.train), "lr": s.lr, "prompt_style": s.prompt_style,
            "max_seq_len": s.max_seq_len, "max_images": s.max_images, "frames_per_video": s.frames_per_video,
            "batch_size": s.batch_size, "video": s.video, "fingerprint": plan.fingerprint, "samples": len(plan),
            "tokens": plan.tokens, "warnings": ps.warnings,
            "sources": [{"pattern": sp.pattern, "parts": sp.parts, "size": sp.size, "eligible": sp.eligible,
                         "weight": sp.weight, "cap": sp.cap, "samples": sp.samples, "tokens": sp.tokens,
                         "repeats": sp.repeats, "dropped": sp.dropped} for sp in plan.sources]})
    return out


def format_mixture(mixture: dict) -> str:
    """The loader's realized mixture as a short table (for training logs)."""
    lines = [f"realized mixture, stage {mixture['stage']} (rank {mixture['rank']}/{mixture['world_size']}, "
             f"{mixture['consumed']} global samples consumed)"]
    for pattern, m in mixture["sources"].items():
        lines.append(f"  {pattern:24s} samples {m['samples']:>8,} ({m['share']:6.1%} vs plan {m['planned_share']:6.1%})"
                     f"  tokens {m['tokens']:>12,} ({m['token_share']:6.1%} vs plan {m['planned_token_share']:6.1%})")
    return "\n".join(lines)
