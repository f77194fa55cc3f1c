"""Waymo frames as one in-memory shape, whichever layout they were read from.

Both readers (v1 `Frame` protos in TFRecords, v2 parquet components) emit a stream of
`PoseEvent`s, one per frame in time order: every frame's vehicle pose (the trajectory needs
them all, at 10 Hz) and, for the frames the stride picks, a `WaymoFrame` with the cameras,
calibrations and labels. Readers copy what the source holds and note what they could not
make sense of in `WaymoFrame.problems`; the converter decides (and quarantines).

Field meanings follow `waymo-research/waymo-open-dataset:src/waymo_open_dataset/dataset.proto`
and `label.proto`: transforms are row-major 4x4; `CameraCalibration.extrinsic` is
vehicle_from_camera in Waymo's camera frame (x forward, y left, z up); `intrinsic` is
[f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3]; a 2D box's `length` spans image x and `width`
image y; a 3D box is centred, `length` along its heading, in the frame's vehicle frame.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from google.protobuf.message import DecodeError
from waymo_open_dataset import dataset_pb2, label_pb2

from converters.waymo.tfrecord import BadTFRecord, read_tfrecords
from dataengine.converter import Quarantined

CAMERA_NAMES = {v: k for k, v in dataset_pb2.CameraName.Name.items() if v != 0}  # 1 -> "FRONT", ...
BOX_TYPES = dict(label_pb2.Label.Type.items())  # "TYPE_VEHICLE" -> 1, ...
LOCATION_WORDS = {"location_sf": "San Francisco", "location_phx": "Phoenix"}


@dataclass(frozen=True)
class Calibration:
    intrinsic: tuple[float, ...]      # f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3
    extrinsic: tuple[float, ...]      # vehicle_from_camera, row-major 4x4, Waymo camera axes
    width: int
    height: int
    rolling_shutter_direction: int


@dataclass(frozen=True)
class Shot:
    """One camera's image of the frame and the vehicle pose when it was taken."""

    jpeg: bytes
    pose: tuple[float, ...]           # world_from_vehicle at pose_timestamp, row-major 4x4
    pose_timestamp: float             # seconds


@dataclass(frozen=True)
class Box3d:
    object_id: str
    type: int
    center: tuple[float, float, float]
    size_lwh: tuple[float, float, float]
    heading: float
    num_lidar_points: int


@dataclass(frozen=True)
class Box2d:
    object_id: str                    # laser object id for projected boxes, camera object id otherwise
    camera: int | str
    type: int
    center: tuple[float, float]
    size: tuple[float, float]         # (length along image x, width along image y)


@dataclass
class WaymoFrame:
    context: str
    timestamp_us: int
    pose: tuple[float, ...]
    index: int                        # v1: record index in the file; v2: rank among camera_image frames
    shots: dict[int | str, Shot] = field(default_factory=dict)
    calibrations: dict[int | str, Calibration] = field(default_factory=dict)
    laser_boxes: list[Box3d] = field(default_factory=list)
    projected_boxes: list[Box2d] = field(default_factory=list)
    camera_boxes: list[Box2d] = field(default_factory=list)
    stats: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PoseEvent:
    """One frame in time order: its pose, and its content when the stride picked it."""

    timestamp_us: int
    pose: np.ndarray
    frame: WaymoFrame | None


def sample_key(context: str, timestamp_us: int) -> str:
    """`waymo-<context>-<timestamp>`; a context name outside [a-z0-9_-] is replaced by its sha1."""
    name = context.lower()
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        name = hashlib.sha1(context.encode()).hexdigest()[:20]
    return f"waymo-{name}-{timestamp_us}"


def camera_id(value: int | str) -> int | str:
    """`key.camera_name` is int8 in the official files and a string ('FRONT') in some; both
    become the CameraName number. An unknown name is returned as given, for the converter to report."""
    if isinstance(value, str):
        return dataset_pb2.CameraName.Name.Value(value) if value in dataset_pb2.CameraName.Name.keys() else value
    return int(value)


def pose_problem(transform) -> str | None:
    """Why a row-major 4x4 is not a rigid transform, or None."""
    values = list(transform)
    if len(values) != 16:
        return f"pose has {len(values)} values, not 16"
    if not all(math.isfinite(v) for v in values):
        return "pose has non-finite values"
    m = np.asarray(values, dtype=float).reshape(4, 4)
    if not np.allclose(m[3], [0, 0, 0, 1]) or not np.allclose(m[:3, :3].T @ m[:3, :3], np.eye(3), atol=1e-3):
        return "pose is not a rigid transform"
    return None


def parse_frame(data: bytes) -> dataset_pb2.Frame | str:
    """The Frame proto, or why the bytes are not one."""
    frame = dataset_pb2.Frame()
    try:
        frame.ParseFromString(data)
    except DecodeError as exc:
        return f"not a Frame proto ({exc})"
    return frame


def _box2d(label, camera: int | str, object_id: str) -> Box2d:
    b = label.box
    return Box2d(object_id, camera, int(label.type), (b.center_x, b.center_y), (b.length, b.width))


def _projected_owner(label_id: str) -> tuple[str, str] | None:
    """v1 projected labels are named '<laser object id>_<CAMERA>'."""
    for name in sorted(CAMERA_NAMES.values(), key=len, reverse=True):
        if label_id.endswith("_" + name):
            return label_id[: -len(name) - 1], name
    return None


def frame_from_proto(frame: dataset_pb2.Frame, index: int) -> WaymoFrame:
    """Copy what the converter uses out of a v1 Frame proto (record `index` of its file)."""
    out = WaymoFrame(frame.context.name, frame.timestamp_micros, tuple(frame.pose.transform), index)
    for image in frame.images:
        if image.name in out.shots:
            out.problems.append(f"two images for camera {image.name}")
        out.shots[image.name] = Shot(image.image, tuple(image.pose.transform), image.pose_timestamp)
    for c in frame.context.camera_calibrations:
        out.calibrations[c.name] = Calibration(tuple(c.intrinsic), tuple(c.extrinsic.transform), c.width, c.height,
                                               c.rolling_shutter_direction)
    for label in frame.laser_labels:
        b = label.box
        out.laser_boxes.append(Box3d(label.id, int(label.type), (b.center_x, b.center_y, b.center_z),
                                     (b.length, b.width, b.height), b.heading, label.num_lidar_points_in_box))
    for group in frame.projected_lidar_labels:
        for label in group.labels:
            owner = _projected_owner(label.id)
            if owner is None or owner[1] != CAMERA_NAMES.get(group.name):
                out.problems.append(f"projected label {label.id!r} does not name its camera {group.name}")
                continue
            out.projected_boxes.append(_box2d(label, group.name, owner[0]))
    for group in frame.camera_labels:
        out.camera_boxes.extend(_box2d(label, group.name, label.id) for label in group.labels)
    s = frame.context.stats
    out.stats = {"location": s.location, "time_of_day": s.time_of_day, "weather": s.weather}
    return out


def tfrecord_events(path: Path, stride: int) -> Iterator[PoseEvent | Quarantined]:
    """A v1 segment file as pose events; record i carries its frame when i % stride == 0.

    Records that cannot be framed or parsed, and frames whose pose is unusable, are
    quarantined whatever the stride: their pose is missing from their neighbours' windows.
    """
    context, last_ts = None, None
    for rec in read_tfrecords(path):
        where = f"{path.name}#record{rec.index}"
        if isinstance(rec, BadTFRecord):
            yield Quarantined(f"{where}@{rec.offset}", rec.reason)
            continue
        proto = parse_frame(rec.data)
        if isinstance(proto, str):
            yield Quarantined(where, proto)
            continue
        key = sample_key(proto.context.name, proto.timestamp_micros) if proto.context.name else where
        problem = pose_problem(proto.pose.transform)
        if problem is None and context is not None and proto.context.name != context:
            problem = f"frame of segment {proto.context.name!r} in the file of segment {context!r}"
        if problem is None and last_ts is not None and proto.timestamp_micros <= last_ts:
            problem = f"timestamp {proto.timestamp_micros} is not after the previous frame's {last_ts}"
        if problem:
            yield Quarantined(key, problem)
            continue
        context, last_ts = proto.context.name, proto.timestamp_micros
        pose = np.asarray(proto.pose.transform, dtype=float).reshape(4, 4)
        picked = frame_from_proto(proto, rec.index) if rec.index % stride == 0 else None
        yield PoseEvent(proto.timestamp_micros, pose, picked)
