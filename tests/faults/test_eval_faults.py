"""Evaluation killed with SIGKILL mid-generation (a real `python -m eval` child with the tiny
model, watched from outside): the rerun generates only the predictions the killed run had
not written, and the merged predictions equal those of an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthetic_shards import jpeg, record, write_split

REPO = Path(__file__).parents[2]
N = 12
BENCH = """name: synth_qa
dataset: synth
split: val
prompt: {style: robotron}
metrics: [text]
headline: [bleu_1]
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("eval_faults")
    write_split(base / "shards", "synth", "val", [
        record("synth", "val", f"s{i:02d}", f"synth:scene{i}", f"synth:frame{i}", [jpeg(i)]) for i in range(N)])
    (base / "benchmarks").mkdir()
    (base / "benchmarks" / "synth_qa.yaml").write_text(BENCH)
    (base / "groups.yaml").write_text("seen: [synth_qa]\nunseen: []\n")
    return base


def command(base: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "eval", "--model", "tiny", "--benchmarks", "synth_qa", "--shards",
            str(base / "shards"), "--out", str(out), "--benchmarks-dir", str(base / "benchmarks"),
            "--groups", str(base / "groups.yaml"), "--batch-size", "1", "--max-new-tokens", "24", "--skip-meteor"]


def env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow  # three tiny-model evaluations in child processes
def test_sigkill_mid_generation_regenerates_only_what_is_missing(setup, tmp_path):
    clean = subprocess.run(command(setup, tmp_path / "clean"), env=env(), capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    expected = (tmp_path / "clean" / "model" / "predictions.jsonl").read_bytes()

    out = tmp_path / "killed"
    part = out / "model" / "parts" / "rank-00000.jsonl"
    child = subprocess.Popen(command(setup, out), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while complete_lines(part) < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    done = complete_lines(part)
    assert 3 <= done < N, done
    kept = part.read_bytes().splitlines(keepends=True)[:done]

    rerun = subprocess.run(command(setup, out), env=env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{N - done} new predictions" in rerun.stdout
    assert part.read_bytes().splitlines(keepends=True)[:done] == kept   # the killed run's rows are kept as written
    rows = [json.loads(line) for line in (out / "model" / "predictions.jsonl").read_bytes().splitlines()]
    assert sorted(r["id"] for r in rows) == [f"synth-s{i:02d}" for i in range(N)]
    assert (out / "model" / "predictions.jsonl").read_bytes() == expected
