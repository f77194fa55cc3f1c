"""Agent-motion samples of the nuScenes converter (on by default, `--agents false` turns them
off): each agent's future follows its annotation chain and lands in the current key frame's ego
frame exactly as nuscenes-devkit puts a box there; planning samples are untouched by the option."""
import hashlib
import json
import shutil

import numpy as np
import pytest
from pyquaternion import Quaternion

from converters.nuscenes.agents import MAX_AGENTS, RADIUS_M, TASK
from converters.nuscenes.converter import NuScenesConverter, NuScenesOptions
from dataengine.converter import Record, parse_options
from dataengine.schema import validate_sample
from dataengine.waypoints import format_waypoints, parse_waypoints


def _records(root, options: NuScenesOptions) -> list[Record]:
    conv = NuScenesConverter(root, options)
    return [r for unit in conv.units() for r in conv.convert_unit(unit) if isinstance(r, Record)]


@pytest.fixture(scope="module")
def nusc(nuscenes_root):
    from nuscenes import NuScenes

    return NuScenes(version="v1.0-mini", dataroot=str(nuscenes_root), verbose=False)


@pytest.fixture(scope="module")
def records(nuscenes_root):
    return _records(nuscenes_root, NuScenesOptions())  # the defaults: agent-motion samples on


def _devkit_xy(nusc, sample_token, ann_token):
    """The devkit's global-to-ego move (`get_sample_data`): translate by -ego, rotate by ego^-1."""
    sd = nusc.get("sample_data", nusc.get("sample", sample_token)["data"]["LIDAR_TOP"])
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    box = nusc.get_box(ann_token)
    box.translate(-np.array(pose["translation"]))
    box.rotate(Quaternion(pose["rotation"]).inverse)
    return box.center[:2]


def test_planning_samples_are_unchanged_by_the_option(nuscenes_root, records):
    off = parse_options(NuScenesConverter, {"agents": "false"})  # `--agents false`
    plain = {r.sample["id"]: (json.dumps(r.sample, sort_keys=True), r.media) for r in _records(nuscenes_root, off)}
    planning = {r.sample["id"]: (json.dumps(r.sample, sort_keys=True), r.media) for r in records
                if r.sample["task"] == "planning.trajectory"}
    assert planning == plain and len(plain) == 40
    assert all(r.sample["task"] in ("planning.trajectory", TASK) for r in records)
    assert sum(r.sample["task"] == TASK for r in records) > 0  # on by default


def test_motion_samples_are_deterministic_and_follow_their_key_frame(nuscenes_root, records):
    again = _records(nuscenes_root, NuScenesOptions())
    assert [json.dumps(r.sample, sort_keys=True) for r in again] == [json.dumps(r.sample, sort_keys=True)
                                                                     for r in records]
    ids = [r.sample["id"] for r in records]
    for i, key in enumerate(ids):  # each motion sample comes right after its key frame's planning sample
        if key.startswith("nuscenes-motion-"):
            assert ids[i - 1] == key.replace("-motion-", "-")


def test_agent_futures_follow_the_chain_in_the_ego_frame_like_the_devkit(nusc, records):
    motion = []
    for r in records:  # the shard writer fills media sha1s; done here (on a copy) to validate the samples
        if r.sample["task"] == TASK:
            motion.append({**r.sample, "media": [{"sha1": hashlib.sha1(blob).hexdigest(), **item}
                                                 for item, blob in zip(r.sample["media"], r.media)]})
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
    motion = [r.sample for r in _records(root, NuScenesOptions()) if r.sample["task"] == TASK]
    obj = next(o for s in motion for o in s["objects"] if o["annotation_id"] == ann["token"])
    assert obj["future"]["valid"] == [False] * 6 and obj["future"]["xy"] == [obj["xy"]] * 6


def test_the_forecast_is_conditioned_on_the_ego(records):
    """The question states the ego's speed and its valid history (the planning sample's), so the
    interaction stage forecasts the agents given the ego, not in isolation."""
    planning = {r.sample["meta"]["sample_token"]: r.sample for r in records if r.sample["task"] == "planning.trajectory"}
    motion = [r.sample for r in records if r.sample["task"] == TASK]
    with_history = 0
    for s in motion:
        ego = planning[s["meta"]["sample_token"]]["ego"]
        question = s["conversations"][0]["content"]
        assert s["ego"] == ego and f"speed {ego['speed_mps']:.2f} m/s" in question
        history = [p for p, v in zip(ego["history_xy"], ego["history_valid"]) if v]
        if history:
            with_history += 1
            assert format_waypoints(history) in question
        else:
            assert "no past trajectory" in question
    assert 0 < with_history < len(motion)  # scenes start: first key frames have no history
