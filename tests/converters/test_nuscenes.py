"""nuScenes converter on generated dataroots, checked against nuscenes-devkit's own transforms."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import convert
from nuscenes_helpers import devkit_box_views, load_tables, ours_box_views, save_tables
from pyquaternion import Quaternion

from converters.nuscenes.converter import NuScenesOptions
from converters.nuscenes.fixture import make_nuscenes_root
from dataengine.manifest import read_quarantine
from dataengine.reader import DatasetReader
from dataengine.trajectory import command_from_future
from dataengine.validate import validate_root


@pytest.fixture(scope="module")
def nusc(nuscenes_root):
    from nuscenes import NuScenes

    return NuScenes(version="v1.0-mini", dataroot=str(nuscenes_root), verbose=False)


@pytest.fixture(scope="module")
def stored_by_task(nuscenes_shards):
    """Every stored sample by task, then by sample token (the converter's defaults: planning and
    agent-motion samples; tests/converters/test_nuscenes_agents.py checks the latter)."""
    out: dict[str, dict] = {}
    for split in ("train", "val"):
        for stored in DatasetReader(nuscenes_shards, "nuscenes", split):
            out.setdefault(stored.sample["task"], {})[stored.sample["meta"]["sample_token"]] = stored
    return out


@pytest.fixture(scope="module")
def samples(stored_by_task):
    return stored_by_task["planning.trajectory"]


def test_devkit_loads_the_fixture(nusc):
    assert len(nusc.scene) == 4 and len(nusc.sample) == 40
    sample = nusc.sample[0]
    assert set(sample["data"]) == {"LIDAR_TOP", "CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK",
                                   "CAM_BACK_LEFT", "CAM_BACK_RIGHT"}
    assert len(nusc.sample_annotation) > 0 and nusc.sample_annotation[0]["category_name"]


def test_official_splits_and_keys(nuscenes_shards, samples, nusc):
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes()
    for token, stored in samples.items():
        scene = nusc.get("scene", nusc.get("sample", token)["scene_token"])
        expected = "train" if scene["name"] in splits["mini_train"] else "val"
        assert stored.sample["split"] == expected
        assert stored.key == f"nuscenes-{token}" and stored.sample["scene_id"] == f"nuscenes:{scene['token']}"
    assert len(samples) == 40  # every key frame of the fixture has a planning sample


def test_agent_motion_samples_are_written_by_default(stored_by_task, samples):
    """`--agents` is on unless turned off: a key frame with agents near the ego also has a
    motion sample, keyed apart, in the same split and scene as its planning sample."""
    motion = stored_by_task["motion.agents"]
    assert set(stored_by_task) == {"planning.trajectory", "motion.agents"} and motion and set(motion) <= set(samples)
    for token, stored in motion.items():
        planning = samples[token].sample
        assert stored.key == f"nuscenes-motion-{token}"
        assert (stored.sample["split"], stored.sample["scene_id"]) == (planning["split"], planning["scene_id"])


def test_cameras_order_intrinsics_extrinsics(samples, nusc):
    stored = next(iter(samples.values()))
    media = stored.sample["media"]
    assert [m["source_camera"] for m in media] == ["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK",
                                                   "CAM_BACK_LEFT", "CAM_BACK_RIGHT"]
    assert [m["camera"] for m in media] == ["front", "front_left", "front_right", "back", "back_left", "back_right"]
    sample = nusc.get("sample", stored.sample["meta"]["sample_token"])
    for i, m in enumerate(media):
        sd = nusc.get("sample_data", sample["data"][m["source_camera"]])
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        expected = Quaternion(cs["rotation"]).transformation_matrix
        expected[:3, 3] = cs["translation"]
        np.testing.assert_allclose(m["extrinsics"], expected, atol=1e-9)
        np.testing.assert_allclose(m["intrinsics"], cs["camera_intrinsic"])
        assert stored.media[m["member"]] == (Path(nusc.dataroot) / sd["filename"]).read_bytes()
        assert m["time_offset_s"] == pytest.approx((sd["timestamp"] - sample["timestamp"]) / 1e6)


def _devkit_ego_xy(nusc, ref_token, other_token):
    ref = nusc.get("ego_pose", nusc.get("sample_data", nusc.get("sample", ref_token)["data"]["LIDAR_TOP"])["ego_pose_token"])
    oth = nusc.get("ego_pose", nusc.get("sample_data", nusc.get("sample", other_token)["data"]["LIDAR_TOP"])["ego_pose_token"])
    p = Quaternion(ref["rotation"]).inverse.rotate(np.subtract(oth["translation"], ref["translation"]))
    return p[:2]


def test_trajectory_history_and_mask_match_devkit(samples, nusc):
    for token, stored in samples.items():
        traj, ego = stored.sample["trajectory"], stored.sample["ego"]
        nxt, k = nusc.get("sample", token)["next"], 0
        while nxt and k < 6:
            np.testing.assert_allclose(traj["xy"][k], _devkit_ego_xy(nusc, token, nxt), atol=1e-3)
            assert traj["valid"][k]
            nxt, k = nusc.get("sample", nxt)["next"], k + 1
        assert not any(traj["valid"][k:])  # scene end: the rest is masked
        prv, k = nusc.get("sample", token)["prev"], 3
        while prv and k >= 0:
            np.testing.assert_allclose(ego["history_xy"][k], _devkit_ego_xy(nusc, token, prv), atol=1e-3)
            prv, k = nusc.get("sample", prv)["prev"], k - 1
        assert not any(ego["history_valid"][: k + 1])
        assert stored.sample["conversations"][1]["content"].count("(") == 6


def vad_command(xy, valid) -> str:
    """The test's own oracle of VAD's command rule (hustvl/VAD,
    tools/data_converter/vad_nuscenes_converter.py): lateral offset of the last future point
    >= 2 m towards one side is a turn to that side. VAD's lidar frame has x to the right; our
    ego frame has y to the left, so VAD's `x >= 2` (right) is our `y <= -2`."""
    points = [p for p, v in zip(xy, valid) if v]
    if not points:
        return "go_straight"
    lateral_right = -points[-1][1]
    if lateral_right >= 2:
        return "turn_right"
    if lateral_right <= -2:
        return "turn_left"
    return "go_straight"


def test_commands_follow_the_future_and_cover_all_three(samples):
    seen = set()
    for stored in samples.values():
        s = stored.sample
        assert s["command"] == vad_command(s["trajectory"]["xy"], s["trajectory"]["valid"])
        seen.add(s["command"])
    assert seen == {"turn_left", "turn_right", "go_straight"}


@pytest.mark.parametrize("y, expected", [
    (1.5, "go_straight"), (1.99, "go_straight"), (2.0, "turn_left"), (2.01, "turn_left"),
    (-1.5, "go_straight"), (-1.99, "go_straight"), (-2.0, "turn_right"), (-2.01, "turn_right"), (0.0, "go_straight"),
])
def test_command_threshold_boundaries(y, expected):
    """Exactly 2 m is a turn (VAD's `>=`), 1.99 m is not; only the last valid point counts."""
    assert vad_command([[10.0, y]], [True]) == expected
    assert command_from_future([[10.0, y]], [True]) == expected
    assert command_from_future([[10.0, y], [12.0, 9.0 - y]], [True, False]) == expected
    assert command_from_future([[12.0, 9.0], [10.0, y]], [True, True]) == expected


def test_command_without_a_valid_future_point_is_go_straight():
    assert command_from_future([[5, 3.0], [5, -3.0]], [False, False]) == "go_straight"
    assert command_from_future([], []) == "go_straight"


def test_projected_boxes_match_devkit(samples, nusc):
    checked = 0
    for token, stored in samples.items():
        theirs = devkit_box_views(nusc, token)
        ours = ours_box_views(stored.sample)
        assert set(ours) == set(theirs)
        for key, box in theirs.items():
            np.testing.assert_allclose(ours[key], box, atol=0.02)
            checked += 1
    assert checked > 20


def test_boxes_3d_in_ego_frame_match_devkit(samples, nusc):
    stored = next(s for s in samples.values() if s.sample["objects"])
    sample = nusc.get("sample", stored.sample["meta"]["sample_token"])
    pose = nusc.get("ego_pose", nusc.get("sample_data", sample["data"]["LIDAR_TOP"])["ego_pose_token"])
    for obj in stored.sample["objects"]:
        box = nusc.get_box(obj["annotation_id"])
        box.translate(-np.array(pose["translation"]))
        box.rotate(Quaternion(pose["rotation"]).inverse)
        np.testing.assert_allclose(obj["box_3d"]["center"], box.center, atol=1e-3)
        yaw = box.orientation.yaw_pitch_roll[0]
        assert math.isclose(math.remainder(obj["box_3d"]["yaw"] - yaw, 2 * math.pi), 0, abs_tol=1e-3)
        assert obj["category"] == nusc.get("sample_annotation", obj["annotation_id"])["category_name"]


def test_ego_state_from_can_bus_and_from_poses(samples):
    sources = {s.sample["meta"]["scene_name"]: s.sample["meta"]["ego_motion_source"] for s in samples.values()}
    assert sources["scene-0061"] == "can_bus" and sources["scene-0553"] == "ego_pose"
    for stored in samples.values():
        ego = stored.sample["ego"]
        name = stored.sample["meta"]["scene_name"]
        if name == "scene-0553":  # left turn at 7 m/s, 0.16 rad/s
            assert ego["speed_mps"] == pytest.approx(7.0, abs=0.15)
            assert ego["yaw_rate_rps"] == pytest.approx(0.16, abs=0.01)
        if name == "scene-0061":  # CAN bus: straight, 8 m/s
            assert ego["speed_mps"] == pytest.approx(8.0, abs=0.01) and ego["yaw_rate_rps"] == 0.0


def test_bad_records_are_quarantined_with_reasons(tmp_path, ray_session):
    root = make_nuscenes_root(tmp_path / "root", scenes_per_split=(1, 0), keyframes=8, objects=2)
    t = load_tables(root)
    samples = sorted(t["sample"], key=lambda s: s["timestamp"])
    cam_rows = {(sd["sample_token"], sd["filename"].split("/")[1]): sd for sd in t["sample_data"]}
    (root / cam_rows[(samples[0]["token"], "CAM_FRONT")]["filename"]).unlink()                  # missing image
    trunc = root / cam_rows[(samples[1]["token"], "CAM_BACK")]["filename"]
    trunc.write_bytes(trunc.read_bytes()[:500])                                                  # truncated
    cam_rows[(samples[2]["token"], "CAM_FRONT_LEFT")]["ego_pose_token"] = "f" * 32               # missing token
    lidar_pose = cam_rows[(samples[3]["token"], "LIDAR_TOP")]["ego_pose_token"]
    next(p for p in t["ego_pose"] if p["token"] == lidar_pose)["translation"][0] = float("nan")  # NaN pose
    cam_rows[(samples[4]["token"], "CAM_BACK_RIGHT")]["filename"] = "../../etc/passwd"           # escapes root
    save_tables(root, t)
    out = tmp_path / "out"
    result = convert("nuscenes", root, out)
    counts = result.cards["train"]["counts"]
    written = DatasetReader(out, "nuscenes", "train")
    tasks = dict(zip(written.manifest.column("key").to_pylist(), written.manifest.column("task").to_pylist()))
    planning = {k for k, t in tasks.items() if t == "planning.trajectory"}
    motion = {k for k, t in tasks.items() if t == "motion.agents"}
    # 8 key frames: 5 quarantined, 3 planning samples, and a motion sample only beside a written one
    assert (len(planning), counts["quarantined"], counts["samples"]) == (3, 5, len(tasks))
    assert motion and {k.replace("-motion-", "-") for k in motion} <= planning
    assert counts["records_in"] == counts["samples"] + counts["quarantined"]
    reasons = {q["record_id"]: q["reason"] for q in read_quarantine(out / "nuscenes" / "train" / "quarantine.jsonl")}
    assert "missing image" in reasons[samples[0]["token"]]
    assert "truncated JPEG" in reasons[samples[1]["token"]]
    assert "ego_pose token" in reasons[samples[2]["token"]] and "not found" in reasons[samples[2]["token"]]
    assert "non-finite ego_pose" in reasons[samples[3]["token"]]
    assert "escapes the dataset root" in reasons[samples[4]["token"]]
    validate_root(out)
    fifth = written.get(f"nuscenes-{samples[5]['token']}").sample
    # history = keyframes 1..4; the NaN pose of keyframe 3 is masked, not dropped or invented
    assert fifth["ego"]["history_valid"] == [True, True, False, True]
    assert fifth["ego"]["history_xy"][2] == fifth["ego"]["history_xy"][3]


def test_neighbours_of_a_bad_pose_keep_finite_ego_motion(tmp_path, ray_session):
    """Without a CAN bus, ego motion comes from neighbouring poses: a NaN pose is skipped
    (one-sided difference), never turned into a NaN speed that fails the whole scene."""
    root = make_nuscenes_root(tmp_path / "root", scenes_per_split=(1, 0), keyframes=8, objects=2, can_bus=False)
    t = load_tables(root)
    samples = sorted(t["sample"], key=lambda s: s["timestamp"])
    lidar = {sd["sample_token"]: sd["ego_pose_token"] for sd in t["sample_data"] if "LIDAR_TOP" in sd["filename"]}
    next(p for p in t["ego_pose"] if p["token"] == lidar[samples[3]["token"]])["translation"][0] = float("nan")
    save_tables(root, t)
    counts = convert("nuscenes", root, tmp_path / "out", NuScenesOptions(agents=False)).cards["train"]["counts"]
    assert (counts["samples"], counts["quarantined"]) == (7, 1)  # planning samples only
    written = DatasetReader(tmp_path / "out", "nuscenes", "train")
    for k in (2, 4):
        ego = written.get(f"nuscenes-{samples[k]['token']}").sample["ego"]
        assert ego["speed_mps"] > 1.0 and math.isfinite(ego["accel_mps2"])


@pytest.mark.parametrize("make_src, message", [
    (lambda tmp: tmp / "does-not-exist", "does not exist"),
    (lambda tmp: tmp, "is not a nuScenes root"),
])
def test_bad_root_is_one_line_exit_2_nothing_written(tmp_path, make_src, message):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "dataengine", "convert", "nuscenes", "--src", str(make_src(tmp_path)),
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
    assert not out.exists()


def test_sweeps_are_not_held_and_do_not_change_the_output(tmp_path, nuscenes_root):
    """A sweep (non-key-frame) sample_data row and its pose are dropped at load time."""
    import shutil

    from converters.nuscenes.tables import NuScenesTables

    root = tmp_path / "root"
    shutil.copytree(nuscenes_root, root, symlinks=True)
    t = load_tables(root)
    key = t["sample_data"][0]
    t["sample_data"].append({**key, "token": "s" * 32, "is_key_frame": False, "ego_pose_token": "p" * 32})
    t["ego_pose"].append({**t["ego_pose"][0], "token": "p" * 32})
    save_tables(root, t)
    tables = NuScenesTables(root, "v1.0-mini")
    assert "s" * 32 not in tables.by_token["sample_data"] and "p" * 32 not in tables.by_token["ego_pose"]
    assert len(tables.t["sample_data"]) == len(t["sample_data"]) - 1
    sample = next(s for s in tables.t["sample"] if s["token"] == key["sample_token"])
    assert tables.keyframe(sample)["problems"] == []


def test_scene_splits_read_from_the_devkit_equal_its_own_function():
    from nuscenes.utils.splits import create_splits_scenes

    from converters.nuscenes.tables import devkit_scene_splits

    ours, theirs = devkit_scene_splits(), create_splits_scenes()
    for split in ("train", "val", "test", "mini_train", "mini_val"):
        assert list(ours[split]) == theirs[split] or sorted(ours[split]) == sorted(theirs[split])
    assert len(ours["train"]) == 700 and len(ours["val"]) == 150 and len(ours["test"]) == 150
