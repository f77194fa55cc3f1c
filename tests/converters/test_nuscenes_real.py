"""Conformance on real nuScenes files (DATAENGINE_REAL_SAMPLES): real JPEGs pass through
byte-identical, and the real 6-camera calibration projects as the devkit projects."""
import hashlib
import json
from pathlib import Path

import numpy as np
from conftest import convert
from nuscenes_helpers import devkit_box_views, load_tables, ours_box_views, save_tables
from pyquaternion import Quaternion

from converters.nuscenes.fixture import make_nuscenes_root, token
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root

CAMS = ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")


def test_real_jpegs_pass_through_byte_identical(tmp_path, real_samples, ray_session):
    real = real_samples / "nuscenes" / "samples"
    files = {c: sorted((real / c).glob("*.jpg")) for c in CAMS}
    n = min(len(v) for v in files.values())
    assert n == 9
    root = make_nuscenes_root(tmp_path / "root", scenes_per_split=(1, 0), keyframes=n, width=1600, height=900,
                              objects=0, can_bus=False)
    t = load_tables(root)
    order = {s["token"]: i for i, s in enumerate(sorted(t["sample"], key=lambda s: s["timestamp"]))}
    for sd in t["sample_data"]:
        channel = sd["filename"].split("/")[1]
        if channel in files:
            (root / sd["filename"]).unlink()
            sd["filename"] = f"real/{channel}/{files[channel][order[sd['sample_token']]].name}"
    save_tables(root, t)
    (root / "real").symlink_to(real, target_is_directory=True)  # an operator's symlink inside the root
    out = tmp_path / "out"
    result = convert("nuscenes", root, out)
    assert result.cards["train"]["counts"]["samples"] == n
    validate_root(out)
    for stored in DatasetReader(out, "nuscenes", "train"):
        k = order[stored.sample["meta"]["sample_token"]]
        for m in stored.sample["media"]:
            source = files[m["source_camera"]][k].read_bytes()
            assert stored.media[m["member"]] == source
            assert m["sha1"] == hashlib.sha1(source).hexdigest()
            assert (m["width"], m["height"]) == (1600, 900)


def test_jpegs_behind_a_symlink_pass_through_byte_identical(tmp_path, ray_session):
    """Fixture twin of the test above: the generated JPEGs, moved out of the root and reached
    through an operator's symlink inside it, are stored byte for byte."""
    root = make_nuscenes_root(tmp_path / "root", scenes_per_split=(1, 0), keyframes=2, objects=0, can_bus=False)
    elsewhere = tmp_path / "elsewhere"
    t = load_tables(root)
    files = {}
    for sd in t["sample_data"]:
        channel = sd["filename"].split("/")[1]
        if channel in CAMS and sd["is_key_frame"]:
            moved = elsewhere / channel / Path(sd["filename"]).name
            moved.parent.mkdir(parents=True, exist_ok=True)
            (root / sd["filename"]).rename(moved)
            sd["filename"] = f"real/{channel}/{moved.name}"
            files[(sd["sample_token"], channel)] = moved.read_bytes()
    save_tables(root, t)
    (root / "real").symlink_to(elsewhere, target_is_directory=True)
    out = tmp_path / "out"
    assert convert("nuscenes", root, out).cards["train"]["counts"]["samples"] == 2
    validate_root(out)
    checked = 0
    for stored in DatasetReader(out, "nuscenes", "train"):
        for m in stored.sample["media"]:
            source = files[(stored.sample["meta"]["sample_token"], m["source_camera"])]
            assert stored.media[m["member"]] == source and m["sha1"] == hashlib.sha1(source).hexdigest()
            checked += 1
    assert checked == 2 * len(CAMS)


def _real_calibration(real_samples):
    coco = json.loads((real_samples / "nuscenes_calib" / "nus_infos_mono3d.coco.json").read_text())
    cams = {img["file_name"].split("/")[1]: img for img in coco["images"]}
    assert set(cams) == set(CAMS)
    return cams, coco["annotations"]


def test_real_calibration_projects_as_devkit(tmp_path, real_samples, ray_session):
    """The real sample's calibration and ego pose, with boxes placed where the real annotations
    are (their camera-frame centres): our extrinsics and 2D boxes equal the devkit's."""
    from nuscenes import NuScenes

    cams, anns = _real_calibration(real_samples)
    root = make_nuscenes_root(tmp_path / "root", scenes_per_split=(1, 0), keyframes=1, width=1600, height=900,
                              objects=0, can_bus=False)
    t = load_tables(root)
    sample_token = t["sample"][0]["token"]
    ego_rot, ego_t = Quaternion(cams["CAM_FRONT"]["ego2global_rotation"]), cams["CAM_FRONT"]["ego2global_translation"]
    poses = {p["token"]: p for p in t["ego_pose"]}
    calibs = {c["token"]: c for c in t["calibrated_sensor"]}
    sensors = {s["token"]: s["channel"] for s in t["sensor"]}
    for sd in t["sample_data"]:
        poses[sd["ego_pose_token"]].update(rotation=list(ego_rot.elements), translation=ego_t)
        calib = calibs[sd["calibrated_sensor_token"]]
        channel = sensors[calib["sensor_token"]]
        if channel in cams:
            calib.update(rotation=cams[channel]["cam2ego_rotation"], translation=cams[channel]["cam2ego_translation"],
                         camera_intrinsic=cams[channel]["cam_intrinsic"])
    by_image = {img["id"]: img for img in (json.loads((real_samples / "nuscenes_calib" /
                                                       "nus_infos_mono3d.coco.json").read_text())["images"])}
    category = next(c for c in t["category"] if c["name"] == "vehicle.car")
    for i, ann in enumerate(anns):
        img = by_image[ann["image_id"]]
        x, y, z, w, l, h, yaw = ann["bbox_cam3d"]
        cam_to_ego = (Quaternion(img["cam2ego_rotation"]), np.array(img["cam2ego_translation"]))
        center = ego_rot.rotate(cam_to_ego[0].rotate([x, y, z]) + cam_to_ego[1]) + np.array(ego_t)
        inst = token("real-instance", i)
        t["instance"].append({"token": inst, "category_token": category["token"], "nbr_annotations": 1,
                              "first_annotation_token": token("real-ann", i), "last_annotation_token": token("real-ann", i)})
        t["sample_annotation"].append({
            "token": token("real-ann", i), "sample_token": sample_token, "instance_token": inst, "visibility_token": "4",
            "attribute_tokens": [], "translation": list(center), "size": [w, l, h],
            "rotation": list((ego_rot * Quaternion(axis=[0, 0, 1], angle=yaw)).elements), "prev": "", "next": "",
            "num_lidar_pts": 5, "num_radar_pts": 0})
    save_tables(root, t)
    out = tmp_path / "out"
    convert("nuscenes", root, out)
    stored = DatasetReader(out, "nuscenes", "train").get(f"nuscenes-{sample_token}")
    for m in stored.sample["media"]:
        img = cams[m["source_camera"]]
        expected = Quaternion(img["cam2ego_rotation"]).transformation_matrix
        expected[:3, 3] = img["cam2ego_translation"]
        np.testing.assert_allclose(m["extrinsics"], expected, atol=1e-9)
    nusc = NuScenes(version="v1.0-mini", dataroot=str(root), verbose=False)
    theirs, ours = devkit_box_views(nusc, sample_token), ours_box_views(stored.sample)
    assert set(ours) == set(theirs) and len(theirs) >= 8
    for key, box in theirs.items():
        np.testing.assert_allclose(ours[key], box, atol=0.02)
    # each real annotation is seen by the camera it was annotated in
    seen = {(a["annotation_id"], v["camera"]) for a in stored.sample["objects"] for v in a["box_2d"]}
    canonical = {c: m["camera"] for m in stored.sample["media"] for c in [m["source_camera"]]}
    for i, ann in enumerate(anns):
        cam = by_image[ann["image_id"]]["file_name"].split("/")[1]
        if ann["center2d"][2] > 1 and 0 < ann["center2d"][0] < 1600 and 0 < ann["center2d"][1] < 900:
            assert (token("real-ann", i), canonical[cam]) in seen
