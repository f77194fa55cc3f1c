"""MAPLM converter: official problems.json layout and the LLaVA-style QA file, options kept for scoring,
bad input, and the real maplm_test.json subset."""
from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import convert
from PIL import Image

from converters.maplm.converter import (
    BEV,
    FRONT,
    MAPLMConverter,
    MAPLMOptions,
    answer_text,
    inline_options,
    question_type,
)
from converters.maplm.fixture import make_maplm_root
from dataengine.cli import main as cli
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root

TWO_VIEW_PREFIX = ("1: <image> 2: <image>. These two images are the front view and bird's-eye view of the ego "
                   "vehicle. ")
SCORED = {"SCN", "QLT", "LAN", "INT"}


def samples(root: Path, split: str) -> dict[str, dict]:
    return {s.key: s.sample for s in DatasetReader(root, "maplm", split)}


def quarantine(out: Path, split: str) -> dict[str, str]:
    return {q["record_id"]: q["reason"] for q in read_quarantine(out / "maplm" / split / "quarantine.jsonl")}


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return make_maplm_root(tmp_path_factory.mktemp("maplm") / "maplm_v0.1")


@pytest.fixture(scope="module")
def shards(tmp_path_factory, src, ray_session) -> Path:
    out = tmp_path_factory.mktemp("maplm_shards")
    convert("maplm", src, out)
    return out


@pytest.fixture(scope="module")
def llava_shards(tmp_path_factory, src, ray_session) -> Path:
    out = tmp_path_factory.mktemp("maplm_llava")
    convert("maplm", src / "maplm_test.json", out)
    return out


def test_fixture_is_in_the_official_layout(src):
    problems, splits = (json.loads((src / n).read_text()) for n in ("problems.json", "pid_splits.json"))
    assert set(splits) == {"train", "val", "test"} and sorted(sum(splits.values(), [])) == sorted(problems)
    for frame, problem in problems.items():
        assert (src / frame / FRONT).is_file() and (src / frame / BEV).is_file()
        assert problem["image"] == f"{frame}/{FRONT}"
        assert all(qa["task"] == "closed choice" and 0 <= qa["answer"] < len(qa["choices"]) for qa in problem["qa"])
    llava = json.loads((src / "maplm_test.json").read_text())
    assert [r["id"] for r in llava] == splits["test"]
    assert all(set(r) == {"id", "image", "pointcloud", "conversations"} for r in llava)


def test_official_every_question_is_a_sample_with_its_options(shards, src):
    problems, splits = (json.loads((src / n).read_text()) for n in ("problems.json", "pid_splits.json"))
    assert validate_root(shards) == {f"maplm/{s}": 4 * len(f) for s, f in splits.items()}
    for split, frames in splits.items():
        assert quarantine(shards, split) == {}
        got = samples(shards, split)
        for frame in frames:
            for qa in problems[frame]["qa"]:
                code, task = question_type(qa["question"])
                s = got.pop(f"maplm-{frame.lower()}-{code.lower()}")
                assert s["task"] == task and s["meta"]["question_type"] == code
                assert s["meta"]["options"] == qa["choices"] and s["meta"]["answer_index"] == qa["answer"]
                assert s["meta"]["answer"] == qa["choices"][qa["answer"]].rstrip(".")
                assert s["conversations"][1]["content"] == f"The answer is {qa['choices'][qa['answer']]}"
                assert inline_options(s["conversations"][0]["content"]) == qa["choices"]
                assert (s["scene_id"], s["frame_id"], s["meta"]["maplm_frame"]) == (f"maplm:{frame}",) * 2 + (frame,)
        assert got == {}


def test_front_photo_and_bev_as_two_views(shards, src):
    for s in samples(shards, "val").values():
        frame = s["meta"]["maplm_frame"]
        assert s["layout"] == "multi_view"
        assert [(m["camera"], m["source_camera"], m["member"]) for m in s["media"]] == [
            ("front", "photo_forward", "img0.jpg"), ("bev", "point_cloud_bev", "img1.jpg")]
        for m, name in zip(s["media"], (FRONT, BEV)):
            assert m["sha1"] == hashlib.sha1((src / frame / name).read_bytes()).hexdigest()
            assert (m["width"], m["height"]) == Image.open(src / frame / name).size
        assert render(s).conversation[0]["content"] == TWO_VIEW_PREFIX + s["conversations"][0]["content"]


def test_llava_file_gives_the_same_keys_and_answers(llava_shards, shards, src):
    llava = json.loads((src / "maplm_test.json").read_text())
    got = samples(llava_shards, "test")
    described = sum(len(r["conversations"]) == 12 for r in llava)
    assert validate_root(llava_shards) == {"maplm/test": 4 * len(llava) + described}
    official = samples(shards, "test")
    scored = {k: s for k, s in got.items() if s["meta"]["question_type"] in SCORED}
    assert set(scored) == set(official)
    for key, s in scored.items():
        assert s["meta"]["answer"] == official[key]["meta"]["answer"]
        assert s["meta"]["source_format"] == "llava" and official[key]["meta"]["source_format"] == "official"
        if s["meta"]["question_type"] == "LAN":  # the LLaVA file shows no options for the lane count
            assert s["meta"]["options"] is None and s["meta"]["answer_index"] is None
        else:
            assert s["meta"]["answer_index"] == official[key]["meta"]["answer_index"]
    descriptions = [s for s in got.values() if s["meta"]["question_type"] == "DESC"]
    assert len(descriptions) == described and all(s["task"] == "caption.lane_attributes" for s in descriptions)
    first = llava[0]["conversations"]
    s = got[f"maplm-{llava[0]['id'].lower()}-scn"]
    assert s["conversations"] == [{"role": "user", "content": first[2]["value"]},
                                  {"role": "assistant", "content": first[3]["value"]}]
    assert all("<image>" not in t["content"] for s in got.values() for t in s["conversations"])


def test_text_helpers():
    q = ("What is the point cloud data quality in current road area of this image? Your potential choice is: "
         "Very clear. Not clear, road mark is worn. Not clear, road mark is occluded by some vehicle.")
    assert inline_options(q) == ["Very clear.", "Not clear, road mark is worn.",
                                 "Not clear, road mark is occluded by some vehicle."]
    assert inline_options("How many lanes on the current road?") is None
    assert answer_text("The answer is Not clear, road mark is worn.") == "Not clear, road mark is worn"
    assert answer_text("The answer is 2") == "2"
    assert question_type("How many lanes in current road?") == ("LAN", "vqa.lane_count")
    assert question_type("Is it raining?") == ("OTHER", "vqa.road")


def copy_official(src: Path, root: Path) -> tuple[dict, dict]:
    """The fixture's pictures copied under `root`, and its problems and splits to edit and write there."""
    problems, splits = (json.loads((src / n).read_text()) for n in ("problems.json", "pid_splits.json"))
    root.mkdir()
    for frame in problems:
        (root / frame).mkdir()
        for name in (FRONT, BEV):
            (root / frame / name).write_bytes((src / frame / name).read_bytes())
    return problems, splits


# --- bad input ---------------------------------------------------------------------------------------
def test_official_bad_records_are_quarantined(tmp_path, src, ray_session):
    root, out = tmp_path / "maplm", tmp_path / "out"
    problems, splits = copy_official(src, root)
    train = splits["train"]
    problems[train[0]]["qa"][1]["answer"] = 7                       # out of range
    problems[train[0]]["qa"][2]["choices"] = "1, 2, 3"              # not a list
    (root / train[1] / BEV).unlink()                                # 4 questions lose their BEV
    (root / train[2] / FRONT).write_bytes(b"not an image")          # 4 questions lose their photo
    problems["FR99"] = problems[train[3]]                           # in no split
    splits["val"].append("FR404")                                   # in a split, not in problems
    splits["test"].append(splits["val"][0])                         # listed twice
    (root / "problems.json").write_text(json.dumps(problems))
    (root / "pid_splits.json").write_text(json.dumps(splits))
    convert("maplm", root, out)
    validate_root(out)
    f0, f1, f2 = train[:3]
    expected = {f"{f0}/1": "answer 7 is not an index into its 4 choices",
                f"{f0}/2": "closed-choice qa item has no list of choice strings",
                "FR99": "frame is in no split of pid_splits.json",
                **{f"{f1}/{j}": f"missing image {f1}/{BEV} (point_cloud_bev)" for j in range(4)},
                **{f"{f2}/{j}": "not a JPEG or PNG file (photo_forward)" for j in range(4)}}
    assert quarantine(out, "train") == expected
    assert quarantine(out, "val") == {"FR404": "frame missing from problems.json or has no qa list"}
    assert quarantine(out, "test") == {splits["val"][0]: "frame listed twice in pid_splits.json"}
    assert len(samples(out, "train")) == 2 + 4  # f0's two good questions and the fourth frame
    card = json.loads((out / "maplm" / "train" / "card.json").read_text())
    assert card["counts"]["records_in"] == 4 * 4 + 1


def test_llava_bad_records_are_quarantined(tmp_path, src, ray_session):
    llava = json.loads((src / "maplm_test.json").read_text())
    a, b, c = llava
    a["conversations"][3]["value"] = "The answer is Motorway."             # not an option
    b["conversations"] = b["conversations"][:-1]                           # odd number of turns
    llava += [dict(c), {"id": "FR500", "image": "FR500/photo_forward.jpg", "conversations": []}, "junk"]
    path = tmp_path / "maplm_test.json"
    path.write_text(json.dumps(llava))
    out = tmp_path / "out"
    convert("maplm", path, out, MAPLMOptions(maplm_image_root=str(src)))
    validate_root(out)
    assert quarantine(out, "test") == {
        f"{a['id']}/1": "answer 'Motorway' is not exactly one of the options ['Normal city road.', "
                        "'Construction road.', 'Undeveloped road.', 'Road mark repainting.', 'Roundabout.', "
                        "'None of the above.']",
        b["id"]: "conversations is not an even, non-empty list of turns",
        c["id"]: "frame id repeats an earlier record",
        "FR500": "record has no pointcloud path",
        "record-5": "record is not an object"}
    assert len(samples(out, "test")) == (len(a["conversations"]) // 2 - 2) + (len(c["conversations"]) // 2 - 1)


@pytest.mark.parametrize("what,expected", [
    ("empty", "is not a MAPLM root: expected problems.json"), ("garbage", "is not valid JSON"),
    ("list", "is not a MAPLM LLaVA-style QA file"), ("split", "--maplm-qa-split 'dev'"),
    ("image_root", "--maplm-image-root")])
def test_not_a_maplm_source_is_a_usage_error(tmp_path, src, what, expected):
    garbage, listing = tmp_path / "garbage.json", tmp_path / "list.json"
    garbage.write_text("[not json")
    listing.write_text(json.dumps([{"id": "FR1"}]))
    cases = {"empty": (tmp_path, MAPLMOptions()), "garbage": (garbage, MAPLMOptions()),
             "list": (listing, MAPLMOptions()), "split": (src, MAPLMOptions(maplm_qa_split="dev")),
             "image_root": (src / "maplm_test.json", MAPLMOptions(maplm_image_root=str(tmp_path / "nope")))}
    with pytest.raises(UsageError, match=re.escape(expected)):
        MAPLMConverter(*cases[what]).check_source()


def test_cli_on_a_non_maplm_root_exits_2_and_writes_nothing(tmp_path, src, capsys):
    out = tmp_path / "out"
    assert cli(["convert", "maplm", "--src", str(src / "FR1"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a MAPLM root" in err
    assert not out.exists()


# --- real file: baseline/evaluation/maplm_test.json, first 300 frames ---------------------------------
def tiny_jpeg(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 64), color).save(buf, format="JPEG")
    return buf.getvalue()


def test_llava_file_with_an_image_root_every_question_accounted(tmp_path, src, ray_session):
    """Fixture twin of the real-file test below: the LLaVA QA file read with its images under
    --maplm-image-root, the last frame's images absent: every exchange but the intro is a question,
    each one written or quarantined for the missing photo; records in = written + quarantined."""
    llava = json.loads((src / "maplm_test.json").read_text())
    images = tmp_path / "images"
    for record in llava[:-1]:
        for rel in (record["image"], record["pointcloud"]):
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            (images / rel).write_bytes((src / rel).read_bytes())
    out = tmp_path / "out"
    convert("maplm", src / "maplm_test.json", out, MAPLMOptions(maplm_image_root=str(images)))
    questions = [len(r["conversations"]) // 2 - 1 for r in llava]
    assert questions == [5, 4, 5]  # 12, 10 and 12 turns: an intro exchange, 4 scored questions, 1 description
    written, reasons = samples(out, "test"), quarantine(out, "test")
    lost = llava[-1]["id"]
    assert validate_root(out) == {"maplm/test": 5 + 4}
    assert {s["meta"]["maplm_frame"] for s in written.values()} == {r["id"] for r in llava[:-1]}
    assert len(reasons) == 5 and {k.split("/")[0] for k in reasons} == {lost}
    assert set(reasons.values()) == {f"missing image {lost}/photo_forward.jpg (photo_forward)"}
    card = json.loads((out / "maplm" / "test" / "card.json").read_text())["counts"]
    assert card["records_in"] == card["samples"] + card["quarantined"] == sum(questions)


def test_real_qa_subset_every_question_accounted(real_samples, tmp_path, ray_session):
    """The real conversations with generated images (MAPLM's images are not public); the last 10 frames
    have none, so their questions are quarantined."""
    path = real_samples / "maplm" / "maplm_test_first300.json"
    real = json.loads(path.read_text())
    images = tmp_path / "images"
    front, bev = tiny_jpeg((120, 120, 120)), tiny_jpeg((10, 10, 10))
    for record in real[:290]:
        for rel, blob in ((record["image"], front), (record["pointcloud"], bev)):
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            (images / rel).write_bytes(blob)
    out = tmp_path / "out"
    convert("maplm", path, out, MAPLMOptions(maplm_image_root=str(images)))
    questions = sum(len(r["conversations"]) // 2 - 1 for r in real)  # every exchange but the intro
    written = samples(out, "test")
    reasons = quarantine(out, "test")
    assert questions == 1320 and len(written) + len(reasons) == questions
    assert validate_root(out) == {"maplm/test": len(written)}
    lost = {r["id"] for r in real[290:]}
    assert {k.split("/")[0] for k in reasons} == lost
    assert all(re.fullmatch(r"missing image FR\d+/photo_forward\.jpg \(photo_forward\)", v)
               for v in reasons.values())
    types = Counter(s["meta"]["question_type"] for s in written.values())
    assert types == {"SCN": 290, "QLT": 290, "LAN": 290, "INT": 290,
                     "DESC": sum(len(r["conversations"]) == 12 for r in real[:290])}
    answers = Counter(s["meta"]["answer"] for s in written.values() if s["meta"]["question_type"] == "SCN")
    expected = Counter(r["conversations"][3]["value"][len("The answer is "):-1] for r in real[:290])
    assert answers == expected
    for s in written.values():
        if s["meta"]["question_type"] in ("SCN", "QLT", "INT"):
            assert s["meta"]["options"][s["meta"]["answer_index"]] == s["meta"]["answer"] + "."


def test_repeated_frames_and_questions_are_quarantined(tmp_path, src, ray_session):
    """problems.json maps frame ids to frames: an id written twice is a second record that a
    JSON parser would merge silently (the last winning); it is quarantined and the first entry
    used. A question repeated word for word, answer included, within a frame is quarantined
    too (MAPLM asks each once); records in = written + quarantined."""
    root, out = tmp_path / "maplm", tmp_path / "out"
    problems, splits = copy_official(src, root)
    f0, f1 = splits["train"][:2]
    problems[f1]["qa"].append(dict(problems[f1]["qa"][0]))
    text = json.dumps(problems)
    later = json.dumps({**problems[f0], "qa": problems[f0]["qa"][:1]})  # a second, different entry for f0
    (root / "problems.json").write_text(text[:-1] + f', {json.dumps(f0)}: {later}' + "}")
    (root / "pid_splits.json").write_text(json.dumps(splits))
    convert("maplm", root, out)
    validate_root(out)
    n = len(problems[f1]["qa"]) - 1
    assert quarantine(out, "train") == {
        f"{f0}/repeat1": "duplicate frame: problems.json has this frame id again (its first entry is used)",
        f"{f1}/{n}": "duplicate question: identical to question 0 of this frame"}
    written = [s for s in samples(out, "train").values() if s["meta"]["maplm_frame"] == f0]
    assert len(written) == len(problems[f0]["qa"]) == 4  # the first entry, not the one-question repeat
    card = json.loads((out / "maplm" / "train" / "card.json").read_text())["counts"]
    assert card["records_in"] == card["samples"] + card["quarantined"] == len(splits["train"]) * 4 + 2
