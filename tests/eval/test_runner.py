"""The prediction runner on small synthetic shards: rows written, resume after a kill, refusal
to mix models, rank-disjoint splitting with a deterministic merge, missing shards, per-sample
errors; the benchmark registry's YAML checks; contamination flags from the leakage audit."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from eval_helpers import FixedPredictor, OraclePredictor
from synthetic_shards import jpeg, record, write_split

from dataengine.errors import UsageError
from dataengine.heldout import UNSEEN_DATASETS
from eval.contamination import assess
from eval.predictions import merge, part_path
from eval.prompting import REASONING, PromptSpec, prompt_sha1, user_turns
from eval.registry import load_registry
from eval.runner import RunConfig, make_plan, predict
from eval.score import score_variant

BENCH = """name: {name}
dataset: {dataset}
split: val
prompt: {{style: robotron}}
zero_shot_prompt: {{post_prompt: "Answer briefly.", reasoning: openemma_cot, answer_marker: "Trajectory:"}}
metrics: [text]
headline: [bleu_1]
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_runner")
    shards = root / "shards"
    val = [record("synth", "val", f"s{i}", f"synth:scene{i}", f"synth:frame{i}", [jpeg(i)],
                  turns=[f"What is in image {i}?", f"Object {i}.", "Why does it matter?", f"Reason {i}."]
                  if i % 2 else None) for i in range(5)]
    write_split(shards, "synth", "val", val)
    write_split(shards, "synth", "train", [record("synth", "train", "t0", "synth:scene3", "synth:other", [jpeg(99)])])
    held = [record("held", "val", "h0", "synth:scene3", "synth:h0", [jpeg(50)]),  # a scene synth/train has
            record("held", "val", "h1", "synth:scene9", "synth:h1", [jpeg(51)])]
    write_split(shards, "held", "val", held)
    bdir = root / "benchmarks"
    bdir.mkdir()
    for name, dataset in (("synth_qa", "synth"), ("held_qa", "held"), ("ghost", "nothere")):
        (bdir / f"{name}.yaml").write_text(BENCH.format(name=name, dataset=dataset))
    (root / "groups.yaml").write_text("seen: [synth_qa]\nunseen: [held_qa, ghost]\n")
    registry = load_registry(bdir, root / "groups.yaml")
    return shards, registry


def config(setup, out: Path, names=("synth_qa",), **kw) -> RunConfig:
    shards, registry = setup
    return RunConfig(shards, out, tuple(registry.select(list(names))), "model", **kw)


def run(cfg, predictor):
    plan = make_plan(cfg)
    written = predict(cfg, predictor, plan, progress=lambda *a: None)
    merge(cfg.out, plan.order)
    return plan, written


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


class Recording(FixedPredictor):
    def __init__(self, text):
        super().__init__(text)
        self.requests = []

    def generate(self, requests, decoding):
        self.requests += requests
        return super().generate(requests, decoding)


def test_rows_and_turn_by_turn_generation(setup, tmp_path):
    pred = Recording("MY ANSWER")
    cfg = config(setup, tmp_path, batch_size=2)
    plan, written = run(cfg, pred)
    rows = lines(tmp_path / "predictions.jsonl")
    assert [r["id"] for r in rows] == [f"synth-s{i}" for i in range(5)] and written == {"synth_qa": 5}
    r1 = rows[1]
    assert r1["prediction"] == ["MY ANSWER", "MY ANSWER"] and r1["references"] == [["Object 1."], ["Reason 1."]]
    assert r1["questions"] == ["What is in image 1?", "Why does it matter?"]
    assert r1["model"] == pred.identity and r1["decoding"]["temperature"] == 0.0 and len(r1["prompt_sha1"]) == 40
    second = [q for q in pred.requests if q.key == "synth-s1" and len(q.conversation) == 3][0]
    # the second question sees the model's own first answer, never the reference
    assert second.conversation[1] == {"role": "assistant", "content": "MY ANSWER"}
    assert second.conversation[0]["content"].startswith("<image>\nThere is an image of traffic")


def test_resume_skips_done_and_repairs_a_cut_line(setup, tmp_path):
    cfg = config(setup, tmp_path, batch_size=2)
    oracle = OraclePredictor(cfg.shards, [("synth", "val")])
    run(cfg, oracle)
    first = (tmp_path / "predictions.jsonl").read_bytes()
    calls = oracle.calls
    _, written = run(cfg, oracle)
    assert written == {} and oracle.calls == calls
    part = part_path(tmp_path, 0)
    kept = part.read_text().splitlines()
    part.write_text("\n".join(kept[:-1]) + "\n" + kept[-1][:40])  # a kill in the middle of the last line
    _, written = run(cfg, oracle)
    assert written == {"synth_qa": 1}
    assert (tmp_path / "predictions.jsonl").read_bytes() == first


def test_resume_refuses_another_model_or_a_malformed_file(setup, tmp_path):
    cfg = config(setup, tmp_path)
    run(cfg, FixedPredictor("a"))
    with pytest.raises(UsageError, match="holds predictions of model"):
        run(cfg, FixedPredictor("b"))
    with pytest.raises(UsageError, match="another --max-new-tokens"):
        run(replace(cfg, max_new_tokens=3), FixedPredictor("a"))
    changed = replace(cfg.benchmarks[0], prompt=PromptSpec(post_prompt="Be brief."))
    with pytest.raises(UsageError, match="another definition of benchmark 'synth_qa'"):
        run(replace(cfg, benchmarks=(changed,)), FixedPredictor("a"))
    part = part_path(tmp_path, 0)
    text = part.read_text().splitlines()
    part.write_text("\n".join([text[0], "{not json", *text[1:]]) + "\n")
    with pytest.raises(UsageError, match=r"rank-00000\.jsonl:2: not a JSON line"):
        run(cfg, FixedPredictor("a"))


def test_ranks_are_disjoint_and_the_merge_does_not_depend_on_them(setup, tmp_path):
    single = config(setup, tmp_path / "one")
    run(single, FixedPredictor("x"))
    two = config(setup, tmp_path / "two", world_size=2)
    plan = make_plan(two)
    for rank in (0, 1):
        predict(replace(two, rank=rank), FixedPredictor("x"), plan, progress=lambda *a: None)
    ids = [{r["id"] for r in lines(part_path(two.out, rank))} for rank in (0, 1)]
    assert ids[0] and ids[1] and not ids[0] & ids[1] and len(ids[0] | ids[1]) == 5
    merge(two.out, plan.order)
    assert (two.out / "predictions.jsonl").read_bytes() == (single.out / "predictions.jsonl").read_bytes()


def test_missing_shards_are_reported_not_fatal(setup, tmp_path):
    plan = make_plan(config(setup, tmp_path, names=("synth_qa", "ghost")))
    assert "nothere/val" in plan.missing["ghost"] and plan.counts == {"synth_qa": 5}
    with pytest.raises(UsageError, match="no benchmark has shards"):
        make_plan(config(setup, tmp_path, names=("ghost",)))


def test_sample_errors_and_empty_answers_are_counted_failures(setup, tmp_path):
    cfg = config(setup, tmp_path)
    plan, _ = run(cfg, FixedPredictor(error="this model takes no video input"))
    scores = score_variant(tmp_path, list(cfg.benchmarks), plan.missing, meteor=False)
    b = scores["benchmarks"]["synth_qa"]
    assert b["errors"] == 5 and b["failures"] == 5 and b["samples"] == 5
    assert b["metrics"]["bleu_1"]["value"] == pytest.approx(0.0, abs=1e-9)
    empty = replace(cfg, out=tmp_path / "empty")
    plan, _ = run(empty, FixedPredictor(""))
    b = score_variant(empty.out, list(cfg.benchmarks), plan.missing, meteor=False)["benchmarks"]["synth_qa"]
    assert b["empty"] == 5 and b["errors"] == 0 and b["failures"] == 5


def test_zero_shot_prompt_and_limit(setup, tmp_path):
    cfg = config(setup, tmp_path, zero_shot=True, limit=2)
    pred = Recording("x")
    run(cfg, pred)
    rows = lines(tmp_path / "predictions.jsonl")
    assert len(rows) == 2 and rows[0]["prompt"]["reasoning"] == "openemma_cot"
    text = pred.requests[0].conversation[0]["content"]
    assert text.endswith(REASONING["openemma_cot"]) and "Answer briefly." in text
    sample = {"layout": "single_image", "media": [{"camera": "front"}],
              "conversations": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}
    plain, cot = PromptSpec(), PromptSpec(reasoning="openemma_cot")
    assert prompt_sha1(user_turns(sample, plain)[0], plain, ["image"]) != prompt_sha1(user_turns(sample, cot)[0], cot,
                                                                                        ["image"])


def test_contamination_marks_unseen_benchmarks_that_overlap_training(setup, tmp_path):
    shards, registry = setup
    benches = registry.select(["seen", "unseen"])
    unseen = set(registry.groups["unseen"])
    result = assess(shards, benches, unseen, [("synth", "train")], "test", tmp_path / "audit")
    held = result["benchmarks"]["held_qa"]
    assert held == {"unseen": True, "contaminated": True, "overlap": 1, "with": ["synth"]}
    # a seen benchmark may overlap its own training data: counted, not flagged
    assert result["benchmarks"]["synth_qa"]["overlap"] == 1 and not result["benchmarks"]["synth_qa"]["contaminated"]
    clean = assess(shards, benches, unseen, [("held", "val")], "test")
    assert clean["benchmarks"]["synth_qa"]["overlap"] == 0
    assert (tmp_path / "audit" / "audit.json").is_file()
    trained_on_it = assess(shards, benches, unseen, [("held", "val")], "test")
    assert trained_on_it["benchmarks"]["held_qa"] == {"unseen": True, "contaminated": True, "overlap": "all",
                                                      "with": ["held/val itself"]}
    unknown = assess(shards, benches, unseen, None, "")
    assert unknown["benchmarks"]["held_qa"]["contaminated"] is None


def test_registry_yaml_errors(tmp_path):
    def bad(text, match):
        d = tmp_path / f"b{abs(hash(text))}"
        d.mkdir()
        (d / "x.yaml").write_text(text)
        with pytest.raises(UsageError, match=match):
            load_registry(d)

    ok = "name: x\ndataset: d\nsplit: val\nmetrics: [text]\n"
    bad(ok + "promt: {}\n", r"x\.yaml: <top>\.promt: unknown key \(did you mean 'prompt'\?\)")
    bad(ok.replace("[text]", "[bleu]"), r"unknown scorer\(s\) \['bleu'\]")
    bad(ok + "prompt: {style: fancy}\n", "'fancy' is not a prompt style")
    bad(ok + "zero_shot_prompt: {reasoning: magic}\n", "'magic' unknown")
    bad(ok + "generation: {max_new_tokens: 0}\n", "max_new_tokens >= 1")
    groups = tmp_path / "groups.yaml"
    groups.write_text("seen: [nope]\n")
    with pytest.raises(UsageError, match=r"groups\.yaml: seen: unknown benchmark\(s\) \['nope'\]"):
        load_registry(None, groups)
    reg = load_registry()
    unseen = sorted(b.name for b in reg.benchmarks.values() if b.dataset in UNSEEN_DATASETS)
    assert {"bddx", "drama", "drivebench", "nuscenes_qa", "talk2car"} <= set(unseen) and "maplm" not in unseen
    assert [b.name for b in reg.select(["unseen", "maplm", "bddx"])] == unseen + ["maplm"]  # duplicates dropped
    with pytest.raises(UsageError, match="unknown benchmark 'mapml'"):
        reg.select(["mapml"])
