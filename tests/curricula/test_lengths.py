"""`curricula plan --model tiny|DIR`: exact lengths equal to what `vlm` encodes for the same
samples (tiny OneVision and tiny LLaVA-NeXT), over-length samples dropped and counted with
their reason, `video: drop` on a family without video counted as such, the model named
`tiny` planned as its saved directory is, and the exact columns cached."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import yaml
from curriculum_shards import mixture_root

from curricula.__main__ import main
from curricula.lengths import ExactLengths
from curricula.loader import load_sample
from curricula.sources import resolve
from curricula.spec import load_curriculum
from dataengine.reader import DatasetReader
from vlm.model import build_tiny
from vlm.vision import MediaDecoder

SOURCES = ["alpha/train", "beta/train", "gamma/train"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return mixture_root(tmp_path_factory.mktemp("lengths") / "shards")


@pytest.fixture(scope="module", params=["tiny", "tiny-next"])
def model(request, tmp_path_factory):
    bundle = build_tiny(request.param, 0)
    out = tmp_path_factory.mktemp(request.param) / "model"
    bundle.save(out)
    return bundle, out


def _curriculum(tmp_path, max_seq_len: int, video: str = "frames"):
    doc = {"name": "lengths", "seed": 3, "stages": [{
        "name": "s", "budget": {"samples": 20}, "train": ["llm"], "lr": {"llm": 1e-4}, "max_seq_len": max_seq_len,
        "frames_per_video": 4, "max_images": 64, "video": video,
        "sources": [{"pattern": p, "weight": 1} for p in SOURCES]}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_exact_lengths_equal_what_vlm_encodes(root, model, tmp_path):
    bundle, model_dir = model
    stage = load_curriculum(_curriculum(tmp_path, 100_000)).stages[0]
    lengths = ExactLengths.from_model(model_dir)
    encoder = bundle.encoder(10 ** 6, stage.frames_per_video)
    decoder = MediaDecoder.for_spec(bundle.spec)
    checked = 0
    for j, rows in enumerate(resolve(stage, root)):
        exact, reasons = lengths.source(root, stage, j, rows)
        assert not any(reasons)
        (dataset, split), = rows.parts
        reader = DatasetReader(root, dataset, split)
        for i in range(0, len(rows), 3):
            sample = load_sample(reader.get(rows.keys[i]), stage, rows.pattern, (28, 28), 0, 0, decoder)
            encoded = encoder.encode(sample)
            assert exact.text_tokens[i] + exact.visual_tokens[i] == len(encoded.input_ids), rows.keys[i]
            assert exact.visual_tokens[i] == encoded.visual_tokens
            checked += 1
        assert not np.array_equal(exact.tokens, rows.tokens)   # not the manifest estimate
    assert checked >= 14


def test_plan_with_model_drops_over_length_and_counts_the_reason(root, model, tmp_path, capsys):
    bundle, model_dir = model
    curriculum = _curriculum(tmp_path, 8192)
    assert main(["plan", str(curriculum), "--shards", str(root), "--model", str(model_dir), "--json",
                 "--no-cache"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["lengths"] == "exact" and doc["model"] == str(model_dir)
    alpha = doc["stages"][0]["sources"][0]
    assert alpha["dropped"]["max_seq_len"] == 4 and alpha["eligible"] == 20      # every 6th of 24 is long
    assert main(["plan", str(curriculum), "--shards", str(root), "--model", str(model_dir), "--no-cache"]) == 0
    text = capsys.readouterr().out
    assert "exact lengths for model" in text and "drop video" in text and "est. tokens" not in text
    assert main(["plan", str(curriculum), "--shards", str(root), "--no-cache"]) == 0
    assert "estimated lengths" in capsys.readouterr().out


def test_video_drop_on_a_family_without_video(root, model, tmp_path, capsys):
    bundle, model_dir = model
    assert main(["plan", str(_curriculum(tmp_path, 100_000, video="drop")), "--shards", str(root), "--model",
                 str(model_dir), "--json", "--no-cache"]) == 0
    gamma = json.loads(capsys.readouterr().out)["stages"][0]["sources"][2]
    expected = 0 if bundle.spec.has_video else 6
    assert gamma["dropped"]["video"] == expected and gamma["eligible"] == 6 - expected


def test_a_directory_that_is_not_a_model_is_one_line_exit_2(root, tmp_path, capsys):
    assert main(["plan", str(_curriculum(tmp_path, 8192)), "--shards", str(root), "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "Traceback" not in err


def test_plan_by_tiny_name_counts_every_sample_as_its_saved_directory_does(root, model, tmp_path, capsys):
    """`--model tiny` (built in memory, as the trainer builds it) gives the same exact lengths,
    draws and drops as the saved directory the test above checks against the encoder; every
    sample of a source is either eligible or dropped with a reason."""
    bundle, model_dir = model
    name = "tiny" if bundle.spec.has_video else "tiny-next"
    curriculum = _curriculum(tmp_path, 8192, video="drop")
    docs = []
    for chosen in (name, str(model_dir)):
        assert main(["plan", str(curriculum), "--shards", str(root), "--model", chosen, "--json", "--no-cache"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    by_name, by_dir = docs
    assert by_name["lengths"] == "exact" and by_name["model"] == name
    fields = ("size", "eligible", "samples", "tokens", "dropped")
    assert [[s[f] for f in fields] for s in by_name["stages"][0]["sources"]] == \
        [[s[f] for f in fields] for s in by_dir["stages"][0]["sources"]]
    for source in by_name["stages"][0]["sources"]:
        assert source["size"] == source["eligible"] + sum(source["dropped"].values())
    alpha, _, gamma = by_name["stages"][0]["sources"]
    assert alpha["dropped"]["max_seq_len"] == 4 and gamma["dropped"]["video"] == (0 if name == "tiny" else 6)
    assert main(["plan", str(curriculum), "--shards", str(root), "--model", name, "--no-cache"]) == 0
    assert f"exact lengths for model {name}" in capsys.readouterr().out


def test_exact_columns_are_cached_per_model_style_and_frames(root, model, tmp_path):
    """The second planning reads the cached columns; another prompt style is another entry."""
    _, model_dir = model
    stage = load_curriculum(_curriculum(tmp_path, 8192)).stages[0]
    lengths = ExactLengths.from_model(model_dir)
    cache = tmp_path / "cache"
    rows = resolve(stage, root)
    first, reasons = lengths.stage_rows(root, stage, rows, cache)
    assert len(list(cache.glob("lengths-*.npz"))) == len(rows)
    lengths.sample = None   # a recomputation would now fail: the cache must answer
    again, reasons_again = lengths.stage_rows(root, stage, rows, cache)
    assert [r.fingerprint for r in again] == [r.fingerprint for r in first]
    assert all(np.array_equal(a.tokens, b.tokens) for a, b in zip(first, again))
    assert all(list(a) == list(b) for a, b in zip(reasons, reasons_again))
    plain = dataclasses.replace(stage, prompt_style="plain")
    styled = [ExactLengths.from_model(model_dir).source(root, plain, j, r, cache)[0] for j, r in enumerate(rows)]
    assert all(a.fingerprint != b.fingerprint for a, b in zip(first, styled))
    assert any(not np.array_equal(a.tokens, b.tokens) for a, b in zip(first, styled))
    assert len(list(cache.glob("lengths-*.npz"))) == 2 * len(rows)


def test_the_demo_preset_plans_with_tiny_on_fixture_shards(nuscenes_shards, capsys):
    """`curricula plan demo --model tiny` literally: exact lengths (not the estimates), and
    every sample of a present source eligible or dropped with a counted reason."""
    args = ["plan", "demo", "--shards", str(nuscenes_shards), "--json", "--no-cache"]
    assert main(args + ["--model", "tiny"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    estimate = json.loads(capsys.readouterr().out)
    assert exact["lengths"] == "exact" and exact["model"] == "tiny" and estimate["lengths"] == "estimate"
    present = [s for stage in exact["stages"] for s in stage["sources"] if s["parts"]]
    assert present and all(s["size"] == s["eligible"] + sum(s["dropped"].values()) for s in present)
    assert [st["tokens"] for st in exact["stages"]] != [st["tokens"] for st in estimate["stages"]]
