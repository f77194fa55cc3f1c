"""LLaVA-NeXT format in: JSON + image folder (single, multi-image, video, text), an HF parquet
dataset read through `datasets`, bad records quarantined with their reason, bad sources exit 2."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import convert

from converters.llava.converter import LlavaOptions
from converters.llava.fixture import BAD, make_llava_json, make_llava_parquet
from dataengine.cli import main as cli
from dataengine.export_llava import ExportConfig, export
from dataengine.manifest import read_quarantine
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root


def samples(root: Path) -> dict[str, dict]:
    return {s.sample["meta"]["source_id"]: s for s in DatasetReader(root, "llava", "train")}


def quarantine(root: Path) -> dict[str, str]:
    return {q["record_id"]: q["reason"] for q in read_quarantine(root / "llava" / "train" / "quarantine.jsonl")}


@pytest.fixture(scope="module")
def json_source(tmp_path_factory) -> Path:
    return make_llava_json(tmp_path_factory.mktemp("llava_raw"))


@pytest.fixture(scope="module")
def json_shards(tmp_path_factory, json_source, ray_session) -> Path:
    out = tmp_path_factory.mktemp("llava_shards")
    convert("llava", json_source, out, LlavaOptions(images=str(json_source.parent / "images")))
    return out


def test_json_records_become_samples(json_source, json_shards):
    images = json_source.parent / "images"
    got = samples(json_shards)
    records = {}
    for r in json.loads(json_source.read_text()):
        if isinstance(r, dict):
            records.setdefault(str(r["id"]), r)  # the first record of an id is the one converted
    assert sorted(got) == ["2", "GCC_train_000001", "dup", "multi-1", "text-1", "video-1"]
    for rid in ("GCC_train_000001", "2", "multi-1", "dup"):
        paths = records[rid]["image"]
        paths = [paths] if isinstance(paths, str) else paths
        stored = got[rid]
        # the bytes as the image folder has them, in the record's order, never re-encoded
        assert [stored.media_bytes(i) for i in range(len(paths))] == [(images / p).read_bytes() for p in paths]
        assert all(m["camera"] == "front" and m["time_offset_s"] == 0.0 for m in stored.sample["media"])
    assert got["GCC_train_000001"].key == "llava-data-gcc_train_000001-" + hashlib.sha1(b"GCC_train_000001").hexdigest()[:8]
    assert got["2"].key == "llava-data-2"
    assert got["dup"].sample["conversations"][0]["content"] == "First."  # the first of two records with one id
    assert [s.sample["layout"] for s in map(got.get, ("GCC_train_000001", "multi-1", "video-1", "text-1"))] == [
        "single_image", "multi_view", "video", "single_image"]
    # placeholders removed wherever they stood; the turns that held them are kept
    assert got["GCC_train_000001"].sample["conversations"][0]["content"] == "Render a clear and concise summary of the photo."
    assert got["2"].sample["conversations"] == [
        {"role": "user", "content": "What is parked on the left?"}, {"role": "assistant", "content": "A red car."},
        {"role": "user", "content": "What colour is the sky?"}, {"role": "assistant", "content": "Grey."}]
    assert got["2"].sample["meta"]["placeholder_turns"] == [0]
    assert got["multi-1"].sample["meta"]["data_source"] == "m4_instruct"  # other fields kept in meta
    assert got["text-1"].sample["media"] == []


def test_video_frames_sampled_evenly_with_pyav(json_shards):
    video = samples(json_shards)["video-1"]
    media = video.sample["media"]
    assert len(media) == LlavaOptions().video_frames
    offsets = [m["time_offset_s"] for m in media]
    assert offsets[-1] == 0.0 and offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert -3.0 <= offsets[0] <= -2.8  # first frame of a 3 s video, the last frame at 0
    assert all(video.media_bytes(i)[:3] == b"\xff\xd8\xff" for i in range(len(media)))


def test_bad_records_quarantined_with_reason(json_source, json_shards):
    q = quarantine(json_shards)
    for rid, words in BAD.items():
        assert words in q[rid], (rid, q[rid])
    assert q["#13"] == "record is a list, not an object"
    card = json.loads((json_shards / "llava" / "train" / "card.json").read_text())["counts"]
    assert card["records_in"] == len(json.loads(json_source.read_text())) == card["samples"] + card["quarantined"]
    assert validate_root(json_shards) == {"llava/train": 6}


def test_paths_never_escape_the_images_root(tmp_path, ray_session):
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "secret.jpg").write_bytes((Path(__file__).parent / "test_llava.py").read_bytes())
    turns = [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "No."}]
    src = tmp_path / "data.json"
    src.write_text(json.dumps([{"id": "abs", "image": str(tmp_path / "secret.jpg"), "conversations": turns},
                               {"id": "up", "image": "a/../../secret.jpg", "conversations": turns},
                               {"id": "vid", "video": "../secret.mp4", "conversations": turns}]))
    convert("llava", src, tmp_path / "out", LlavaOptions(images=str(images)))
    q = quarantine(tmp_path / "out")
    assert sorted(q) == ["abs", "up", "vid"] and all("escapes" in r for r in q.values())


def test_hf_parquet_read_through_datasets(tmp_path, ray_session):
    folder = make_llava_parquet(tmp_path)
    convert("llava", folder, tmp_path / "out", LlavaOptions(subset="ov"))
    got = samples(tmp_path / "out")
    table = pq.read_table(next(folder.rglob("*.parquet"))).to_pylist()
    embedded = {r["id"]: r["image"]["bytes"] for r in table if r["image"] is not None}
    assert sorted(got) == ["ov-0", "ov-1", "ov-2", "ov-3", "ov-text"]
    for rid in ("ov-0", "ov-3"):
        assert got[rid].media_bytes(0) == embedded[rid]  # the published bytes, not a re-encoding
        assert got[rid].key == f"llava-ov-{rid}"
        assert got[rid].sample["meta"] == {"data_source": "fixture", "placeholder_turns": [0], "source_id": rid}
    assert got["ov-text"].sample["media"] == []
    assert quarantine(tmp_path / "out") == {"ov-bad": "image 0: not a JPEG or PNG file"}


def test_export_llava_round_trip(json_shards, tmp_path):
    """Our shards back out in LLaVA-NeXT's format: one <image> per image, the same bytes."""
    export(ExportConfig(json_shards, tmp_path, style="plain"))
    records = {r["id"]: r for r in json.loads((tmp_path / "llava_train.json").read_text())}
    multi = next(r for k, r in records.items() if k.endswith("multi-1"))
    assert multi["conversations"][0]["value"] == "<image>\n<image>\nWhat differs between the two pictures?"
    assert len(multi["image"]) == 2


def test_bad_sources_exit_2(tmp_path, json_source, capsys):
    images = str(json_source.parent / "images")
    (tmp_path / "obj.json").write_text('{"id": 1}')
    (tmp_path / "broken.json").write_text('[{"id": 1,')
    runs = [["--src", str(tmp_path / "absent.json"), "--images", images],
            ["--src", str(tmp_path / "obj.json"), "--images", images],
            ["--src", str(tmp_path / "broken.json"), "--images", images],
            ["--src", str(json_source)],
            ["--src", str(json_source), "--images", str(tmp_path / "nope")],
            ["--src", str(json_source), "--images", images, "--target-split", "dev"],
            ["--src", str(tmp_path)]]
    for args in runs:
        assert cli(["convert", "llava", *args, "--out", str(tmp_path / "out")]) == 2, args
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == len(runs) and "Traceback" not in err
    assert "not a list" in err and "not valid JSON" in err and "--images DIR is required" in err
    assert not (tmp_path / "out").exists()
