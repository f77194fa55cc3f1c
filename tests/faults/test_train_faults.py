"""Training killed with SIGKILL mid-step and mid-checkpoint-write (a real `python -m train`
child, tests/faults/train_child.py): the rerun resumes from the last complete checkpoint,
trains exactly the samples the killed run had not yet made permanent, and ends with the
weights of an uninterrupted run; a half-written checkpoint is never taken for a complete one."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from curriculum_shards import write_source

CHILD = Path(__file__).with_name("train_child.py")
REPO = Path(__file__).parents[2]
CURRICULUM = """
name: faults
seed: 3
stages:
  - name: tune
    sources: [{pattern: alpha/train, weight: 1.0}]
    budget: {samples: 12}
    train: [projector, llm]
    lr: {projector: 1.0e-4, llm: 2.0e-5}
    warmup_ratio: 0.0
    batch_size: 2
"""
STAGE = "stages/00-tune"


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("train_faults")
    write_source(base / "shards", "alpha", 12)
    (base / "cur.yaml").write_text(CURRICULUM)
    clean = base / "clean"
    assert train(base, clean, "none").returncode == 0
    return {"base": base, "clean": clean, "keys": steps(clean)}


def train(base: Path, out: Path, crash: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    cmd = [sys.executable, str(CHILD), str(out.with_suffix(".keys.jsonl")), crash, "--",
           "--curriculum", str(base / "cur.yaml"), "--model", "tiny", "--out", str(out),
           "--shards", str(base / "shards"), "--num-workers", "0", "--no-progress", "--save-every", "2",
           "--keep-checkpoints", "1"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def steps(out: Path) -> list[dict]:
    """Every step the runs into `out` finished, in order (a rerun appends)."""
    return [json.loads(line) for line in out.with_suffix(".keys.jsonl").read_text().splitlines()]


def killed(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == -signal.SIGKILL


def latest(out: Path) -> str:
    return (out / "checkpoints" / "latest").read_text().strip()


def resumed_exactly(setup: dict, out: Path, kept: int) -> None:
    """The killed run kept its first `kept` steps (its last complete checkpoint); the rerun
    trained exactly the rest, with the same samples in the same order, and the same weights."""
    done = steps(out)
    first_run = [s for s in done if s["pid"] == done[0]["pid"]]
    rerun = done[len(first_run):]
    assert len({s["pid"] for s in rerun}) == 1
    assert [s["step"] for s in rerun] == list(range(kept + 1, len(setup["keys"]) + 1))
    assert [s["keys"] for s in first_run[:kept] + rerun] == [s["keys"] for s in setup["keys"]]
    assert (out / STAGE / "model.safetensors").read_bytes() == (setup["clean"] / STAGE / "model.safetensors").read_bytes()


@pytest.mark.slow  # ~4 runs of the tiny model through DeepSpeed on CPU
def test_sigkill_mid_step_resumes_from_the_last_checkpoint_with_the_remaining_samples(setup, tmp_path):
    out = tmp_path / "run"
    proc = train(setup["base"], out, "step:5")
    assert killed(proc), proc.stderr[-2000:]
    assert [s["step"] for s in steps(out)] == [1, 2, 3, 4] and latest(out) == "step-4"
    assert not (out / STAGE).exists()
    proc = train(setup["base"], out, "none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    resumed_exactly(setup, out, kept=4)


@pytest.mark.slow
def test_sigkill_mid_checkpoint_write_resumes_from_the_previous_complete_one(setup, tmp_path):
    out = tmp_path / "run"
    proc = train(setup["base"], out, "ckpt:step-4")
    assert killed(proc), proc.stderr[-2000:]
    half = out / "checkpoints" / "step-4"
    assert (half / "trainer_state.json").is_file(), "the kill must land after the state, inside DeepSpeed's files"
    assert latest(out) == "step-2"   # the pointer never names the half-written one
    proc = train(setup["base"], out, "none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    resumed_exactly(setup, out, kept=2)
