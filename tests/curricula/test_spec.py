"""The curriculum spec: presets load, bad files fail with one line naming the file and the key."""
from __future__ import annotations

import copy

import pytest
import yaml

from curricula.__main__ import main
from curricula.spec import PARTS, SpecError, load_curriculum, parse_curriculum, presets

GOOD = {
    "name": "t", "seed": 3,
    "stages": [{
        "name": "one", "budget": {"samples": 10}, "train": ["projector"], "lr": {"projector": 1e-3},
        "sources": [{"pattern": "alpha/train", "weight": 2.0}, {"pattern": "beta/*", "weight": 1.0}],
    }],
}


def _with(path: list, value) -> dict:
    """GOOD with the value at `path` replaced (a value of ... deletes the key)."""
    doc = copy.deepcopy(GOOD)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


def test_good_spec_parses_into_frozen_dataclasses():
    c = parse_curriculum(GOOD, "good.yaml")
    stage = c.stages[0]
    assert (c.name, c.seed, stage.name, stage.budget.kind, stage.budget.value) == ("t", 3, "one", "samples", 10)
    assert [s.pattern for s in stage.sources] == ["alpha/train", "beta/*"]
    assert stage.lr == {"projector": 1e-3} and stage.train == ("projector",)
    assert (stage.prompt_style, stage.max_seq_len, stage.batch_size) == ("robotron", 8192, 1)
    with pytest.raises(AttributeError):
        stage.name = "other"


def test_yaml_text_numbers_and_source_shorthand():
    doc = _with(["stages", 0, "lr"], {"projector": "1e-3"})  # YAML 1.1 reads 1e-3 as a string
    doc["stages"][0]["sources"] = ["alpha/train", "beta/train"]
    doc["stages"][0]["temperature"] = 2
    stage = parse_curriculum(doc).stages[0]
    assert stage.lr["projector"] == pytest.approx(1e-3)
    assert [s.weight for s in stage.sources] == [None, None] and stage.temperature == 2.0


BAD = [
    (_with(["stages", 0, "wieght"], 1), "stages[0].wieght: unknown key"),
    (_with(["stages", 0, "sources", 0, "wieght"], 1),
     "stages[0].sources[0].wieght: unknown key (did you mean 'weight'?)"),
    (_with(["seeds"], 1), "curriculum.seeds: unknown key"),
    (_with(["stages", 0, "train"], ["projector", "decoder"]), "stages[0].train: unknown part 'decoder'"),
    (_with(["stages", 0, "sources", 1, "weight"], -1.0), "stages[0].sources[1].weight: -1.0 must be >= 0"),
    (_with(["stages", 0, "budget"], ...), "stages[0].budget: missing"),
    (_with(["stages", 0, "budget"], {"samples": 5, "tokens": 9}), "stages[0].budget: give exactly one of"),
    (_with(["stages", 0, "budget"], {"steps": 5}), "stages[0].budget.steps: unknown key"),
    (_with(["stages", 0, "budget"], {"samples": 2.5}), "stages[0].budget.samples: 2.5 must be a whole number"),
    (_with(["stages", 0, "budget"], {"epochs": 0}), "stages[0].budget.epochs: 0 must be > 0"),
    (_with(["stages", 0, "temperature"], 2.0),
     "stages[0].sources[0].weight: a stage with a temperature takes no weights"),
    (_with(["stages", 0, "sources", 0, "weight"], ...), "stages[0].sources[0].weight: missing"),
    (_with(["stages", 0, "sources"], [{"pattern": "a/train", "weight": 0}]), "stages[0].sources: every weight is zero"),
    (_with(["stages", 0, "sources", 0, "pattern"], "alpha"), "stages[0].sources[0].pattern: 'alpha' must match"),
    (_with(["stages", 0, "sources", 0, "max_repeats"], 0), "stages[0].sources[0].max_repeats: 0 must be > 0"),
    (_with(["stages", 0, "sources", 0, "max_samples"], 1.5), "stages[0].sources[0].max_samples: 1.5 is not an integer"),
    (_with(["stages", 0, "lr"], {}), "stages[0].lr.projector: missing"),
    (_with(["stages", 0, "lr"], {"projector": 1e-3, "llm": 1e-5}), "stages[0].lr.llm: 'llm' is not trained"),
    (_with(["stages", 0, "lr"], {"projector": float("nan")}), "stages[0].lr.projector: nan is not a finite number"),
    (_with(["stages", 0, "prompt_style"], "fancy"), "stages[0].prompt_style: unknown style 'fancy'"),
    (_with(["stages", 0, "batch_size"], 0), "stages[0].batch_size: 0 must be >= 1"),
    (_with(["stages", 0, "max_seq_len"], "long"), "stages[0].max_seq_len: 'long' is not an integer"),
    (_with(["stages"], []), "stages: must be a non-empty list"),
    (_with(["seed"], ...), "seed: missing"),
    (_with(["name"], "Bad Name"), "name: 'Bad Name' must match"),
]


@pytest.mark.parametrize("doc,message", BAD, ids=[m.split(":")[0] + "/" + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_specs_name_the_file_and_the_key(doc, message):
    with pytest.raises(SpecError) as err:
        parse_curriculum(doc, "bad.yaml")
    text = str(err.value)
    assert text.startswith("bad.yaml: ") and message in text and "\n" not in text


def test_duplicate_stage_names_and_patterns_rejected():
    doc = copy.deepcopy(GOOD)
    doc["stages"].append(copy.deepcopy(doc["stages"][0]))
    with pytest.raises(SpecError, match=r"stages\[1\].name: 'one' is used by stage 0"):
        parse_curriculum(doc, "x.yaml")
    doc = _with(["stages", 0, "sources", 1, "pattern"], "alpha/train")
    with pytest.raises(SpecError, match=r"sources\[1\].pattern: 'alpha/train' is listed twice"):
        parse_curriculum(doc, "x.yaml")


def test_load_curriculum_reports_the_path_for_yaml_errors(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nstages: [\n")
    with pytest.raises(SpecError, match=f"^{path}: not valid YAML"):
        load_curriculum(path)
    with pytest.raises(SpecError, match="no such file, and not a preset"):
        load_curriculum(tmp_path / "absent.yaml")


def test_cli_exits_2_with_one_line_on_a_bad_spec(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with(["stages", 0, "train"], ["projector", "decoder"])))
    assert main(["plan", str(path), "--shards", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "unknown part 'decoder'" in err


def test_the_three_presets_load():
    found = presets()
    assert {"demo", "robotron_drive", "opendrivevla"} <= set(found)
    robotron = load_curriculum(found["robotron_drive"])
    assert [s.train for s in robotron.stages][0] == ("projector",)
    assert all(set(s.train) >= {"projector", "vision", "llm"} for s in robotron.stages[1:])
    assert [s.pattern for s in robotron.stages[3].sources] == [
        "codalm/train", "maplm/train", "drivelm/train", "lingoqa/train", "omnidrive/train", "nuinstruct/train"]
    assert len(load_curriculum("opendrivevla").stages) == 4
    demo = load_curriculum("demo")
    assert demo.stages[0].sources[0].pattern == "nuscenes/train"
    for c in (robotron, demo, load_curriculum("opendrivevla")):
        for stage in c.stages:
            assert set(stage.train) <= set(PARTS) and set(stage.lr) == set(stage.train)


def test_robotron_preset_reaches_the_papers_global_batches_with_small_per_gpu_batches():
    """Per-GPU micro-batches an 8B model fits at 8k (<= 2) and per-stage accumulation: on 8 GPUs
    the global batches are RoboTron-Drive's 512 (stage 1) and 256 (stage 2)."""
    stages = load_curriculum("robotron_drive").stages
    assert all(s.batch_size <= 2 and s.max_seq_len == 8192 for s in stages)
    assert [s.batch_size * s.grad_accum * 8 for s in stages][:2] == [512, 256]
    assert parse_curriculum({"name": "x", "seed": 1, "stages": [{
        "name": "a", "sources": ["d/train"], "temperature": 1.0, "budget": {"samples": 4}, "train": ["projector"],
        "lr": {"projector": 1e-3}}]}).stages[0].grad_accum is None
    with pytest.raises(SpecError, match="grad_accum"):
        parse_curriculum({"name": "x", "seed": 1, "stages": [{
            "name": "a", "sources": ["d/train"], "temperature": 1.0, "budget": {"samples": 4}, "train": ["projector"],
            "lr": {"projector": 1e-3}, "grad_accum": 0}]})
