"""Agent-motion samples of the nuScenes converter (`--agents true`): each agent's future follows
its annotation chain and lands in the current key frame's ego frame exactly as nuscenes-devkit
puts a box there; planning samples are untouched by the option."""
import hashlib
import json
import shutil

import numpy as np
import pytest
from pyquaternion import Quaternion

from converters.nuscenes.agents import MAX_AGENTS, RADIUS_M, TASK
from converters.nuscenes.converter import NuScenesConverter, NuScenesOptions
from dataengine.converter import Record
from dataengine.schema import validate_sample
from dataengine.waypoints import parse_waypoints


def _records(root, agents: bool) -> list[Record]:
    conv = NuScenesConverter(root, NuScenesOptions(agents=agents))
    return [r for unit in conv.units() for r in conv.convert_unit(unit) if isinstance(r, Record)]


@pytest.fixture(scope="module")
def nusc(nuscenes_root):
    from nuscenes import NuScenes

    return NuScenes(version="v1.0-mini", dataroot=str(nuscenes_root), verbose=False)


@pytest.fixture(scope="module")
def records(nuscenes_root):
    return _records(nuscenes_root, agents=True)


def _devkit_xy(nusc, sample_token, ann_token):
    """The devkit's global-to-ego move (`get_sample_data`): translate by -ego, rotate by ego^-1."""
    sd = nusc.get("sample_data", nusc.get("sample", sample_token)["data"]["LIDAR_TOP"])
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    box = nusc.get_box(ann_token)
    box.translate(-np.array(pose["translation"]))
    box.rotate(Quaternion(pose["rotation"]).inverse)
    return box.center[:2]


def test_planning_samples_are_unchanged_by_the_option(nuscenes_root, records):
    plain = {r.sample["id"]: (json.dumps(r.sample, sort_keys=True), r.media) for r in _records(nuscenes_root, False)}
    planning = {r.sample["id"]: (json.dumps(r.sample, sort_keys=True), r.media) for r in records
                if r.sample["task"] == "planning.trajectory"}
    assert planning == plain and len(plain) == 40
    assert all(r.sample["task"] in ("planning.trajectory", TASK) for r in records)


def test_agent_futures_follow_the_chain_in_the_ego_frame_like_the_devkit(nusc, records):
    motion = [r.sample for r in records if r.sample["task"] == TASK]
    for r in records:  # the shard writer fills media sha1s; done here to validate the samples
        for item, blob in zip(r.sample["media"], r.media):
            item.setdefault("sha1", hashlib.sha1(blob).hexdigest())
    assert motion and len({s["id"] for s in motion}) == len(motion)
    padded = 0
    for s in motion:
        validate_sample(s)
        token = s["meta"]["sample_token"]
        assert s["id"] == f"nuscenes-motion-{token}" and 1 <= len(s["objects"]) <= MAX_AGENTS
        answers = s["conversations"][1]["content"].splitlines()
        assert len(answers) == len(s["objects"])
        dists = [np.hypot(*o["xy"]) for o in s["objects"]]
        assert dists == sorted(dists) and max(dists) <= RADIUS_M
        for i, obj in enumerate(s["objects"]):
            assert obj["category"].startswith(("vehicle.", "human.pedestrian."))
            np.testing.assert_allclose(obj["xy"], _devkit_xy(nusc, token, obj["annotation_id"]), atol=1e-3)
            ann, last = nusc.get("sample_annotation", obj["annotation_id"]), obj["xy"]
            for xy, valid in zip(obj["future"]["xy"], obj["future"]["valid"]):
                if ann["next"]:
                    ann = nusc.get("sample_annotation", ann["next"])
                    assert valid
                    np.testing.assert_allclose(xy, _devkit_xy(nusc, token, ann["token"]), atol=1e-3)
                    last = xy
                else:  # the chain ended: VAD's padding, the last valid point repeated
                    assert not valid and xy == last
                    padded += 1
            np.testing.assert_allclose(parse_waypoints(answers[i]), obj["future"]["xy"], atol=0.005)  # 2 decimals
            assert answers[i].startswith(f"{i + 1}. [")
            assert f"{i + 1}. " in s["conversations"][0]["content"]
    assert padded > 0  # the fixture's scenes end: some chains are padded


def test_a_broken_chain_pads_instead_of_jumping(nuscenes_root, tmp_path):
    from nuscenes_helpers import load_tables, save_tables

    root = tmp_path / "root"
    shutil.copytree(nuscenes_root, root)
    t = load_tables(root)
    ann = next(a for a in t["sample_annotation"] if a["next"] and a["prev"] == "")
    ann["next"] = "0" * 32  # a dangling link
    save_tables(root, t)
    motion = [r.sample for r in _records(root, True) if r.sample["task"] == TASK]
    obj = next(o for s in motion for o in s["objects"] if o["annotation_id"] == ann["token"])
    assert obj["future"]["valid"] == [False] * 6 and obj["future"]["xy"] == [obj["xy"]] * 6
