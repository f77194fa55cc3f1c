"""`curricula plan`: the three presets against generated shards, JSON output, warnings
(missing sources, zero weight, unseen-benchmark leakage found by the audit)."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml
from curriculum_shards import mixture_root, write_source
from synthetic_shards import jpeg, record, write_split

from curricula.__main__ import main
from curricula.plan import AUDIT_JSON, format_mixture, plan_curriculum
from curricula.spec import load_curriculum
from dataengine.audit import AuditConfig, run_audit, to_json


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory, nuscenes_shards):
    """The nuScenes fixture plus one more driving source the demo names (drivelm/train)."""
    root = tmp_path_factory.mktemp("plan_root")
    shutil.copytree(nuscenes_shards / "nuscenes", root / "nuscenes")
    write_source(root, "drivelm", 8, layout="multi_view")
    return root


@pytest.mark.parametrize("preset", ["demo", "robotron_drive", "opendrivevla"])
def test_presets_plan_against_generated_shards(demo_root, preset, capsys):
    assert main(["plan", preset, "--shards", str(demo_root)]) == 0
    out = capsys.readouterr().out
    c = load_curriculum(preset)
    for i, stage in enumerate(c.stages):
        assert f"stage {i + 1}/{len(c.stages)} {stage.name}:" in out
        for source in stage.sources:
            assert source.pattern in out
    assert "WARNING: source 'lingoqa/train': missing" in out or preset == "opendrivevla"
    assert "nuscenes/train" in out and "Traceback" not in out


def test_demo_plan_json_mixes_what_exists_and_warns_for_the_rest(demo_root, capsys):
    assert main(["plan", "demo", "--shards", str(demo_root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    align, finetune = doc["stages"]
    assert align["samples"] == 8 and align["sources"][0]["samples"] == 8
    drawn = {s["pattern"]: s["samples"] for s in finetune["sources"]}
    planning = "nuscenes/train [planning.trajectory]"   # the task filter keeps agent motion out
    assert drawn[planning] > 0 and drawn["drivelm/train"] > 0
    assert drawn["codalm/train"] == 0
    assert finetune["samples"] == 2048 == sum(drawn.values())
    assert sum(s["tokens"] for s in finetune["sources"]) == finetune["tokens"]
    missing = [w for w in finetune["warnings"] if "missing" in w]
    assert len(missing) == sum(1 for s in finetune["sources"] if not s["parts"]) >= 4
    # weights 3:1 between nuscenes planning and drivelm, the only two present
    assert abs(drawn[planning] - 3 * drawn["drivelm/train"]) <= 3


def _audited_root(tmp_path):
    root = mixture_root(tmp_path / "shards")
    leak = record("drama", "val", "x0", "alpha:scene0", "drama:x0", [jpeg(7)])   # shares alpha's scene0
    clean = record("drama", "val", "x1", "drama:elsewhere", "drama:x1", [jpeg(8)])
    write_split(root, "drama", "val", [leak, clean])
    write_source(root, "bddx", 4)
    (root / AUDIT_JSON).parent.mkdir()
    (root / AUDIT_JSON).write_text(json.dumps(to_json(run_audit(AuditConfig(root=root)))))
    return root


def test_plan_warns_about_sources_the_audit_finds_in_unseen_benchmarks(tmp_path, capsys):
    root = _audited_root(tmp_path)
    spec = {"name": "leaky", "seed": 1, "stages": [{
        "name": "s", "budget": {"samples": 20}, "train": ["llm"], "lr": {"llm": 1e-5}, "max_images": 16,
        "sources": [{"pattern": "alpha/train", "weight": 1}, {"pattern": "beta/train", "weight": 1},
                    {"pattern": "bddx/train", "weight": 1}, {"pattern": "gamma/train", "weight": 0}]}]}
    path = tmp_path / "leaky.yaml"
    path.write_text(yaml.safe_dump(spec))
    stages = plan_curriculum(load_curriculum(path), root)
    warnings = stages[0].warnings
    assert any("'alpha/train': the audit finds alpha train data in unseen benchmark drama/val (1 of 2" in w
               for w in warnings)
    assert any("'bddx/train': trains on bddx, which the audit declares an unseen benchmark" in w for w in warnings)
    assert any("'gamma/train': zero weight" in w for w in warnings)
    assert not any("beta/train" in w for w in warnings)
    assert main(["plan", str(path), "--shards", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"audit: {root / AUDIT_JSON}" in out and "1 stage, 3 warnings" in out


def test_overlapping_patterns_and_missing_root_are_usage_errors(tmp_path, capsys):
    root = mixture_root(tmp_path / "shards")
    spec = {"name": "dup", "seed": 1, "stages": [{
        "name": "s", "budget": {"samples": 4}, "train": ["llm"], "lr": {"llm": 1e-5},
        "sources": [{"pattern": "*/train", "weight": 1}, {"pattern": "alpha/train", "weight": 1}]}]}
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["plan", str(path), "--shards", str(root)]) == 2
    assert "alpha/train is matched by both source '*/train' and 'alpha/train'" in capsys.readouterr().err
    assert main(["plan", "demo", "--shards", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_format_mixture_lists_every_source():
    text = format_mixture({"stage": "s", "rank": 0, "world_size": 2, "consumed": 8, "sources": {
        "a/train": {"samples": 3, "tokens": 300, "share": 0.75, "token_share": 0.6, "planned_share": 0.7,
                    "planned_token_share": 0.65},
        "b/train": {"samples": 1, "tokens": 200, "share": 0.25, "token_share": 0.4, "planned_share": 0.3,
                    "planned_token_share": 0.35}}})
    assert "a/train" in text and "75.0% vs plan  70.0%" in text and "b/train" in text
