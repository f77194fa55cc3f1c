"""`curricula plan --model DIR`: exact lengths equal to what `vlm` encodes for the same
samples (tiny OneVision and tiny LLaVA-NeXT), over-length samples dropped and counted with
their reason, and `video: drop` on a family without video counted as such."""
from __future__ import annotations

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
    lengths = ExactLengths(model_dir)
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
