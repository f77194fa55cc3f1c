"""`python -m eval` end to end on converted fixtures with the random tiny model: predictions,
scores and the report; resume; a training run's zero-shot vs fine-tuned comparison; bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import convert

from dataengine.fixtures import fixture_jobs
from eval.cli import main

COMMON = ["--limit", "2", "--max-new-tokens", "4", "--skip-meteor", "--batch-size", "2"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory, nuscenes_root, ray_session) -> Path:
    root = tmp_path_factory.mktemp("eval_cli")
    out = root / "shards"
    convert("nuscenes", nuscenes_root, out)
    for src, options in fixture_jobs("maplm", root / "raw" / "maplm"):
        convert("maplm", src, out, options)
    return out


def read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.slow
def test_tiny_model_end_to_end_and_resume(shards, tmp_path, capsys):
    args = ["--model", "tiny", "--benchmarks", "nuscenes_planning", "maplm", "--shards", str(shards),
            "--out", str(tmp_path), *COMMON]
    assert main(args) == 0
    rows = read(tmp_path / "model" / "predictions.jsonl")
    assert [r["benchmark"] for r in rows] == ["nuscenes_planning"] * 2 + ["maplm"] * 2
    assert all(r["model"]["model"] == "tiny" and r["decoding"]["max_new_tokens"] == 4 for r in rows)
    scores = json.loads((tmp_path / "model" / "scores.json").read_text())
    plan = scores["benchmarks"]["nuscenes_planning"]
    # 4 random tokens never make 6 waypoints: every sample is a counted failure, L2 is not computed
    assert plan["metrics"]["parse_failures"]["value"] == 2 and plan["failures"] >= 2
    assert plan["metrics"]["l2_avg.uniad"]["status"] == "not computed"
    assert scores["benchmarks"]["maplm"]["metrics"]["qns"]["n"] == 2
    report = json.loads((tmp_path / "report.json").read_text())
    assert [b["benchmark"] for b in report["benchmarks"]] == ["nuscenes_planning", "maplm"]
    assert {b["group"] for b in report["benchmarks"]} == {"seen"}
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "nuscenes_planning" in html
    assert (tmp_path / "groups.png").stat().st_size > 1000 and (tmp_path / "audit" / "audit.json").is_file()
    before = (tmp_path / "model" / "predictions.jsonl").read_bytes()
    capsys.readouterr()
    assert main(args) == 0
    assert "0 new predictions" in capsys.readouterr().out
    assert (tmp_path / "model" / "predictions.jsonl").read_bytes() == before


def make_run(root: Path) -> Path:
    """A training run directory as train/ writes it (train/checkpoint.py): base model, one finished stage."""
    from vlm.model import build_tiny

    run = root / "run"
    build_tiny("tiny", 0).save(run / "base")
    stage = run / "stages" / "00-finetune"
    build_tiny("tiny", 1).save(stage)
    (stage / "trainer_state.json").write_text("{}\n")
    (run / "run.json").write_text(json.dumps({"curriculum": "demo", "model": "tiny", "world_size": 1}) + "\n")
    return run


@pytest.mark.slow
def test_run_compare_zero_shot_vs_fine_tuned(shards, tmp_path):
    run = make_run(tmp_path)
    out = tmp_path / "out"
    assert main(["--run", str(run), "--compare", "--benchmarks", "seen", "--shards", str(shards), "--out", str(out),
                 *COMMON]) == 0
    zero, fine = read(out / "zero_shot" / "predictions.jsonl"), read(out / "fine_tuned" / "predictions.jsonl")
    assert [r["id"] for r in zero] == [r["id"] for r in fine]
    assert zero[0]["model"]["model"] == str(run / "base") and fine[0]["model"]["model"].endswith("00-finetune")
    planning = [r for r in zero if r["benchmark"] == "nuscenes_planning"]
    assert planning and all(r["prompt"]["reasoning"] == "openemma_cot" for r in planning)
    assert all(r["prompt"]["reasoning"] == "" for r in fine)
    report = json.loads((out / "report.json").read_text())
    assert report["variants"] == ["zero_shot", "fine_tuned"]
    assert "curriculum 'demo'" in report["contamination_basis"]
    missing = {b["benchmark"]: b["status"] for b in report["benchmarks"] if b["status"] != "scored"}
    assert missing == {b: "missing shards" for b in ("codalm", "drivelm", "lingoqa", "omnidrive", "nuinstruct")}
    assert (out / "comparison.png").is_file()
    assert "| zero_shot | fine_tuned |" in (out / "report.md").read_text().replace("headline metric | ", "")


def test_bad_input_is_one_clear_error(shards, tmp_path, capsys):
    def err(args):
        assert main(args) == 2
        return capsys.readouterr().err

    base = ["--shards", str(shards), "--out", str(tmp_path / "o"), *COMMON]
    assert "not a model directory" in err(["--model", str(tmp_path), "--benchmarks", "maplm", *base])
    assert "not a training run directory" in err(["--run", str(tmp_path), "--benchmarks", "maplm", *base])
    assert "unknown benchmark 'nope'" in err(["--model", "tiny", "--benchmarks", "nope", *base])
    assert "--compare needs --run" in err(["--model", "tiny", "--compare", *base])
    assert "no predictions file" in err(["--model", "tiny", "--benchmarks", "maplm", "--score-only", *base])
    assert "--judge-url and --judge-model go together" in err(["--model", "tiny", "--judge-url", "http://x", *base])
