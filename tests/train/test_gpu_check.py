"""benchmarks/gpu_check.py in its reduced CPU mode: every case builds from configs (no
download), runs the trainer's step (ZeRO-2 and ZeRO-3, checkpointing on) next to plain HF,
and reports a row per path; kernels that need a GPU are listed as skipped with the reason."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
pytestmark = pytest.mark.filterwarnings("ignore")


def test_cpu_smoke_reports_trainer_and_baseline_rows(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gpu_check

    assert gpu_check.main(["--cpu-smoke", "--warmup", "0", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 0.5b") or line.startswith("| 7b")]
    assert [r.split(" | ")[:3] for r in rows] == [["| 0.5b", "sdpa", "plain HF"], ["| 0.5b", "sdpa", "trainer"],
                                                   ["| 7b", "sdpa", "trainer"]]
    assert all(float(r.split(" | ")[5].replace(",", "")) > 0 for r in rows)   # tokens/s
    assert "Skipped: 0.5b flash_attention_2: needs a GPU." in out
    sys.modules.pop("gpu_check", None)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here: the full check would run")
def test_without_a_gpu_the_full_check_refuses_with_one_line(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gpu_check

    assert gpu_check.main([]) == 2
    assert "no GPU here" in capsys.readouterr().err
