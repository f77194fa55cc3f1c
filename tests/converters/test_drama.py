"""DRAMA converter: integrated_output_v2.json with bucket URLs mapped to a local root, risk, caption,
suggestion and the box, split choices, bad input."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import convert
from PIL import Image

from converters.drama.converter import (
    ANNOTATIONS,
    QUESTIONS,
    DramaConverter,
    DramaOptions,
    box_from_geometry,
    sample_key,
    url_relpath,
)
from converters.drama.fixture import make_drama_root
from dataengine.cli import main as cli
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root

SINGLE_PREFIX = "<image>\nThere is an image of traffic captured from the front view of the ego vehicle. "


def samples(root: Path, split: str) -> dict[str, dict]:
    return {s.key: s.sample for s in DatasetReader(root, "drama", split)}


def quarantine(out: Path, split: str) -> dict[str, str]:
    return {q["record_id"]: q["reason"] for q in read_quarantine(out / "drama" / split / "quarantine.jsonl")}


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return make_drama_root(tmp_path_factory.mktemp("drama") / "drama_data")


@pytest.fixture(scope="module")
def shards(tmp_path_factory, src, ray_session) -> Path:
    out = tmp_path_factory.mktemp("drama_shards")
    convert("drama", src, out)
    return out


def test_fixture_is_in_the_described_layout(src):
    rows = json.loads((src / ANNOTATIONS).read_text())
    assert len(rows) == 9
    for row in rows:
        assert row["s3_fileUrl"].startswith("https://s3-us-west-2.amazonaws.com/hrius.scaleapi/data/drama/combined/")
        assert (src / url_relpath(row["s3_fileUrl"])).is_file() and row["s3_fileUrl"].endswith(".png")
        assert row["Risk"] in ("Yes", "No") and len(row["geometry"]) in (0, 4)
    assert any(isinstance(r["geometry"][0][0], str) for r in rows if r["geometry"])
    assert any(r["Caption"] == "N/A" for r in rows)


def test_every_row_is_one_sample_with_risk_caption_suggestion_and_box(shards, src):
    rows = json.loads((src / ANNOTATIONS).read_text())
    assert validate_root(shards) == {"drama/test": 9}
    assert quarantine(shards, "test") == {}
    got = samples(shards, "test")
    for i, row in enumerate(rows):
        rel = url_relpath(row["s3_fileUrl"])
        s = got.pop(sample_key(rel))
        assert s["task"] == "caption.risk" and s["layout"] == "single_image" and s["meta"]["row"] == i
        assert s["conversations"][:2] == [{"role": "user", "content": QUESTIONS["risk"]},
                                          {"role": "assistant", "content": f"{row['Risk']}."}]
        answers = dict(zip([t["content"] for t in s["conversations"][0::2]],
                           [t["content"] for t in s["conversations"][1::2]]))
        if row["Caption"] == "N/A":
            assert QUESTIONS["caption"] not in answers and s["meta"]["caption"] is None
        else:
            assert answers[QUESTIONS["caption"]] == row["Caption"] == s["meta"]["caption"]
        assert answers.get(QUESTIONS["suggestion"]) == (None if row["Suggestions (to the ego car)"] == "N/A"
                                                        else row["Suggestions (to the ego car)"])
        assert answers[QUESTIONS["intention"]] == row["Intention of Ego-vehicle"]
        assert s["meta"]["source"] == row and s["meta"]["risk"] == (row["Risk"] == "Yes")
        if row["geometry"]:
            (x0, y0), (x1, y1) = ([float(v) for v in row["geometry"][k]] for k in (0, 2))
            assert s["objects"] == [{"category": "important_object",
                                     "box_2d": [{"camera": "front", "xyxy": [x0, y0, x1, y1]}]}]
        else:
            assert "objects" not in s
        [m] = s["media"]
        assert (m["member"], m["camera"]) == ("img0.png", "front")
        assert m["sha1"] == hashlib.sha1((src / rel).read_bytes()).hexdigest()
        assert (m["width"], m["height"]) == Image.open(src / rel).size
        clip = rel.split("/")[1]
        assert (s["scene_id"], s["frame_id"]) == (f"drama:{clip}", f"drama:{rel[:-4]}")
        assert render(s).conversation[0]["content"] == SINGLE_PREFIX + QUESTIONS["risk"]
    assert got == {}


def test_by_clip_split_keeps_each_clip_in_one_split(tmp_path, ray_session):
    src = make_drama_root(tmp_path / "drama", clips=12, frames_per_clip=2, width=64, height=40)
    out = tmp_path / "out"
    convert("drama", src, out, DramaOptions(drama_split="by_clip"))
    counts = validate_root(out)
    assert sum(counts.values()) == 24 and len(counts) == 3  # 12 clips fall in all three splits
    splits_of = defaultdict(set)
    for split in ("train", "val", "test"):
        for s in samples(out, split).values():
            splits_of[s["scene_id"]].add(split)
    assert len(splits_of) == 12 and all(len(v) == 1 for v in splits_of.values())
    units = DramaConverter(src, DramaOptions(drama_split="by_clip")).units()
    assert [(u.id, u.split) for u in units] == [(u.id, u.split) for u in
                                                DramaConverter(src, DramaOptions(drama_split="by_clip")).units()]


def test_image_root_replaces_the_bucket_prefix(tmp_path, src, ray_session):
    root, images = tmp_path / "annotations", tmp_path / "elsewhere"
    root.mkdir()
    shutil.copy(src / ANNOTATIONS, root / ANNOTATIONS)
    shutil.copytree(src / "combined", images / "combined")
    out = tmp_path / "out"
    convert("drama", root, out, DramaOptions(drama_image_root=str(images), drama_split="val"))
    assert validate_root(out) == {"drama/val": 9}


def test_same_input_same_bytes(tmp_path, src, shards, ray_session):
    convert("drama", src, tmp_path)
    for name in ("shard-000000.tar", "manifest.parquet"):
        assert (tmp_path / "drama" / "test" / name).read_bytes() == (shards / "drama" / "test" / name).read_bytes()


def test_geometry_and_url_helpers():
    corners = [["10", "20"], ["50", "20"], ["50", "60"], ["10", "60"]]
    assert box_from_geometry(corners, 100, 100) == ([10.0, 20.0, 50.0, 60.0], None)
    assert box_from_geometry([[90, 90], [0, 0], [120, 130], [0, 0]], 100, 100) == ([90.0, 90.0, 100.0, 100.0], None)
    assert box_from_geometry([], 100, 100) == (None, None)
    assert box_from_geometry([[1, 2]], 100, 100)[1].endswith("is not 4 corner points [x, y]")
    assert box_from_geometry([[1, 2], [3, 4], [1, 9], [5, 6]], 100, 100)[1].startswith("geometry box [1.0, 2.0, 1.0")
    assert url_relpath("https://hrius.scaleapi.s3.amazonaws.com/data/drama/combined/a/b.png") == "combined/a/b.png"
    assert url_relpath("https://example.com/other/a.png") is None
    assert sample_key("combined/2020-0127-132751/000786/frame_000786.png") == \
        "drama-2020-0127-132751-000786-frame_000786"


# --- bad input ---------------------------------------------------------------------------------------
def test_bad_rows_are_quarantined_with_reasons(tmp_path, src, ray_session):
    root = tmp_path / "drama"
    shutil.copytree(src, root)
    rows = json.loads((root / ANNOTATIONS).read_text())
    rel = [url_relpath(r["s3_fileUrl"]) for r in rows]
    rows[0]["Risk"] = "Maybe"
    rows[1]["geometry"] = [[1, 2], [3, 4]]
    (root / rel[3]).unlink()
    (root / rel[4]).write_bytes((root / rel[4]).read_bytes()[:500])
    rows[5]["s3_fileUrl"] = "https://example.com/frame.png"
    rows[6]["s3_fileUrl"] = rows[6]["s3_fileUrl"].replace("/combined/", "/combined/../../../")
    rows += [dict(rows[7]), "not a row"]
    (root / ANNOTATIONS).write_text(json.dumps(rows))
    out = tmp_path / "out"
    convert("drama", root, out)
    validate_root(out)
    reasons = quarantine(out, "test")
    assert reasons == {
        rel[0]: "Risk 'Maybe' is not 'Yes' or 'No'",
        rel[1]: "geometry [[1, 2], [3, 4]] is not 4 corner points [x, y]",
        rel[3]: f"missing image {rel[3]}",
        rel[4]: "truncated PNG (no IEND chunk)",
        "row-5": "s3_fileUrl 'https://example.com/frame.png' has no /data/drama/ path",
        url_relpath(rows[6]["s3_fileUrl"]): f"path '{url_relpath(rows[6]['s3_fileUrl'])}' escapes the dataset root",
        rel[7]: "duplicate annotation of the same frame (first at row 7)",
        "row-10": "annotation row is not an object"}
    assert set(samples(out, "test")) == {sample_key(rel[i]) for i in (2, 7, 8)}
    card = json.loads((out / "drama" / "test" / "card.json").read_text())
    assert card["counts"]["records_in"] == len(rows) == 11


@pytest.mark.parametrize("what,expected", [
    ("empty", f"is not a DRAMA root: no {ANNOTATIONS}"), ("garbage", "is not valid JSON"),
    ("other", "is not DRAMA's annotation list"), ("split", "--drama-split 'all'"),
    ("image_root", "--drama-image-root")])
def test_not_a_drama_source_is_a_usage_error(tmp_path, src, what, expected):
    for name, text in (("garbage", "[oops"), ("other", json.dumps([{"image": "a.png"}]))):
        (tmp_path / name).mkdir()
        (tmp_path / name / ANNOTATIONS).write_text(text)
    cases = {"empty": (tmp_path, DramaOptions()), "garbage": (tmp_path / "garbage", DramaOptions()),
             "other": (tmp_path / "other", DramaOptions()), "split": (src, DramaOptions(drama_split="all")),
             "image_root": (src, DramaOptions(drama_image_root=str(tmp_path / "nope")))}
    with pytest.raises(UsageError, match=re.escape(expected)):
        DramaConverter(*cases[what]).check_source()


def test_cli_on_a_non_drama_root_exits_2_and_writes_nothing(tmp_path, src, capsys):
    out = tmp_path / "out"
    assert cli(["convert", "drama", "--src", str(src / "combined"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a DRAMA root" in err
    assert not out.exists()
