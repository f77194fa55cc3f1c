"""Waymo converter: TFRecord framing, v1 and v2 layouts, camera and trajectory conventions,
bad input, and the real v1 frame and v2 vehicle_pose file."""
from __future__ import annotations

import hashlib
import json
import math
import struct

import numpy as np
import pytest
from waymo_open_dataset import dataset_pb2

from converters.waymo.converter import OPENCV_IN_WAYMO_CAMERA, WaymoConverter, WaymoOptions
from converters.waymo.fixture import (
    DRIVES,
    RIG,
    calibrations,
    context_name,
    make_waymo_v1,
    make_waymo_v2,
    v1_path,
    waymo_project,
)
from converters.waymo.parquet import vehicle_poses
from converters.waymo.tfrecord import (
    BadTFRecord,
    TFRecord,
    encode_tfrecord,
    masked_crc,
    read_tfrecords,
    write_tfrecords,
)
from dataengine.errors import UsageError
from dataengine.geometry import apply, invert, project
from dataengine.manifest import read_quarantine
from dataengine.reader import DatasetReader
from dataengine.trajectory import PoseTrack, ego_windows
from dataengine.validate import validate_root
from tests.conftest import convert

REAL_CONTEXT = "1024360143612057520_3580_000_3600_000"


def _read_all(out, split: str) -> dict:
    return {s.key: s for s in DatasetReader(out, "waymo", split)}


def _card(out, split: str) -> dict:
    return json.loads((out / "waymo" / split / "card.json").read_text())


@pytest.fixture(scope="module")
def v1_root(tmp_path_factory):
    return make_waymo_v1(tmp_path_factory.mktemp("waymo_v1") / "root")


@pytest.fixture(scope="module")
def v1_shards(v1_root, ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("waymo_v1_shards")
    convert("waymo", v1_root, out, WaymoOptions())
    return out


def _frames(path) -> list[dataset_pb2.Frame]:
    frames = []
    for rec in read_tfrecords(path):
        frames.append(dataset_pb2.Frame.FromString(rec.data))
    return frames


# --- TFRecord framing -------------------------------------------------------------------------

def test_tfrecord_round_trip_and_framing(tmp_path):
    payloads = [b"", b"x", bytes(range(256)) * 300]
    path = write_tfrecords(tmp_path / "a.tfrecord", payloads)
    records = list(read_tfrecords(path))
    assert [r.data for r in records] == payloads and all(isinstance(r, TFRecord) for r in records)
    assert [r.index for r in records] == [0, 1, 2] and records[1].offset == 16
    # the framing itself: uint64 length, masked CRC32C of it, data, masked CRC32C of data
    blob = encode_tfrecord(b"abc")
    assert struct.unpack("<Q", blob[:8])[0] == 3 and blob[12:15] == b"abc"
    assert struct.unpack("<I", blob[8:12])[0] == masked_crc(blob[:8])
    assert struct.unpack("<I", blob[15:])[0] == masked_crc(b"abc")
    # TensorFlow's mask of the CRC-32C check value of b"123456789" (0xE3069283)
    crc = 0xE3069283
    assert masked_crc(b"123456789") == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_tfrecord_bad_crc_and_truncation_are_reported_per_record(tmp_path):
    good = b"".join(encode_tfrecord(p) for p in (b"one", b"two", b"three"))
    data_crc = bytearray(good)
    data_crc[len(encode_tfrecord(b"one")) + 12] ^= 0xFF  # a byte of record 1's data
    (tmp_path / "crc").write_bytes(bytes(data_crc))
    items = list(read_tfrecords(tmp_path / "crc"))
    assert [type(i) for i in items] == [TFRecord, BadTFRecord, TFRecord]
    assert "data CRC mismatch" in items[1].reason and items[2].data == b"three"

    (tmp_path / "trunc").write_bytes(good[:-3])
    items = list(read_tfrecords(tmp_path / "trunc"))
    assert [i.data for i in items[:2]] == [b"one", b"two"]
    assert isinstance(items[2], BadTFRecord) and items[2].reason.startswith("truncated record") and len(items) == 3

    length_crc = bytearray(good)
    length_crc[len(encode_tfrecord(b"one")) + 9] ^= 0x01  # record 1's length CRC
    (tmp_path / "len").write_bytes(bytes(length_crc))
    items = list(read_tfrecords(tmp_path / "len"))
    assert len(items) == 2 and "length CRC mismatch" in items[1].reason and items[1].offset == 19


# --- v1 fixture ---------------------------------------------------------------------------------

def test_v1_fixture_converts_and_validates(v1_shards):
    counts = validate_root(v1_shards)
    per_split = {"train": 24, "val": 12, "test": 8}  # 60, 60, 60 and 40 frames, every 5th
    assert counts == {f"waymo/{s}": n for s, n in per_split.items()}
    for split, n in per_split.items():
        card = _card(v1_shards, split)
        assert card["counts"]["samples"] == n and card["counts"]["quarantined"] == 0
        assert card["converter"]["options"] == {"waymo_stride": 5, "waymo_format": "auto"}
    sample = _read_all(v1_shards, "train")[f"waymo-{context_name(0)}-1550000001999960"].sample
    assert sample["scene_id"] == f"waymo:{context_name(0)}"
    assert sample["frame_id"] == f"waymo:{context_name(0)}:1550000001999960"
    assert [m["camera"] for m in sample["media"]] == ["front", "front_left", "front_right", "side_left", "side_right"]
    assert sample["meta"]["frame_index"] == 20 and sample["layout"] == "multi_view"


def test_v1_images_are_the_protos_bytes(v1_root, v1_shards):
    frames = {f.timestamp_micros: f for f in _frames(v1_path(v1_root, 2))}
    stored = _read_all(v1_shards, "val")
    assert len(stored) == 12
    for s in stored.values():
        frame = frames[s.sample["meta"]["timestamp_micros"]]
        by_name = {dataset_pb2.CameraName.Name.Name(im.name): im for im in frame.images}
        for i, m in enumerate(s.sample["media"]):
            im = by_name[m["source_camera"]]
            assert s.media_bytes(i) == im.image
            assert m["sha1"] == hashlib.sha1(im.image).hexdigest()
            assert m["time_offset_s"] == pytest.approx(im.pose_timestamp - frame.timestamp_micros / 1e6, abs=1e-6)


def test_calibration_projects_as_waymo_does(v1_shards):
    sample = next(iter(_read_all(v1_shards, "test").values())).sample
    expected = calibrations()
    rng = np.random.default_rng(0)
    for m in sample["media"]:
        intrinsic, vehicle_from_camera, width, height = expected[m["source_camera"]]
        assert m["intrinsics"] == [[intrinsic[0], 0.0, intrinsic[2]], [0.0, intrinsic[1], intrinsic[3]], [0, 0, 1]]
        assert (m["width"], m["height"]) == (width, height)
        # points 5-40 m along directions inside the camera's view, in the vehicle frame
        dirs = np.c_[np.ones(20), rng.uniform(-0.4, 0.4, 20), rng.uniform(-0.3, 0.3, 20)]
        points = apply(vehicle_from_camera, dirs * rng.uniform(5, 40, (20, 1)))
        waymo_uv, depth = waymo_project(intrinsic, vehicle_from_camera, points, distort=False)
        cam = apply(invert(np.array(m["extrinsics"])), points)
        np.testing.assert_allclose(project(cam, m["intrinsics"]), waymo_uv, atol=1e-6)
        np.testing.assert_allclose(cam[:, 2], depth, atol=1e-9)  # OpenCV z is Waymo's x (forward)
        assert m["extrinsics"] == (vehicle_from_camera @ OPENCV_IN_WAYMO_CAMERA).tolist()
        meta = sample["meta"]["cameras"][m["source_camera"]]
        assert meta["distortion_k1_k2_p1_p2_k3"] == list(intrinsic[4:9])


def _expected_offset(drive, t0: float, tau: float) -> tuple[float, float]:
    """Closed-form displacement after tau seconds, in the vehicle frame at t0."""
    if drive.yaw_rate:
        r = drive.speed / drive.yaw_rate
        return r * math.sin(drive.yaw_rate * tau), r * (1 - math.cos(drive.yaw_rate * tau))
    v0 = drive.speed + drive.accel * t0
    return v0 * tau + drive.accel * tau * tau / 2, 0.0


def test_trajectories_resample_10hz_to_2hz_exactly(v1_shards):
    """Every window point against the closed form of the fixture's motion, validity from the
    segment's time span, and ego speed/accel/yaw rate in the interior."""
    checked = 0
    for split in ("train", "val", "test"):
        for s in _read_all(v1_shards, split).values():
            sample, meta = s.sample, s.sample["meta"]
            index = next(i for i in range(len(DRIVES)) if context_name(i) == meta["segment"])
            drive = DRIVES[index]
            t0 = (meta["timestamp_micros"] - 1_550_000_000_000_000 - 100_000_000 * index) / 1e6
            span = (drive.frames - 1) * 0.1
            points = [(0.5 * (j + 1), p, v) for j, (p, v) in
                      enumerate(zip(sample["trajectory"]["xy"], sample["trajectory"]["valid"]))]
            points += [(-0.5 * (4 - j), p, v) for j, (p, v) in
                       enumerate(zip(sample["ego"]["history_xy"], sample["ego"]["history_valid"]))]
            for tau, xy, valid in points:
                assert valid == (-0.011 <= t0 + tau <= span + 0.011), (meta["frame_index"], tau)
                if valid:
                    np.testing.assert_allclose(xy, _expected_offset(drive, t0, tau), atol=0.005)
                    checked += 1
            if 2 <= meta["frame_index"] <= drive.frames - 3:
                ego = sample["ego"]
                assert ego["speed_mps"] == pytest.approx(drive.speed + drive.accel * t0, abs=0.01)
                assert ego["accel_mps2"] == pytest.approx(drive.accel, abs=0.02)
                assert ego["yaw_rate_rps"] == pytest.approx(drive.yaw_rate, abs=0.002)
            if sample["trajectory"]["valid"][-1]:
                want = {0.16: "turn_left", -0.16: "turn_right", 0.0: "go_straight"}[drive.yaw_rate]
                assert sample["command"] == want
    assert checked > 300


def test_v1_frame_poses_labels_and_location_are_the_protos(v1_root, v1_shards):
    """Fixture twin of test_real_frame's pose, label and location checks: world_from_vehicle is
    the frame pose; vehicle_at_capture is where the vehicle was when each camera fired (the
    fixture's cameras fire 22-72 ms late, so it is the closed-form motion over that delay); one
    laser object per laser label holding every projected label, one camera object per camera
    label id holding every camera label; the location code named in the prompt."""
    words = {"location_sf": "San Francisco", "location_phx": "Phoenix"}  # Waymo's stats.location codes
    checked = 0
    for index, split in ((1, "train"), (2, "val")):
        drive = DRIVES[index]
        frames = {f.timestamp_micros: f for f in _frames(v1_path(v1_root, index))}
        for s in _read_all(v1_shards, split).values():
            sample, meta = s.sample, s.sample["meta"]
            if meta["segment"] != context_name(index):
                continue
            frame = frames[meta["timestamp_micros"]]
            assert meta["world_from_vehicle"] == np.array(frame.pose.transform).reshape(4, 4).tolist()
            t0 = (meta["timestamp_micros"] - 1_550_000_000_000_000 - 100_000_000 * index) / 1e6
            for m in sample["media"]:
                at_capture = np.array(meta["cameras"][m["source_camera"]]["vehicle_at_capture"])
                delay = RIG[m["source_camera"]][7]
                np.testing.assert_allclose(at_capture[:2, 3], _expected_offset(drive, t0, delay), atol=1e-4)
                assert math.atan2(at_capture[1, 0], at_capture[0, 0]) == pytest.approx(drive.yaw_rate * delay, abs=1e-5)
            laser = [o for o in sample["objects"] if o["label_source"] == "laser"]
            camera = [o for o in sample["objects"] if o["label_source"] == "camera"]
            assert len(laser) == len(frame.laser_labels) > 0
            assert sum(len(o["box_2d"]) for o in laser) == sum(len(g.labels) for g in frame.projected_lidar_labels)
            assert len(camera) == len({label.id for g in frame.camera_labels for label in g.labels}) > 0
            assert sum(len(o["box_2d"]) for o in camera) == sum(len(g.labels) for g in frame.camera_labels)
            assert meta["location"] == drive.location and words[drive.location] in sample["conversations"][0]["content"]
            checked += 1
    assert checked == 24  # 12 frames of each segment (60 frames, every 5th)


def test_boxes_are_in_the_ego_frame(v1_shards):
    """Objects are fixed in the world: box centres mapped through meta.world_from_vehicle agree
    across every frame of a segment; 2D boxes name canonical cameras."""
    world: dict[str, list] = {}
    categories = set()
    for s in _read_all(v1_shards, "train").values():
        pose = np.array(s.sample["meta"]["world_from_vehicle"])
        for obj in s.sample["objects"]:
            categories.add((obj["label_source"], obj["category"]))
            if "box_3d" in obj:
                world.setdefault(obj["instance_id"], []).append(apply(pose, np.array([obj["box_3d"]["center"]]))[0])
            assert all(v["camera"] in ("front", "front_left", "front_right", "side_left", "side_right")
                       for v in obj["box_2d"])
    assert len(world) == 12  # 6 objects beside each of the 2 training routes
    for centres in world.values():
        assert np.ptp(np.array(centres), axis=0).max() < 1e-3
    assert {("laser", c) for c in ("vehicle", "pedestrian", "sign", "cyclist")} <= categories
    assert ("camera", "pedestrian") in categories
    assert not any(s.sample["objects"] for s in _read_all(v1_shards, "test").values())  # unlabelled split


# --- v2 layout -----------------------------------------------------------------------------------

def _comparable(stored) -> dict:
    out = {}
    for key, s in stored.items():
        sample = json.loads(json.dumps(s.sample))
        sample["meta"].pop("source_format")
        out[key] = (sample, [s.media_bytes(i) for i in range(len(sample["media"]))])
    return out


def test_v2_layout_gives_the_same_samples(v1_shards, ray_session, tmp_path):
    root = make_waymo_v2(tmp_path / "v2")
    out = tmp_path / "shards"
    convert("waymo", root, out)
    validate_root(out)
    for split in ("train", "val", "test"):
        v2 = _read_all(out, split)
        assert {s.sample["meta"]["source_format"] for s in v2.values()} == {"v2"}
        assert _comparable(v2) == _comparable(_read_all(v1_shards, split))


def test_v2_camera_name_as_string(v1_shards, tmp_path):
    root = make_waymo_v2(tmp_path / "v2s", camera_names="string", segments=(1,))
    import pyarrow.parquet as pq
    assert pq.read_schema(root / "training" / "camera_image" / f"{context_name(1)}.parquet").field(
        "key.camera_name").type == "string"
    converter = WaymoConverter(root)
    (unit,) = converter.units()
    records = list(converter.convert_unit(unit))
    v1 = _read_all(v1_shards, "train")
    assert len(records) == 12
    for r in records:
        stored = v1[r.sample["id"]]
        assert r.media == [stored.media_bytes(i) for i in range(5)]
        assert r.sample["trajectory"] == stored.sample["trajectory"] and r.sample["objects"] == stored.sample["objects"]
        assert [m["extrinsics"] for m in r.sample["media"]] == [m["extrinsics"] for m in stored.sample["media"]]


# --- bad input -------------------------------------------------------------------------------------

def _bad_root(v1_root, tmp_path):
    """Four 12-frame segments, each with one defect, frames renamed so keys stay unique."""
    frames = _frames(v1_path(v1_root, 0))[:12]

    def payloads(name: str) -> list[bytes]:
        out = []
        for f in frames:
            g = dataset_pb2.Frame()
            g.CopyFrom(f)
            g.context.name = name
            out.append(g.SerializeToString(deterministic=True))
        return out

    split = tmp_path / "root" / "training"
    split.mkdir(parents=True)
    records = {name: [encode_tfrecord(p) for p in payloads(name)] for name in ("crc", "trunc", "proto", "lencrc")}
    crc = records["crc"]
    crc[3] = crc[3][:40] + bytes([crc[3][40] ^ 0xFF]) + crc[3][41:]
    records["trunc"][-1] = records["trunc"][-1][:-100]
    records["proto"][5] = encode_tfrecord(b"\x0a\xff\xff\xff\xff\xff")  # length-delimited field past the end
    records["proto"][7] = encode_tfrecord(b"")  # parses as an empty Frame: no pose, no cameras
    lencrc = records["lencrc"]
    lencrc[6] = lencrc[6][:8] + bytes([lencrc[6][8] ^ 0x01]) + lencrc[6][9:]
    for name, recs in records.items():
        (split / f"segment-{name}_with_camera_labels.tfrecord").write_bytes(b"".join(recs))
    return tmp_path / "root", [f.timestamp_micros for f in frames], records


def test_bad_records_are_quarantined_and_counted(v1_root, ray_session, tmp_path):
    root, stamps, records = _bad_root(v1_root, tmp_path)
    out = tmp_path / "out"
    convert("waymo", root, out, WaymoOptions(waymo_stride=1))
    validate_root(out)
    card = _card(out, "train")
    quarantine = read_quarantine(out / "waymo" / "train" / "quarantine.jsonl")
    reasons = {(q["unit"], q["record_id"]): q["reason"] for q in quarantine}
    assert len(reasons) == len(quarantine) == 5

    def rid(name: str, k: int) -> tuple[str, str]:
        return name, f"segment-{name}_with_camera_labels.tfrecord#record{k}@{sum(map(len, records[name][:k]))}"

    assert reasons[rid("crc", 3)].startswith("data CRC mismatch")
    assert reasons[rid("trunc", 11)].startswith("truncated record")
    assert reasons[rid("lencrc", 6)] == "length CRC mismatch: the rest of the file cannot be framed"
    assert reasons[("proto", "segment-proto_with_camera_labels.tfrecord#record5")].startswith("not a Frame proto")
    assert reasons[("proto", "segment-proto_with_camera_labels.tfrecord#record7")] == "pose has 0 values, not 16"
    keys = set(_read_all(out, "train"))
    assert keys == ({f"waymo-crc-{t}" for i, t in enumerate(stamps) if i != 3}
                    | {f"waymo-trunc-{t}" for t in stamps[:11]}
                    | {f"waymo-proto-{t}" for i, t in enumerate(stamps) if i not in (5, 7)}
                    | {f"waymo-lencrc-{t}" for t in stamps[:6]})
    # records in = written + quarantined (the length-CRC file cannot be framed past record 6)
    assert card["counts"]["records_in"] == 12 + 12 + 12 + 7 == card["counts"]["samples"] + 5


def test_frame_content_problems_are_quarantined(v1_root, tmp_path):
    """A picked frame missing a camera or with a broken JPEG becomes one quarantine record;
    its pose still serves its neighbours."""
    frames = _frames(v1_path(v1_root, 2))[:10]
    del frames[0].images[4]
    frames[5].images[0].image = frames[5].images[0].image[:-50]
    split = tmp_path / "root" / "validation"
    write_tfrecords(split / "segment-x_with_camera_labels.tfrecord", (f.SerializeToString() for f in frames))
    converter = WaymoConverter(tmp_path / "root", WaymoOptions(waymo_stride=5))
    (unit,) = converter.units()
    items = list(converter.convert_unit(unit))
    assert len(items) == 2 and all(not hasattr(i, "sample") for i in items)
    assert items[0].reason == "SIDE_RIGHT: no image" and items[0].record_id.endswith(str(frames[0].timestamp_micros))
    assert items[1].reason == "FRONT: truncated JPEG (no end-of-image marker)"


@pytest.mark.parametrize("make, options, message", [
    (lambda p: p.mkdir(), WaymoOptions(), "not a Waymo Open Dataset root"),
    (lambda p: (p / "training").mkdir(parents=True), WaymoOptions(), "not a Waymo Open Dataset root"),
    (lambda p: (p / "v1.0-mini").mkdir(parents=True), WaymoOptions(), "not a Waymo Open Dataset root"),
    (lambda p: p.write_text("x"), WaymoOptions(), "not a directory"),
    (lambda p: make_waymo_v1(p, segments=(3,)), WaymoOptions(waymo_format="v2"), "not a Waymo Open Dataset root"),
    (lambda p: make_waymo_v1(p, segments=(3,)), WaymoOptions(waymo_stride=0), "--waymo-stride"),
    (lambda p: make_waymo_v1(p, segments=(3,)), WaymoOptions(waymo_format="v3"), "--waymo-format"),
])
def test_not_a_waymo_root_is_a_usage_error(tmp_path, make, options, message):
    from dataengine.job import JobConfig, run_job

    src, out = tmp_path / "src", tmp_path / "out"
    make(src)
    with pytest.raises(UsageError, match=message):
        run_job(JobConfig(dataset="waymo", src=src, out=out, options=options, progress=False))
    assert not out.exists()


def test_both_layouts_need_a_format_choice(v1_root, tmp_path):
    root = make_waymo_v2(tmp_path / "both", segments=(3,))
    make_waymo_v1(root, segments=(3,))
    with pytest.raises(UsageError, match="pass --waymo-format v1 or v2"):
        WaymoConverter(root).check_source()
    assert {u.payload["format"] for u in WaymoConverter(root, WaymoOptions(waymo_format="v2")).units()} == {"v2"}


def test_cli_exits_2_on_a_bad_root(tmp_path, capsys):
    from dataengine.cli import main

    (tmp_path / "src").mkdir()
    assert main(["convert", "waymo", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")]) == 2
    assert "not a Waymo Open Dataset root" in capsys.readouterr().err


# --- real samples ------------------------------------------------------------------------------------

def test_real_frame(real_samples, ray_session, tmp_path):
    path = real_samples / "waymo" / "pvps_data_one_frame.tfrecord"
    (frame_rec,) = list(read_tfrecords(path))
    frame = dataset_pb2.Frame.FromString(frame_rec.data)
    root = tmp_path / "root"
    (root / "training").mkdir(parents=True)
    (root / "training" / f"segment-{REAL_CONTEXT}_with_camera_labels.tfrecord").symlink_to(path)
    out = tmp_path / "out"
    convert("waymo", root, out, WaymoOptions(waymo_stride=1))
    assert validate_root(out) == {"waymo/train": 1}
    (s,) = _read_all(out, "train").values()
    sample = s.sample
    assert sample["id"] == f"waymo-{REAL_CONTEXT}-{frame.timestamp_micros}"
    assert sample["scene_id"] == f"waymo:{REAL_CONTEXT}"
    images = {dataset_pb2.CameraName.Name.Name(im.name): im for im in frame.images}
    calibs = {dataset_pb2.CameraName.Name.Name(c.name): c for c in frame.context.camera_calibrations}
    for i, m in enumerate(sample["media"]):
        im, c = images[m["source_camera"]], calibs[m["source_camera"]]
        assert hashlib.sha1(s.media_bytes(i)).hexdigest() == hashlib.sha1(im.image).hexdigest() == m["sha1"]
        assert (m["width"], m["height"]) == (c.width, c.height) == (1920, 1280 if i < 3 else 886)
        f_u, f_v, c_u, c_v = c.intrinsic[:4]
        assert m["intrinsics"] == [[f_u, 0.0, c_u], [0.0, f_v, c_v], [0.0, 0.0, 1.0]]
        vehicle_from_camera = np.array(c.extrinsic.transform).reshape(4, 4)
        points = apply(vehicle_from_camera, np.array([[20.0, 3.0, -1.0], [8.0, -2.0, 0.5], [35.0, 0.0, 2.0]]))
        waymo_uv, _ = waymo_project(list(c.intrinsic), vehicle_from_camera, points, distort=False)
        ours = project(apply(invert(np.array(m["extrinsics"])), points), m["intrinsics"])
        np.testing.assert_allclose(ours, waymo_uv, atol=1e-6)
        extra = sample["meta"]["cameras"][m["source_camera"]]
        assert extra["distortion_k1_k2_p1_p2_k3"] == list(c.intrinsic[4:9])
        moved = invert(np.array(frame.pose.transform).reshape(4, 4)) @ np.array(im.pose.transform).reshape(4, 4)
        np.testing.assert_allclose(extra["vehicle_at_capture"], moved, atol=2e-6)
        assert m["time_offset_s"] == pytest.approx(im.pose_timestamp - frame.timestamp_micros / 1e6, abs=1e-6)
    assert [m["source_camera"] for m in sample["media"]] == ["FRONT", "FRONT_LEFT", "FRONT_RIGHT", "SIDE_LEFT",
                                                             "SIDE_RIGHT"]
    assert sample["meta"]["world_from_vehicle"] == np.array(frame.pose.transform).reshape(4, 4).tolist()
    assert sample["meta"]["location"] == "location_sf" and "San Francisco" in sample["conversations"][0]["content"]
    laser = [o for o in sample["objects"] if o["label_source"] == "laser"]
    assert len(laser) == len(frame.laser_labels) == 75
    assert sum(len(o["box_2d"]) for o in laser) == sum(len(g.labels) for g in frame.projected_lidar_labels)
    assert sum(o["label_source"] == "camera" for o in sample["objects"]) == 66
    assert not any(sample["trajectory"]["valid"]) and not any(sample["ego"]["history_valid"])


def test_real_v2_vehicle_pose_reads_into_2hz_windows(real_samples):
    segment = "10023947602400723454_1120_000_1140_000"
    poses, problems = vehicle_poses(real_samples / "waymo" / "v2" / "vehicle_pose" / f"{segment}.parquet", segment)
    assert len(poses) == 199 and problems == {}
    track = PoseTrack()
    for ts in sorted(poses):
        track.append(ts, poses[ts])
    complete = [i for i in range(len(track)) if all(ego_windows(track, i)[1]) and all(ego_windows(track, i)[3])]
    assert complete == list(range(20, 169))  # 2 s of past and 3 s of future inside 19.8 s
    for i in (20, 100, 168):
        hist, _, fut, _ = ego_windows(track, i)
        ego_from_world = invert(track.poses[i])
        direct = [apply(ego_from_world, track.poses[i + 5 * k][None, :3, 3])[0, :2] for k in (-4, -3, -2, -1)]
        np.testing.assert_allclose(hist, direct, atol=2e-3)
        direct = [apply(ego_from_world, track.poses[i + 5 * k][None, :3, 3])[0, :2] for k in range(1, 7)]
        np.testing.assert_allclose(fut, direct, atol=2e-3)
    _, hist_valid, _, fut_valid = ego_windows(track, 0)
    assert hist_valid == [False] * 4 and fut_valid == [True] * 6
    _, hist_valid, _, fut_valid = ego_windows(track, 198)
    assert hist_valid == [True] * 4 and fut_valid == [False] * 6


def test_pose_track_interpolates_bridges_one_lost_frame_and_no_more():
    track = PoseTrack()
    for k in [0, 1, 2, 3, 4, 5, 7, 10, 11, 12, 13]:  # 10 Hz, frame 6 lost, frames 8 and 9 lost
        pose = np.eye(4)
        pose[0, 3] = 10.0 * k / 10  # 10 m/s along x
        track.append(100_000 * k, pose)
    assert track.position_at(650_000)[0] == pytest.approx(6.5)  # across the 0.2 s gap
    assert track.position_at(850_000) is None  # across the 0.3 s gap
    assert track.position_at(1_305_000)[0] == pytest.approx(13.0)  # 5 ms past the end: jitter, snaps
    assert track.position_at(1_320_000) is None and track.position_at(-20_000) is None
    with pytest.raises(ValueError):
        track.append(1_300_000, np.eye(4))
    hist, hist_valid, fut, fut_valid = ego_windows(track, 5)  # t = 0.5 s
    assert hist_valid == [False, False, False, True] and hist[:3] == [[-5.0, 0.0]] * 3  # padded from the present
    assert fut_valid == [True, False, False, False, False, False] and fut[1:] == [[5.0, 0.0]] * 5
