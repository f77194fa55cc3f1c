"""CODA-LM converter: fixture in the official per-image layout, tasks and boxes, bad input, real files."""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from conftest import convert
from PIL import Image

from converters.codalm.converter import ANNOTATIONS, GENERAL_QUESTION, CodaLMConverter, region_box, region_question
from converters.codalm.fixture import make_codalm_root
from dataengine.cli import main as cli
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root

VIEW_SENTENCE = "There is an image of traffic captured from the front view of the ego vehicle. "


def samples(root: Path, split: str) -> dict[str, dict]:
    return {s.key: s.sample for s in DatasetReader(root, "codalm", split)}


def annotations(src: Path, folder: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((src / ANNOTATIONS / folder).glob("*.json"))}


def quarantine(out: Path, split: str) -> dict[str, str]:
    return {q["record_id"]: q["reason"] for q in read_quarantine(out / "codalm" / split / "quarantine.jsonl")}


def jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 110, 130)).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return make_codalm_root(tmp_path_factory.mktemp("codalm") / "coda")


@pytest.fixture(scope="module")
def shards(tmp_path_factory, src, ray_session) -> Path:
    out = tmp_path_factory.mktemp("codalm_shards")
    convert("codalm", src, out)
    return out


def test_fixture_is_in_the_official_layout(src):
    for folder, imgdir in (("Train", "val"), ("Val", "test"), ("Test", "test"), ("Mini", "test")):
        for stem, data in annotations(src, folder).items():
            assert stem.startswith(f"{imgdir}_")
            assert (src / imgdir / "images" / f"{stem.split('_')[1]}.jpg").is_file()
            assert set(data) == {"general_perception", "region_perception", "driving_suggestion"}
            assert "traffic signs" in data["general_perception"] and "description and explanation" in \
                data["general_perception"]
            assert all(len(r["box"]) == 4 for r in data["region_perception"].values())
    assert all(d["driving_suggestion"] == "" for d in annotations(src, "Test").values())
    assert annotations(src, "Mini")["test_0001"] == annotations(src, "Val")["test_0001"]


def test_every_question_becomes_one_sample(shards, src):
    assert validate_root(shards) == {"codalm/test": 8, "codalm/train": 12, "codalm/val": 12}
    for folder, split in (("Train", "train"), ("Val", "val"), ("Test", "test")):
        got = samples(shards, split)
        assert quarantine(shards, split) == {}
        for stem, data in annotations(src, folder).items():
            base = f"codalm-{split}-{stem}"
            general, suggestion = got.pop(f"{base}-general_perception"), got.pop(f"{base}-driving_suggestion")
            assert general["task"] == "vqa.general_perception" and suggestion["task"] == "vqa.driving_suggestion"
            assert general["conversations"] == [
                {"role": "user", "content": GENERAL_QUESTION},
                {"role": "assistant", "content": data["general_perception"]["description and explanation"]}]
            assert suggestion["conversations"][1]["content"] == data["driving_suggestion"]
            assert general["meta"]["perception_items"]["vehicles"] == data["general_perception"]["vehicles"]
            for key in data["region_perception"]:
                got.pop(f"{base}-region_{key}")
        assert got == {}  # and nothing else: Mini is not converted while Val is present


def test_samples_are_single_front_images_of_the_named_file(shards, src):
    for s in samples(shards, "train").values():
        imgdir, imgid = s["frame_id"].removeprefix("coda:").split("/")
        image = src / imgdir / "images" / f"{imgid}.jpg"
        assert s["layout"] == "single_image" and s["scene_id"] == s["frame_id"]
        [m] = s["media"]
        assert (m["member"], m["camera"], m["time_offset_s"]) == ("img0.jpg", "front", 0.0)
        assert m["sha1"] == hashlib.sha1(image.read_bytes()).hexdigest()
        assert (m["width"], m["height"]) == Image.open(image).size
        rendered, question = render(s).conversation[0]["content"], s["conversations"][0]["content"]
        # a question that already says where its image comes from gets only the placeholder
        says_view = question.startswith("There is an image of traffic captured from")
        assert rendered == "<image>\n" + ("" if says_view else VIEW_SENTENCE) + question
        assert rendered.count("There is an image of traffic captured from") == 1  # the view sentence once


def test_regions_carry_their_box_and_category(shards, src):
    regions = [s for s in samples(shards, "val").values() if s["task"] == "vqa.regional_perception"]
    assert len(regions) == 6
    for s in regions:
        data = annotations(src, "Val")[s["meta"]["annotation_file"].split("/")[-1][:-5]]
        region = data["region_perception"][s["meta"]["region"]]
        x, y, w, h = region["box"]
        [obj] = s["objects"]
        assert obj["category"] == region["category_name"] == s["meta"]["category_name"]
        assert obj["box_2d"] == [{"camera": "front", "xyxy": [x, y, x + w, y + h]}]
        width, height = s["media"][0]["width"], s["media"][0]["height"]
        coords = [float(v) for v in re.search(r"<([^>]+)>", s["conversations"][0]["content"]).group(1).split(",")]
        assert coords == pytest.approx([x / width, y / height, (x + w) / width, (y + h) / height], abs=5e-4)
        assert s["conversations"][1]["content"] == region["description and explanation"]


def test_test_split_keeps_unanswered_questions(shards):
    got = samples(shards, "test").values()
    assert len(got) == 8 and all(not s["meta"]["has_answer"] for s in got)
    assert all(s["conversations"][1]["content"] == "" for s in got)
    assert all(s["meta"]["has_answer"] for s in samples(shards, "val").values())


def test_test_split_regions_keep_box_and_category_without_answers(shards, src):
    """Fixture twin of test_real_test_file_keeps_boxes_without_answers: a Test file's regions have
    no text, yet each is a sample with the region's box ([x, y, w, h] -> xyxy) and category."""
    got = samples(shards, "test")
    expected = {}
    for stem, data in annotations(src, "Test").items():
        for key, region in data["region_perception"].items():
            assert region["description and explanation"] == ""
            x, y, w, h = region["box"]
            expected[f"codalm-test-{stem}-region_{key}"] = (region["category_name"], [x, y, x + w, y + h])
    assert len(expected) == 4 and len(got) == 2 * 2 + len(expected)
    for key, (category, xyxy) in expected.items():
        s = got[key]
        assert s["conversations"][1]["content"] == "" and s["task"] == "vqa.regional_perception"
        assert [(o["category"], o["box_2d"]) for o in s["objects"]] == [(category, [{"camera": "front", "xyxy": xyxy}])]


def test_mini_is_the_val_split_only_without_val(tmp_path, src):
    root = tmp_path / "coda"
    (root / ANNOTATIONS / "Mini").mkdir(parents=True)
    (root / ANNOTATIONS / "Mini" / "test_0001.json").write_bytes((src / ANNOTATIONS / "Mini" / "test_0001.json")
                                                                .read_bytes())
    assert [(u.id, u.split) for u in CodaLMConverter(root).units()] == [("Mini-0000", "val")]
    assert [(u.id, u.split) for u in CodaLMConverter(src).units()] == [
        ("Train-0000", "train"), ("Val-0000", "val"), ("Test-0000", "test")]


def test_same_input_same_bytes(tmp_path, src, shards, ray_session):
    convert("codalm", src, tmp_path)
    for split in ("train", "val", "test"):
        for name in ("shard-000000.tar", "manifest.parquet"):
            assert (tmp_path / "codalm" / split / name).read_bytes() == (shards / "codalm" / split / name).read_bytes()


def test_region_box_clips_and_rejects():
    assert region_box([10, 20, 30, 40], 100, 50) == ([10.0, 20.0, 40.0, 50.0], None)
    assert region_box([10, 20, 0, 5], 100, 50)[1] == "box [10, 20, 0, 5] has no area"
    assert region_box([200, 20, 5, 5], 100, 50)[1] == "box [200, 20, 5, 5] lies outside the 100x50 image"
    assert region_box([1, 2, 3], 100, 50)[1] == "box [1, 2, 3] is not 4 numbers [x, y, w, h]"
    question = region_question([10.0, 5.0, 50.0, 25.0], 100, 50)
    assert question.split("object ")[1].startswith("<0.100, 0.100, 0.500, 0.500> and explain")


# --- bad input ---------------------------------------------------------------------------------------
def _broken_root(src: Path, root: Path) -> dict[str, str]:
    """A copy of the Train folder with one problem per file; returns expected reasons by record id."""
    (root / ANNOTATIONS / "Train").mkdir(parents=True)
    (root / "val" / "images").mkdir(parents=True)
    data = annotations(src, "Train")
    for stem in data:
        (root / "val" / "images" / f"{stem[4:]}.jpg").write_bytes((src / "val" / "images" / f"{stem[4:]}.jpg")
                                                                  .read_bytes())
    d1, d2, d3 = data["val_0001"], data["val_0002"], data["val_0003"]
    d1["region_perception"]["1"]["box"] = [5, 5, 0, 10]                    # one region bad
    d1["region_perception"]["2"]["category_name"] = ""                     # another region bad
    d1["driving_suggestion"] = "  "                                        # empty answer in train
    d1["region_perception"]["x1"] = dict(d2["region_perception"]["1"])     # a region key that is no number
    data["val_0004"] = dict(d2)                                            # image missing: all 4 records
    data["val_0005"] = {"vehicles": [], "suggestions": ["slow down"]}      # the pre-release flat format
    data["val_0006"] = d3                                                  # truncated image: all 4 records
    (root / "val" / "images" / "0006.jpg").write_bytes((src / "val" / "images" / "0003.jpg").read_bytes()[:-200])
    for stem, d in data.items():
        (root / ANNOTATIONS / "Train" / f"{stem}.json").write_text(json.dumps(d))
    (root / ANNOTATIONS / "Train" / "val_0007.json").write_text("{not json")
    (root / ANNOTATIONS / "Train" / "readme.json").write_text("{}")
    expected = {"Train/val_0001/region_1": "box [5, 5, 0, 10] has no area (region 1)",
                "Train/val_0001/region_2": "no category_name (region 2)",
                "Train/val_0001/driving_suggestion": "empty answer text in a train split",
                "Train/val_0001/region_x1": "region key 'x1' is not a number",
                "Train/val_0005": "not the CODA-LM per-image format: general_perception is not an object with a "
                                  "'description and explanation' string",
                "Train/readme": "file name is not <imgdir>_<imgid>.json (lowercase letters and digits)"}
    for suffix in ("general_perception", "driving_suggestion", "region_1", "region_2"):
        expected[f"Train/val_0004/{suffix}"] = "missing image val/images/0004.jpg"
        expected[f"Train/val_0006/{suffix}"] = "truncated JPEG (no end-of-image marker)"
    return expected


def test_bad_records_are_quarantined_with_reasons(tmp_path, src, ray_session):
    root, out = tmp_path / "coda", tmp_path / "out"
    expected = _broken_root(src, root)
    convert("codalm", root, out)
    validate_root(out)
    reasons = quarantine(out, "train")
    assert reasons.pop("Train/val_0007").startswith("unreadable JSON (")
    assert reasons == expected
    written = samples(out, "train")
    assert len(written) == 1 + 4 + 4  # val_0001's general perception; val_0002 and val_0003 whole
    card = json.loads((out / "codalm" / "train" / "card.json").read_text())
    # records in: 3 good files x 4 questions + 1 extra region, 2 files x 4 questions lost to images, 3 broken files
    assert card["counts"]["records_in"] == 13 + 8 + 3 == len(written) + len(expected) + 1


def test_not_a_codalm_root_exits_2_with_one_line_and_writes_nothing(tmp_path, src, capsys):
    out = tmp_path / "out"
    assert cli(["convert", "codalm", "--src", str(src / "val"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a CODA-LM root" in err
    assert not out.exists()
    with pytest.raises(UsageError, match="is not a directory"):
        CodaLMConverter(src / ANNOTATIONS / "Val" / "test_0001.json").check_source()


# --- real files: CODA-LM/Mini/test_0353.json and CODA-LM/Test/test_0001.json --------------------------
def test_real_annotation_files_convert_every_record(real_samples, tmp_path, ray_session):
    """The real JSONs (linked, not copied) with generated images of a CODA size (the images are not public)."""
    real = real_samples / "codalm" / "official_format"
    root, out = tmp_path / "coda", tmp_path / "out"
    for folder in ("Mini", "Test"):
        (root / ANNOTATIONS / folder).mkdir(parents=True)
        for f in (real / folder).glob("*.json"):
            (root / ANNOTATIONS / folder / f.name).symlink_to(f)
    (root / "test" / "images").mkdir(parents=True)
    (root / "test" / "images" / "0353.jpg").write_bytes(jpeg(1920, 1080))
    convert("codalm", root, out)
    assert validate_root(out) == {"codalm/test": 0, "codalm/val": 3}
    mini = json.loads((real / "Mini" / "test_0353.json").read_text())
    val = samples(out, "val")
    assert val["codalm-val-test_0353-general_perception"]["conversations"][1]["content"] == \
        mini["general_perception"]["description and explanation"]
    assert val["codalm-val-test_0353-driving_suggestion"]["conversations"][1]["content"] == mini["driving_suggestion"]
    region = val["codalm-val-test_0353-region_1"]
    assert region["objects"] == [{"category": "traffic_cone", "region": "1",
                                  "box_2d": [{"camera": "front", "xyxy": [826.0, 552.0, 913.0, 691.0]}]}]
    # Test/test_0001 has no image here: its 5 records (general, suggestion, 3 regions) are quarantined
    reasons = quarantine(out, "test")
    assert reasons == {f"Test/test_0001/{s}": "missing image test/images/0001.jpg"
                       for s in ("general_perception", "driving_suggestion", "region_1", "region_2", "region_3")}
    assert read_quarantine(out / "codalm" / "val" / "quarantine.jsonl") == []


def test_real_test_file_keeps_boxes_without_answers(real_samples, tmp_path, ray_session):
    real = real_samples / "codalm" / "official_format" / "Test" / "test_0001.json"
    root, out = tmp_path / "coda", tmp_path / "out"
    (root / ANNOTATIONS / "Test").mkdir(parents=True)
    (root / ANNOTATIONS / "Test" / real.name).symlink_to(real)
    (root / "test" / "images").mkdir(parents=True)
    (root / "test" / "images" / "0001.jpg").write_bytes(jpeg(1600, 900))
    convert("codalm", root, out)
    got = samples(out, "test")
    assert len(got) == 5 and all(s["conversations"][1]["content"] == "" for s in got.values())
    cats = {s["meta"]["region"]: s["objects"][0]["category"] for s in got.values() if "objects" in s}
    assert cats == {"1": "bollard", "2": "bus", "3": "bollard"}
    assert got["codalm-test-test_0001-region_2"]["objects"][0]["box_2d"][0]["xyxy"] == [501.0, 157.0, 819.0, 561.0]
