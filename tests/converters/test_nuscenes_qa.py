"""nuScenes-QA: questions keyed by sample token become 6-camera samples that keep what the
per-type accuracy needs; bad questions are quarantined and counted; bad roots are refused."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import check_frame_contexts, convert

from converters.nuscenes.tables import NUSCENES_ORDER, NuScenesTables
from converters.nuscenes.units import UNRESOLVED
from converters.nuscenes_qa.converter import SHORT_ANSWER, NuScenesQAConverter, NuScenesQAOptions
from converters.nuscenes_qa.fixture import make_nuscenes_qa
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    # a smaller nuScenes root than the demo's keeps the file fast: 2 train scenes, 1 val scene, 6 key frames, 160x90
    return make_nuscenes_qa(tmp_path_factory.mktemp("nuscenes_qa") / "raw", scenes_per_split=(2, 1),
                            keyframes=6, width=160, height=90)


def _options(fixture_root: Path) -> NuScenesQAOptions:
    return NuScenesQAOptions(nuscenes_root=str(fixture_root / "nuscenes"))


@pytest.fixture(scope="module")
def converted(fixture_root, tmp_path_factory, ray_session) -> Path:
    out = tmp_path_factory.mktemp("nuscenes_qa_out")
    convert("nuscenes_qa", fixture_root, out, _options(fixture_root))
    return out


def _questions(root: Path, split: str) -> list[dict]:
    return json.loads((root / "questions" / f"NuScenes_{split}_questions.json").read_text())["questions"]


def test_every_question_becomes_a_valid_six_camera_sample(fixture_root, converted):
    assert validate_root(converted) == {"nuscenes_qa/train": len(_questions(fixture_root, "train")),
                                        "nuscenes_qa/val": len(_questions(fixture_root, "val"))}
    tables = NuScenesTables(fixture_root / "nuscenes", "v1.0-mini")
    for split in ("train", "val"):
        source = _questions(fixture_root, split)
        for stored in DatasetReader(converted, "nuscenes_qa", split):
            s = stored.sample
            q = source[s["meta"]["question_index"]]
            sample_row = tables.get("sample", q["sample_token"])
            assert s["id"] == f"nuscenes_qa-{split}-{s['meta']['question_index']}"
            assert s["frame_id"] == f"nuscenes:{q['sample_token']}"
            assert s["scene_id"] == f"nuscenes:{sample_row['scene_token']}"
            assert s["layout"] == "multi_view" and s["task"] == "vqa.perception"
            assert [m["source_camera"] for m in s["media"]] == list(NUSCENES_ORDER)
            assert s["conversations"] == [{"role": "user", "content": f"{q['question']}\n{SHORT_ANSWER}"},
                                          {"role": "assistant", "content": q["answer"]}]
            assert (s["meta"]["template_type"], s["meta"]["num_hop"]) == (q["template_type"], q["num_hop"])
            files = {sd["filename"] for sd in tables.t["sample_data"]
                     if sd["sample_token"] == q["sample_token"] and sd["filename"].endswith(".jpg")}
            on_disk = {hashlib.sha1((fixture_root / "nuscenes" / f).read_bytes()).hexdigest() for f in files}
            assert {m["sha1"] for m in s["media"]} == on_disk


def test_a_key_frames_questions_share_one_stored_context(converted):
    """The frame's cameras, ids, scene name and location are stored once per key frame (its
    context), not in each question's JSON; the reader merges them back (test above)."""
    samples, frames = check_frame_contexts(converted, "nuscenes_qa", ("sample_token", "scene_name", "location"))
    assert samples > frames


def test_per_type_scoring_fields_cover_the_five_templates(converted):
    seen = {(s.sample["meta"]["template_type"], s.sample["meta"]["num_hop"])
            for s in DatasetReader(converted, "nuscenes_qa", "train")}
    assert {t for t, _ in seen} == {"exist", "count", "object", "status", "comparison"}
    assert {h for _, h in seen} == {0, 1}


def test_prompt_names_the_six_views(converted):
    sample = next(iter(DatasetReader(converted, "nuscenes_qa", "val"))).sample
    text = render(sample).conversation[0]["content"]
    assert text.startswith("1: <image> 2: <image> 3: <image> 4: <image> 5: <image> 6: <image>. These six images")
    assert text.endswith(sample["meta"]["question"] + "\n" + SHORT_ANSWER)


def test_converting_again_gives_the_same_bytes(fixture_root, converted, tmp_path, ray_session):
    again = tmp_path / "again"
    convert("nuscenes_qa", fixture_root, again, _options(fixture_root), workers=1)
    for split in ("train", "val"):
        shards = sorted((converted / "nuscenes_qa" / split).glob("*.tar"))
        assert shards and [f.read_bytes() for f in shards] == \
            [(again / "nuscenes_qa" / split / f.name).read_bytes() for f in shards]


def test_bad_questions_are_quarantined_and_counted(fixture_root, tmp_path, ray_session):
    src = tmp_path / "src"
    shutil.copytree(fixture_root / "questions", src / "questions")
    good = _questions(fixture_root, "val")
    bad = [
        {**good[0], "sample_token": "f" * 32},                      # not in the nuScenes root
        {**good[0], "answer": "maybe"},                             # outside the 30-answer vocabulary
        {k: v for k, v in good[0].items() if k != "template_type"},
        {**good[0], "num_hop": "one"},
        "not an object",
        {**good[1], "answer": 3, "template_type": "count"},         # an int answer is scored as str(answer)
    ]
    (src / "questions" / "NuScenes_val_questions.json").write_text(json.dumps({"questions": good + bad}))
    out = tmp_path / "out"
    card = convert("nuscenes_qa", src, out, _options(fixture_root)).cards["val"]
    assert card["counts"]["records_in"] == len(good) + len(bad)
    assert card["counts"]["samples"] == len(good) + 1
    reasons = {q["record_id"]: q["reason"] for q in read_quarantine(out / "nuscenes_qa" / "val" / "quarantine.jsonl")}
    n = len(good)
    assert reasons == {f"val/{n}": UNRESOLVED,
                       f"val/{n + 1}": "answer 'maybe' is not in the nuScenes-QA answer vocabulary",
                       f"val/{n + 2}": "no template_type string",
                       f"val/{n + 3}": "num_hop is not a non-negative integer",
                       f"val/{n + 4}": "question record is not an object"}
    int_answer = DatasetReader(out, "nuscenes_qa", "val").get(f"nuscenes_qa-val-{n + 5}").sample
    assert int_answer["conversations"][1]["content"] == "3"


def test_a_missing_camera_image_quarantines_that_frames_questions(fixture_root, tmp_path, ray_session):
    root = tmp_path / "nuscenes"
    shutil.copytree(fixture_root / "nuscenes", root)
    val = _questions(fixture_root, "val")
    token = val[0]["sample_token"]
    tables = NuScenesTables(root, "v1.0-mini")
    back = next(sd for sd in tables.t["sample_data"] if sd["sample_token"] == token and "CAM_BACK__" in sd["filename"])
    (root / back["filename"]).unlink()
    out = tmp_path / "out"
    card = convert("nuscenes_qa", fixture_root, out, NuScenesQAOptions(nuscenes_root=str(root)), splits=("val",))
    lost = [q for q in val if q["sample_token"] == token]
    assert card.cards["val"]["counts"] == {**card.cards["val"]["counts"], "samples": len(val) - len(lost),
                                           "quarantined": len(lost)}
    reasons = {q["reason"] for q in read_quarantine(out / "nuscenes_qa" / "val" / "quarantine.jsonl")}
    assert reasons == {f"CAM_BACK: missing image {back['filename']}"}


def test_roots_that_are_not_the_datasets_are_refused_in_one_line(fixture_root, tmp_path):
    nus = str(fixture_root / "nuscenes")
    cases = [
        (fixture_root, NuScenesQAOptions(), "nuscenes_qa needs --nuscenes-root PATH"),
        (fixture_root, NuScenesQAOptions(nuscenes_root=str(tmp_path)), "--nuscenes-root: "),
        (tmp_path, NuScenesQAOptions(nuscenes_root=nus), "is not a nuScenes-QA root"),
    ]
    not_questions = json.dumps([{"question": "?"}])
    for name, text, message in (("not_json", "{not json", "is not valid JSON"),
                                ("not_questions", not_questions, "is not a nuScenes-QA question file")):
        (tmp_path / name / "questions").mkdir(parents=True)
        (tmp_path / name / "questions" / "NuScenes_val_questions.json").write_text(text)
        cases.append((tmp_path / name, NuScenesQAOptions(nuscenes_root=nus), message))
    for src, options, message in cases:
        with pytest.raises(UsageError) as err:
            NuScenesQAConverter(src, options).check_source()
        assert message in str(err.value) and "\n" not in str(err.value)
