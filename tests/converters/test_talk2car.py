"""Talk2Car: commands become front-image grounding samples whose box is the referred object's,
found through the nuScenes tables; real validation commands are all accounted for."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import convert

from converters.nuscenes.tables import NuScenesTables
from converters.nuscenes.units import UNRESOLVED
from converters.talk2car.converter import Talk2CarConverter, Talk2CarOptions, command_problem
from converters.talk2car.fixture import make_talk2car
from dataengine.errors import UsageError
from dataengine.geometry import apply, invert, pose_matrix
from dataengine.manifest import read_quarantine
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    # 4 scenes of 6 key frames: three give train commands, the val scene's frames alternate val / test
    return make_talk2car(tmp_path_factory.mktemp("talk2car") / "raw", keyframes=6, width=160, height=90)


@pytest.fixture(scope="module")
def converted(fixture_root, tmp_path_factory, ray_session) -> Path:
    out = tmp_path_factory.mktemp("talk2car_out")
    convert("talk2car", fixture_root, out, Talk2CarOptions(nuscenes_root=str(fixture_root / "nuscenes")))
    return out


def _commands(root: Path, split: str) -> list[dict]:
    return json.loads((root / "commands" / f"{split}_commands.json").read_text())["commands"]


def _convert_commands(fixture_root: Path, tmp_path: Path, commands: list[dict]):
    src = tmp_path / "src"
    (src / "commands").mkdir(parents=True)
    (src / "commands" / "val_commands.json").write_text(json.dumps({"scene_tokens": [], "commands": commands}))
    out = tmp_path / "out"
    card = convert("talk2car", src, out, Talk2CarOptions(nuscenes_root=str(fixture_root / "nuscenes"))).cards["val"]
    return out, card


def test_every_command_grounds_its_object_in_the_front_image(fixture_root, converted):
    counts = {s: len(_commands(fixture_root, s)) for s in ("train", "val", "test")}
    assert validate_root(converted) == {f"talk2car/{s}": n for s, n in counts.items()}
    tables = NuScenesTables(fixture_root / "nuscenes", "v1.0-mini")
    annotations = {a["token"]: a for a in json.loads(  # the index keeps annotations by sample only
        (fixture_root / "nuscenes" / "v1.0-mini" / "sample_annotation.json").read_text())}
    source = {c["command_token"]: c for c in _commands(fixture_root, "train")}
    for stored in DatasetReader(converted, "talk2car", "train"):
        s = stored.sample
        c = source[s["meta"]["command_token"]]
        sd = tables.get("sample_data", c["sample_token"])  # the devkit's reading: a CAM_FRONT sample_data token
        assert (s["frame_id"], s["scene_id"]) == (f"nuscenes:{sd['sample_token']}", f"nuscenes:{c['scene_token']}")
        assert s["layout"] == "single_image" and s["task"] == "grounding.box"
        assert [(m["camera"], m["source_camera"]) for m in s["media"]] == [("front", "CAM_FRONT")]
        x, y, w, h = c["2d_box"]
        assert s["conversations"][1]["content"] == f"[{x}, {y}, {x + w}, {y + h}]"
        assert f'"{c["command"]}"' in s["conversations"][0]["content"]
        obj = s["objects"][0]
        assert obj["category"] == c["obj_name"] and obj["annotation_id"] == c["box_token"]
        assert obj["box_2d"] == [{"camera": "front", "xyxy": [float(x), float(y), float(x + w), float(y + h)]}]
        # the camera-frame 3D box, moved to the ego frame, is the annotation's global box seen from that ego pose
        ann = annotations[c["box_token"]]
        ego = tables.get("ego_pose", sd["ego_pose_token"])
        expected = apply(invert(pose_matrix(ego["translation"], ego["rotation"])), np.array([ann["translation"]]))[0]
        assert np.allclose(obj["box_3d"]["center"], expected, atol=1e-3)


def test_a_command_without_2d_box_gets_its_box_projected_from_the_tables(fixture_root, converted, tmp_path,
                                                                        ray_session):
    given = _commands(fixture_root, "val")
    stripped = [{k: v for k, v in c.items() if k != "2d_box"} for c in given]
    out, card = _convert_commands(fixture_root, tmp_path, stripped)
    assert card["counts"]["samples"] == len(given)
    projected = {s.key: s.sample["objects"][0]["box_2d"][0]["xyxy"] for s in DatasetReader(out, "talk2car", "val")}
    for s in DatasetReader(converted, "talk2car", "val"):
        assert np.allclose(projected[s.key], s.sample["objects"][0]["box_2d"][0]["xyxy"], atol=1.01)


def test_a_sample_token_as_the_readme_words_it_finds_the_same_frame(fixture_root, converted, tmp_path,
                                                                    ray_session):
    tables = NuScenesTables(fixture_root / "nuscenes", "v1.0-mini")
    given = _commands(fixture_root, "val")
    as_samples = [{**c, "sample_token": tables.get("sample_data", c["sample_token"])["sample_token"]} for c in given]
    out, _ = _convert_commands(fixture_root, tmp_path, as_samples)
    reference = DatasetReader(converted, "talk2car", "val")
    for s in DatasetReader(out, "talk2car", "val"):
        ref = reference.get(s.key).sample
        assert (s.sample["frame_id"], s.sample["media"], s.sample["objects"]) == \
            (ref["frame_id"], ref["media"], ref["objects"])


def test_bad_commands_are_quarantined_and_counted(fixture_root, tmp_path, ray_session):
    tables = NuScenesTables(fixture_root / "nuscenes", "v1.0-mini")
    good = _commands(fixture_root, "val")
    c = good[0]
    back = next(sd["token"] for sd in tables.t["sample_data"]
                if sd["sample_token"] == tables.get("sample_data", c["sample_token"])["sample_token"]
                and "CAM_BACK__" in sd["filename"])
    bad = [
        {**c, "command_token": "t1", "sample_token": "a" * 32},
        {**c, "command_token": "t2", "scene_token": "b" * 32},
        {**c, "command_token": "t3", "sample_token": back},
        {**c, "command_token": "t4", "2d_box": [10, 10, 0, 5]},
        {**c, "command_token": "t5", "2d_box": [5000, 4000, 20, 20]},
        {**c, "command_token": "t6", "command": ""},
        {**c, "command_token": "t7", "rotation": ["x", "0", "0", "1"]},
        {**{k: v for k, v in c.items() if k not in ("2d_box", "translation", "size", "rotation")},
         "command_token": "t8"},
        dict(c),                                                             # repeated command_token
    ]
    out, card = _convert_commands(fixture_root, tmp_path, good + bad)
    assert card["counts"]["records_in"] == len(good) + len(bad)
    assert card["counts"]["samples"] == len(good)
    reasons = {q["record_id"]: q["reason"] for q in read_quarantine(out / "talk2car" / "val" / "quarantine.jsonl")}
    assert reasons == {
        "t1": UNRESOLVED,
        "t2": f"scene_token {'b' * 32} is not the scene of sample {tables.get('sample_data', back)['sample_token']}",
        "t3": f"sample_data {back} is not the CAM_FRONT key-frame image of its sample",
        "t4": "2d_box [10, 10, 0, 5] is not [x, y, w, h] with positive w and h",
        "t5": "2d_box [5000.0, 4000.0, 5020.0, 4020.0] lies outside the 160x90 front image",
        "t6": "no command string",
        "t7": "3D box fields rotation are not valid numbers",
        "t8": "no referred object box (2d_box or translation/size/rotation)",
        c["command_token"]: "repeated command_token",
    }


def test_real_validation_commands_are_all_accounted_for(real_samples, fixture_root, tmp_path, ray_session):
    """The real file parses command by command; with no real nuScenes tables here, every command
    is quarantined for its token, none for its content: 1,163 commands over 75 scenes."""
    src = real_samples / "talk2car"
    data = json.loads((src / "val_commands.json").read_text())
    assert (len(data["commands"]), len(data["scene_tokens"])) == (1163, 75)
    assert [command_problem(c) for c in data["commands"]] == [None] * 1163
    out = tmp_path / "out"
    card = convert("talk2car", src, out, Talk2CarOptions(nuscenes_root=str(fixture_root / "nuscenes"))).cards["val"]
    assert card["counts"]["records_in"] == card["counts"]["samples"] + card["counts"]["quarantined"] == 1163
    quarantined = read_quarantine(out / "talk2car" / "val" / "quarantine.jsonl")
    assert {q["reason"] for q in quarantined} == {UNRESOLVED}
    assert {q["record_id"] for q in quarantined} == {c["command_token"] for c in data["commands"]}


def test_roots_that_are_not_the_datasets_are_refused_in_one_line(fixture_root, tmp_path):
    nus = str(fixture_root / "nuscenes")
    (tmp_path / "list" / "commands").mkdir(parents=True)
    (tmp_path / "list" / "commands" / "val_commands.json").write_text("[]")
    cases = [(fixture_root, Talk2CarOptions(), "talk2car needs --nuscenes-root PATH"),
             (fixture_root, Talk2CarOptions(nuscenes_root=str(tmp_path)), "--nuscenes-root: "),
             (tmp_path, Talk2CarOptions(nuscenes_root=nus), "is not a Talk2Car root"),
             (tmp_path / "list", Talk2CarOptions(nuscenes_root=nus), "is not a Talk2Car commands file")]
    for src, options, message in cases:
        with pytest.raises(UsageError) as err:
            Talk2CarConverter(src, options).check_source()
        assert message in str(err.value) and "\n" not in str(err.value)
