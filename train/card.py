"""The model card (README.md) each stage's HF directory carries.

A stage's output is a plain HF model directory (LoRA merged) that `transformers` loads with no
project code; the card says where it came from: the base model, the curriculum and stage, the
data drawn (per source: the dataset/splits matched, samples in the plan), the leakage audit's
verdict on the shard root, the validation losses, and the evaluation scores once
`python -m eval` has written them beside the run.
"""
from __future__ import annotations

import json
from pathlib import Path

from curricula.spec import Curriculum


def audit_verdict(shards: Path) -> str:
    path = Path(shards) / "audit" / "audit.json"
    if not path.is_file():
        return "not audited (run `dataengine audit` on the shard root)"
    data = json.loads(path.read_text())
    if data.get("clean"):
        return "clean: no unseen benchmark shares a scene, frame or image with training data"
    return f"{len(data.get('unseen_leaks', []))} unseen benchmark/train pairs overlap (contaminated)"


def model_card(curriculum: Curriculum, index: int, base_model: str, plan, shards: Path, *,
               global_step: int, validation: dict[str, float], scores: dict | None = None) -> str:
    """Markdown for `<run>/stages/<nn>-<name>/README.md`; `plan` is the stage's StagePlan."""
    stage = curriculum.stages[index]
    rows = "\n".join(f"| {sp.pattern} | {', '.join(sp.parts) or 'missing'} | {sp.samples} | {sp.tokens} |"
                     for sp in plan.sources)
    val = "\n".join(f"- {k}: {v:.4f}" for k, v in sorted(validation.items())) or "- none (the stage names no `val`)"
    evals = ("\n".join(f"- {k}: {v}" for k, v in sorted(scores.items())) if scores
             else "None yet: `python -m eval --run RUN` scores the run's final model.")
    return f"""---
library_name: transformers
base_model: {base_model}
tags: [driving, vision-language, llava]
---
# {curriculum.name}: stage {index + 1}/{len(curriculum.stages)} `{stage.name}`

Fine-tuned from `{base_model}` with the curriculum `{curriculum.name}` (seed {curriculum.seed}) through
stage {index + 1}, {global_step} optimizer steps in all. A plain HF directory (LoRA merged when used):
`AutoModelForImageTextToText.from_pretrained(this_dir)` loads it.

## Stage

{stage.description or stage.name}. Trained parts: {', '.join(stage.train)}; learning rates:
{', '.join(f'{k} {v:g}' for k, v in stage.lr.items())}; prompt style `{stage.prompt_style}`.

## Data

Shard root `{shards}`. Leakage audit: {audit_verdict(shards)}.

| source | dataset/splits | samples drawn | tokens |
|---|---|---|---|
{rows}

## Validation loss at the stage's end

{val}

## Evaluation

{evals}
"""
