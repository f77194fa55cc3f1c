"""DriveBench converter: official layout, settings, camera preprocessing, bad input, real frames."""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import convert
from PIL import Image

from converters.drivebench.converter import (
    TEST_JSON,
    DriveBenchConverter,
    DriveBenchOptions,
    referred_cameras,
    visual_description,
)
from converters.drivebench.fixture import make_drivebench_fixture
from converters.drivelm.fixture import make_drivelm_fixture
from converters.nuscenes.tables import NUSCENES_ORDER
from dataengine.cli import main as cli
from dataengine.converter import Unit
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root


def samples(root: Path) -> list:
    return list(DatasetReader(root, "drivebench", "test"))


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return make_drivebench_fixture(tmp_path_factory.mktemp("drivebench") / "data")


@pytest.fixture(scope="module")
def shards(tmp_path_factory, src, ray_session) -> Path:
    out = tmp_path_factory.mktemp("drivebench_shards")
    convert("drivebench", src, out, DriveBenchOptions())
    return out


def test_fixture_is_in_the_official_layout(src):
    records = json.loads((src / TEST_JSON).read_text())
    assert {(r["question_type"], tuple(r["tag"])) for r in records} == {
        ("perception", (0,)), ("perception", (2,)), ("prediction", (3,)), ("planning", (1,)), ("behavior", (0,))}
    for r in records:
        assert set(r) == {"scene_token", "frame_token", "question_type", "question", "answer", "tag", "image_path"}
        assert list(r["image_path"]) == list(NUSCENES_ORDER)
        assert all(p.startswith(f"data/nuscenes/samples/{c}/") for c, p in r["image_path"].items())
    assert (src / "corruption" / "Fog").is_dir() and (src / "corruption" / "Bright").is_dir()
    bright = json.loads((src / "bright.json").read_text())
    assert all("corruption/Bright/" in p for r in bright for p in r["image_path"].values())


def test_every_setting_converts_with_every_record_accounted(shards, src):
    assert validate_root(shards) == {"drivebench/test": 105}
    n = len(json.loads((src / TEST_JSON).read_text()))
    card = json.loads((shards / "drivebench" / "test" / "card.json").read_text())
    assert card["counts"]["records_in"] == card["counts"]["samples"] + card["counts"]["quarantined"] == 3 * n + n // 2
    got = samples(shards)
    assert Counter(s.sample["meta"]["setting"] for s in got) == {"clean": n, "fog": n, "text_only": n, "bright": n // 2}
    s = next(s for s in got if s.sample["meta"]["setting"] == "fog")
    assert s.sample["meta"]["corruption"] == "Fog"
    assert s.sample["frame_id"] == f"nuscenes:{s.sample['meta']['frame_token']}"


def test_images_per_setting_are_the_official_files(shards, src):
    """clean reads nuscenes/samples, a corruption corruption/<Type>/, text-only a black 224x224 picture."""
    for stored in samples(shards):
        meta = stored.sample["meta"]
        for m in stored.sample["media"]:
            rel = meta["image_path"][m["source_camera"]].split("samples/", 1)[-1].split("corruption/Bright/", 1)[-1]
            data = stored.media[m["member"]]
            if meta["setting"] == "text_only":
                img = Image.open(io.BytesIO(data))
                assert img.size == (224, 224) and max(img.convert("L").getextrema()) <= 3
                continue
            folder = {"clean": src / "nuscenes" / "samples", "fog": src / "corruption" / "Fog",
                      "bright": src / "corruption" / "Bright"}[meta["setting"]]
            assert hashlib.sha1(data).hexdigest() == hashlib.sha1((folder / rel).read_bytes()).hexdigest()


def test_only_the_cameras_a_question_names_are_kept(shards):
    """tools/preprocess.py: tagged cameras only; untagged questions keep all six, in our order."""
    for stored in samples(shards):
        q = stored.sample["conversations"][0]["content"]
        named = set(re.findall(r"<c\d+,(CAM_[A-Z_]+),", q))
        cams = [m["source_camera"] for m in stored.sample["media"]]
        assert cams == [c for c in NUSCENES_ORDER if c in named] if named else cams == list(NUSCENES_ORDER)
    assert referred_cameras("Is <c1,CAM_BACK,0.5,0.6> near <c2,CAM_FRONT,0.1,0.2>?") == ["CAM_BACK", "CAM_FRONT"]


def test_preprocessing_off_keeps_all_six(src):
    records = json.loads((src / TEST_JSON).read_text())
    unit = Unit("clean-x", "test", {"setting": "clean", "file": TEST_JSON, "records": [[0, records[0]]]})
    [on] = DriveBenchConverter(src, DriveBenchOptions()).convert_unit(unit)
    [off] = DriveBenchConverter(src, DriveBenchOptions(drivebench_preprocess=False)).convert_unit(unit)
    assert len(on.sample["media"]) == 1 and len(off.sample["media"]) == 6


def test_visual_descriptions_follow_extract_visual_description(shards, src):
    desc = json.loads((src / "visual_description.json").read_text())
    for stored in samples(shards):
        meta, q = stored.sample["meta"], stored.sample["conversations"][0]["content"]
        if "<" not in q:
            assert meta["desc"] is None
            continue
        prefix = "<" + ",".join(q[q.index("<") + 1:].split(",")[:2])
        infos = desc[meta["scene_token"]]["key_frames"][meta["frame_token"]]["key_object_infos"]
        assert meta["desc"] == next(v["Visual_description"].lower() for k, v in infos.items() if k.startswith(prefix))
    assert visual_description({}, "s", "f", "In this scenario, what are safe actions to take for the ego vehicle?") \
        == ("No visual description needed for this question.", None)


def test_prompt_styles(shards):
    stored = next(s for s in samples(shards) if len(s.sample["media"]) == 2)
    text = render(stored.sample, "drivebench").conversation[0]["content"]
    assert text.startswith("<image>\n<image>\n")
    cams = ", ".join(m["source_camera"] for m in stored.sample["media"])
    assert f"You are provided with 2 camera images in the sequence [{cams}]." in text
    assert render(stored.sample).conversation[0]["content"].startswith("1: <image> 2: <image>. These two images are")


def _bad_records(src: Path) -> list:
    good = json.loads((src / TEST_JSON).read_text())[0]
    paths = dict(good["image_path"])
    return [
        good,
        {**good, "scene_token": "scene-0061"},
        {**good, "question_type": "robustness"},
        {**good, "question_type": "planning", "tag": [0]},
        {**good, "tag": "0"},
        {**good, "answer": ""},
        {**good, "image_path": {**paths, "CAM_FRONT": "data/nuscenes/samples/CAM_FRONT/../../../../outside.jpg"}},
        {**good, "image_path": {**paths, "CAM_FRONT": "data/nuscenes/samples/CAM_FRONT/missing.jpg"}},
        {**good, "image_path": {**paths, "CAM_FRONT": paths["CAM_BACK"]}},
        {**good, "image_path": {**paths, "CAM_ROOF": paths["CAM_BACK"]}},
        {**good, "image_path": {c: p for c, p in paths.items() if c != "CAM_FRONT"}},
        "not a record",
    ]


def test_bad_records_are_quarantined_with_reasons(tmp_path, src, ray_session):
    data = tmp_path / "data"
    data.mkdir()
    (data / "nuscenes").symlink_to(src / "nuscenes")
    (data / TEST_JSON).write_text(json.dumps(_bad_records(src)))
    out = tmp_path / "shards"
    convert("drivebench", data, out, DriveBenchOptions(drivebench_settings="clean"))
    reasons = {q["record_id"]: q["reason"] for q in read_quarantine(out / "drivebench" / "test" / "quarantine.jsonl")}
    name = f"clean/{TEST_JSON}"
    assert reasons == {
        f"{name}[1]": "scene_token is not a nuScenes token (32 hex digits)",
        f"{name}[2]": "question_type 'robustness' is not one of perception, prediction, planning, behavior",
        f"{name}[3]": "evaluate/eval.py routes no planning question with tag [0]",
        f"{name}[4]": "tag is not a non-empty list of integers",
        f"{name}[5]": "no answer string",
        f"{name}[6]": "CAM_FRONT: path 'samples/CAM_FRONT/../../../../outside.jpg' escapes the dataset root",
        f"{name}[7]": "CAM_FRONT: missing image samples/CAM_FRONT/missing.jpg",
        f"{name}[8]": f"image_path[CAM_FRONT] {_bad_records(src)[0]['image_path']['CAM_BACK']!r} is not in a "
                      "CAM_FRONT/ folder",
        f"{name}[9]": "image_path names unknown camera(s) CAM_ROOF",
        f"{name}[10]": "the question's cameras ['CAM_FRONT'] are not in image_path (tools/preprocess.py keeps none)",
        f"{name}[11]": "record is not an object",
    }
    card = json.loads((out / "drivebench" / "test" / "card.json").read_text())
    assert card["counts"]["samples"] == 1 and card["counts"]["records_in"] == 12


@pytest.mark.parametrize("what,expected", [
    ("file", "is not a directory"), ("no_json", "no drivebench-test.json"), ("no_samples", "no nuscenes/samples/"),
    ("not_list", "not a JSON list"), ("garbage", "is not valid JSON"), ("setting", "--drivebench-settings 'dusk'")])
def test_not_a_drivebench_source_is_a_usage_error(tmp_path, src, what, expected):
    data = tmp_path / "data"
    (data / "nuscenes" / "samples").mkdir(parents=True)
    (data / TEST_JSON).write_text({"not_list": "{}", "garbage": "[oops"}.get(what, "[]"))
    if what == "no_json":
        (data / TEST_JSON).unlink()
    if what == "no_samples":
        shutil.rmtree(data / "nuscenes")
    target = data / TEST_JSON if what == "file" else data
    opts = DriveBenchOptions(drivebench_settings="dusk" if what == "setting" else "all")
    with pytest.raises(UsageError, match=re.escape(expected)):
        DriveBenchConverter(target, opts).check_source()


def test_cli_bad_setting_exits_2_with_one_line(tmp_path, src, capsys):
    out = tmp_path / "out"
    assert cli(["convert", "drivebench", "--src", str(src), "--out", str(out), "--drivebench-settings", "dusk"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--drivebench-settings 'dusk'" in err and len(err.splitlines()) == 1 and not out.exists()


def test_frames_overlap_drivelm_train_for_the_audit(tmp_path, src):
    """The fixture asks about DriveLM's key frames: the audit's frame keys must meet."""
    drivelm = json.loads(make_drivelm_fixture(tmp_path / "drivelm").read_text())
    train_frames = {f for scene in drivelm.values() for f in scene["key_frames"]}
    bench_frames = {r["frame_token"] for r in json.loads((src / TEST_JSON).read_text())}
    assert train_frames and train_frames < bench_frames


# --- real frames: DriveLM's train_sample key frames (the frames DriveBench asks about) ---------------
def test_real_frames_convert_with_their_bytes(real_samples, tmp_path, ray_session):
    drivelm = json.loads((real_samples / "drivelm" / "train_sample.json").read_text())
    data = tmp_path / "data"
    data.mkdir()
    (data / "nuscenes").symlink_to((real_samples / "nuscenes").resolve())
    records = []
    for scene, body in drivelm.items():
        for frame, kf in body["key_frames"].items():
            paths = {c: "data/nuscenes/" + p.split("nuscenes/", 1)[1] for c, p in kf["image_paths"].items()}
            tag = next(iter(kf["key_object_infos"]))
            records.append({"scene_token": scene, "frame_token": frame, "question_type": "perception", "tag": [0],
                            "question": f"What is the moving status of object {tag}? A. Going ahead. B. Stopped.",
                            "answer": "A", "image_path": paths})
    (data / TEST_JSON).write_text(json.dumps(records))
    out = tmp_path / "shards"
    convert("drivebench", data, out, DriveBenchOptions(drivebench_settings="clean,text_only"))
    assert validate_root(out) == {"drivebench/test": 2 * 9}
    for stored in samples(out):
        m = stored.sample["media"]
        assert len(m) == 1 and stored.sample["meta"]["cameras_kept"] == [m[0]["source_camera"]]
        if stored.sample["meta"]["setting"] == "clean":
            rel = stored.sample["meta"]["image_path"][m[0]["source_camera"]].split("nuscenes/", 1)[1]
            assert (m[0]["width"], m[0]["height"]) == (1600, 900)
            assert stored.media[m[0]["member"]] == (real_samples / "nuscenes" / rel).read_bytes()


def test_units_are_one_setting_on_one_scene_and_carry_text_only(src):
    units = DriveBenchConverter(src, DriveBenchOptions()).units()
    assert Counter(u.id.rsplit("-", 1)[0] for u in units) == {"clean": 3, "bright": 3, "fog": 3, "text_only": 3}
    assert len(json.dumps([u.payload for u in units])) < 200_000  # records travel as text, never image bytes
