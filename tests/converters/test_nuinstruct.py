"""NuInstruct: each QA becomes a multi-view video sample (6 cameras x the clip's frames, timed
from the latest frame); clips are read through the nuScenes tables; bad records are counted."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import check_frame_contexts, convert

from converters.nuinstruct.converter import NuInstructConverter, NuInstructOptions, clip_paths, layout_of
from converters.nuinstruct.fixture import make_nuinstruct
from converters.nuscenes.tables import NUSCENES_ORDER, NuScenesTables
from converters.nuscenes.units import UNRESOLVED
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    # 2 train scenes, 1 val scene of 7 key frames: clips of 3 frames, val/test alternating on the val scene
    return make_nuinstruct(tmp_path_factory.mktemp("nuinstruct") / "raw",
                           scenes_per_split=(2, 1), keyframes=7, width=160, height=90)


@pytest.fixture(scope="module")
def converted(fixture_root, tmp_path_factory, ray_session) -> Path:
    out = tmp_path_factory.mktemp("nuinstruct_out")
    convert("nuinstruct", fixture_root, out, NuInstructOptions(nuscenes_root=str(fixture_root / "nuscenes")))
    return out


def _records(root: Path, split: str) -> list[dict]:
    return json.loads((root / "annotations" / f"{split}.json").read_text())


def test_every_qa_is_a_six_camera_clip(fixture_root, converted):
    counts = {s: len(_records(fixture_root, s)) for s in ("train", "val", "test")}
    assert validate_root(converted) == {f"nuinstruct/{s}": n for s, n in counts.items()}
    tables = NuScenesTables(fixture_root / "nuscenes", "v1.0-mini")
    source = {r["qa_id"]: r for r in _records(fixture_root, "train")}
    for stored in DatasetReader(converted, "nuinstruct", "train"):
        s = stored.sample
        rec = source[s["meta"]["qa_id"]]
        last = max(rec["sample_list"], key=lambda t: tables.get("sample", t)["timestamp"])
        assert s["id"] == f"nuinstruct-train-{rec['qa_id']}" and s["layout"] == "multi_view_video"
        assert s["frame_id"] == f"nuscenes:{last}"
        assert s["scene_id"] == f"nuscenes:{tables.get('sample', last)['scene_token']}"
        assert s["task"] == "vqa." + rec["task"].split("-")[0] and s["meta"]["subtask"] == rec["task"]
        assert s["conversations"][1]["content"] == rec["Answer"]
        # camera by camera in RoboTron-Drive's order, each camera's 3 frames oldest first, ~0.5 s apart
        assert [m["source_camera"] for m in s["media"]] == [c for c in NUSCENES_ORDER for _ in range(3)]
        for c in range(6):
            offsets = [m["time_offset_s"] for m in s["media"][3 * c: 3 * c + 3]]
            assert offsets[0] < offsets[1] < offsets[2] and abs(offsets[2]) < 0.06
            assert abs(offsets[1] - offsets[0] - 0.5) < 1e-6
        files = {hashlib.sha1((fixture_root / "nuscenes" / p).read_bytes()).hexdigest() for p in rec["img_path"]}
        assert {m["sha1"] for m in s["media"]} == files


def test_a_clips_questions_share_one_stored_context(converted):
    """The clip's images, ids, layout, sample_list, scene name and location are stored once per
    clip (its context), not in each QA's JSON; the reader merges them back (test above)."""
    samples, clips = check_frame_contexts(converted, "nuinstruct", ("sample_list", "scene_name", "location"))
    assert samples > clips


def test_prompt_numbers_six_videos(converted):
    sample = next(iter(DatasetReader(converted, "nuinstruct", "val"))).sample
    rendered = render(sample)
    assert rendered.kinds == ["video"] * 6 and [len(g) for g in rendered.groups] == [3] * 6
    assert "These six videos are the front view, front left view" in rendered.conversation[0]["content"]


def test_img_path_layouts_nested_or_prefixed_read_the_same_clip():
    flat = ["samples/CAM_FRONT/a.jpg", "samples/CAM_BACK/b.jpg"]
    assert clip_paths(flat) == (flat, None)
    assert clip_paths([["/data/sets/nuscenes/samples/CAM_FRONT/a.jpg"], ["./nuscenes/samples/CAM_BACK/b.jpg"]]) == \
        (flat, None)
    assert clip_paths(["images/a.jpg"])[1] == "img_path entry 'images/a.jpg' is not a nuScenes samples/ or sweeps/ path"
    assert clip_paths(flat + flat[:1])[1] == "img_path repeats an image"
    assert [layout_of(6, 3), layout_of(6, 1), layout_of(1, 5), layout_of(1, 1)] == \
        ["multi_view_video", "multi_view", "video", "single_image"]


def test_bad_records_are_quarantined_and_counted(fixture_root, tmp_path, ray_session):
    val = _records(fixture_root, "val")
    train = _records(fixture_root, "train")
    good = val[0]
    other_scene = train[0]["sample_list"][0]
    bad = [
        {**good, "qa_id": "x1", "sample_list": ["e" * 32]},                              # not in the root
        {**good, "qa_id": "x2", "sample_list": [good["sample_list"][0], other_scene]},   # two scenes
        {**good, "qa_id": "x3", "img_path": good["img_path"][:-1] + train[0]["img_path"][:1]},  # not this clip
        {**good, "qa_id": "x4", "task": "overtaking"},
        {**good, "qa_id": "x5", "Question": ""},
        {**good, "qa_id": good["qa_id"]},                                                # repeated qa_id
        {**good, "qa_id": "x6", "img_path": good["img_path"][:6]},                       # one frame: multi_view
    ]
    src = tmp_path / "src"
    (src / "annotations").mkdir(parents=True)
    (src / "annotations" / "val.json").write_text(json.dumps(val + bad))
    out = tmp_path / "out"
    card = convert("nuinstruct", src, out, NuInstructOptions(nuscenes_root=str(fixture_root / "nuscenes"))).cards["val"]
    assert card["counts"]["records_in"] == len(val) + len(bad)
    reasons = {q["record_id"]: q["reason"] for q in read_quarantine(out / "nuinstruct" / "val" / "quarantine.jsonl")}
    assert reasons == {
        "val/x1": UNRESOLVED, "val/x2": "sample tokens span several scenes",
        "val/x3": f"img_path {train[0]['img_path'][0]} is not a key-frame camera image of the sample_list frames",
        "val/x4": "task 'overtaking' is not '<group>-<subtask>'", "val/x5": "no Question string",
        f"val/{good['qa_id']}": "repeated qa_id"}
    one_frame = DatasetReader(out, "nuinstruct", "val").get("nuinstruct-val-x6").sample
    assert one_frame["layout"] == "multi_view" and len(one_frame["media"]) == 6


def test_roots_that_are_not_the_datasets_are_refused_in_one_line(fixture_root, tmp_path):
    nus = str(fixture_root / "nuscenes")
    (tmp_path / "dict" / "annotations").mkdir(parents=True)
    (tmp_path / "dict" / "annotations" / "val.json").write_text(json.dumps({"task": "x"}))
    cases = [(fixture_root, NuInstructOptions(), "nuinstruct needs --nuscenes-root PATH"),
             (fixture_root, NuInstructOptions(nuscenes_root=str(tmp_path)), "--nuscenes-root: "),
             (tmp_path, NuInstructOptions(nuscenes_root=nus), "is not a NuInstruct root"),
             (tmp_path / "dict", NuInstructOptions(nuscenes_root=nus), "expected a JSON list of records")]
    for src, options, message in cases:
        with pytest.raises(UsageError) as err:
            NuInstructConverter(src, options).check_source()
        assert message in str(err.value) and "\n" not in str(err.value)


def test_a_truncated_image_quarantines_the_clips_questions(fixture_root, tmp_path, ray_session):
    root = tmp_path / "nuscenes"
    shutil.copytree(fixture_root / "nuscenes", root)
    test = _records(fixture_root, "test")
    victim = root / test[0]["img_path"][7]
    victim.write_bytes(victim.read_bytes()[:500])
    out = tmp_path / "out"
    card = convert("nuinstruct", fixture_root, out, NuInstructOptions(nuscenes_root=str(root)), splits=("test",))
    same_clip = [r for r in test if r["img_path"] == test[0]["img_path"]]
    assert card.cards["test"]["counts"]["quarantined"] == len(same_clip)
    assert card.cards["test"]["counts"]["records_in"] == len(test)
    channel = test[0]["img_path"][7].split("/")[1]
    assert {q["reason"] for q in read_quarantine(out / "nuinstruct" / "test" / "quarantine.jsonl")} == \
        {f"{channel}: truncated JPEG (no end-of-image marker)"}
