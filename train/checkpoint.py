"""The run directory, resume checkpoints and stage outputs.

    RUN/run.json                      what the run is (curriculum, model, world size); resume checks it
    RUN/base/                         the tiny model's random initial weights (--model tiny only)
    RUN/stages/NN-<name>/             HF model + processor saved at the stage's end;
        trainer_state.json            written last: its presence marks the stage done
    RUN/checkpoints/step-<global>/    DeepSpeed checkpoint (trainable weights, optimizer,
                                      scheduler) + trainer_state.json + rng-rank<r>.pt
    RUN/checkpoints/latest            DeepSpeed's pointer, updated after the files above
    RUN/tb/                           TensorBoard events

A stage always starts from the previous stage's saved model (the base model for the
first), whether the run continues or resumes, so both paths load the same weights. Frozen
weights are not in resume checkpoints: they are still those of the stage's start model,
which is why a projector-only stage resumes from a checkpoint of a few MB.
"""
from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dataengine.errors import UsageError
from dataengine.jsonfile import write_json

STATE = "trainer_state.json"


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    def stage(self, index: int, name: str) -> Path:
        return self.root / "stages" / f"{index:02d}-{name}"

    def stage_done(self, index: int, name: str) -> bool:
        return (self.stage(index, name) / STATE).is_file()


def check_run(run: RunDir, identity: dict) -> None:
    """Record what the run is; refuse to resume a directory that holds a different run."""
    path = run.root / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        changed = sorted(k for k in identity if old.get(k) != identity[k])
        if changed:
            diff = ", ".join(f"{k}: {old.get(k)!r} -> {identity[k]!r}" for k in changed)
            raise UsageError(f"{run.root} holds a different run ({diff}); "
                             "use a new --out, or the original settings to resume")
        return
    run.root.mkdir(parents=True, exist_ok=True)
    write_json(path, identity)


def latest_checkpoint(run: RunDir) -> tuple[str, dict] | None:
    """(tag, trainer state) of the newest complete resume checkpoint, if any."""
    pointer = run.checkpoints / "latest"
    if not pointer.is_file():
        return None
    tag = pointer.read_text().strip()
    return tag, load_state(run.checkpoints / tag)


def load_state(path: Path) -> dict:
    """The trainer state saved in a checkpoint or finished stage directory."""
    return json.loads((Path(path) / STATE).read_text())


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def prune(run: RunDir, keep: int) -> None:
    """Delete all but the newest `keep` resume checkpoints (never the one `latest` names)."""
    latest = latest_checkpoint(run)
    tags = sorted((p for p in run.checkpoints.glob("step-*") if p.is_dir()), key=lambda p: int(p.name[5:]))
    for path in tags[:-keep]:
        if latest is None or path.name != latest[0]:
            shutil.rmtree(path)
