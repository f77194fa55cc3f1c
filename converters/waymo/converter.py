"""Waymo Open Dataset (perception) frames as 5-camera planning samples, from v1 or v2 files.

Source layouts (reference datasets.md section 3), under `--src`:

    v1: <src>/{training,validation,testing}/segment-<context>_with_camera_labels.tfrecord
        (TFRecords of `waymo.open_dataset.Frame` protos, read without TensorFlow)
    v2: <src>/{training,validation,testing}/<component>/<context>.parquet
        (camera_image, camera_calibration, vehicle_pose; lidar_box, projected_lidar_box,
        camera_box, stats when present)

training, validation and testing become the splits train, val and test. Work unit: one
segment (about 20 s at 10 Hz). One sample per frame picked by `waymo_stride` (every 5th frame
by default, i.e. 2 Hz).

Conventions: the 5 cameras in CameraName order (FRONT, FRONT_LEFT, FRONT_RIGHT, SIDE_LEFT,
SIDE_RIGHT), JPEG bytes as stored. `intrinsics` is K = [[f_u, 0, c_u], [0, f_v, c_v], [0, 0, 1]]
(distortion k1, k2, p1, p2, k3 kept in meta; images are not undistorted). Waymo's camera
frame is x forward, y left, z up and its extrinsic is vehicle_from_camera; the schema's
`extrinsics` is sensor->ego in the OpenCV camera frame (x right, y down, z forward), so
extrinsics = extrinsic @ OPENCV_IN_WAYMO_CAMERA. The ego frame is the Waymo vehicle frame
at the frame's `pose` (x forward, y left, z up); 3D boxes are in it already. Trajectories
come from the frames' vehicle poses (dataengine/trajectory.py), interpolated at exact 0.5 s
offsets from `timestamp_micros`.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from converters.waymo.frames import (
    BOX_TYPES,
    CAMERA_NAMES,
    LOCATION_WORDS,
    WaymoFrame,
    pose_problem,
    sample_key,
    tfrecord_events,
)
from converters.waymo.parquet import parquet_events
from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.geometry import invert
from dataengine.media import check_image_bytes
from dataengine.trajectory import (
    DT,
    PoseTrack,
    clean,
    command_from_future,
    ego_windows,
    planning_question,
    track_motion,
)
from dataengine.waypoints import format_waypoints

SPLIT_DIRS = {"training": "train", "validation": "val", "testing": "test"}
# CameraName -> canonical name, in CameraName order: the media order
CAMERAS = {"FRONT": "front", "FRONT_LEFT": "front_left", "FRONT_RIGHT": "front_right",
           "SIDE_LEFT": "side_left", "SIDE_RIGHT": "side_right"}
CAMERA_ORDER = tuple(CAMERAS)
CAMERA_NUMBERS = {name: number for number, name in CAMERA_NAMES.items()}
CATEGORIES = {number: name.removeprefix("TYPE_").lower() for name, number in BOX_TYPES.items()}
# Columns: the OpenCV camera axes (x right, y down, z forward) in Waymo's camera frame (x forward, y left, z up).
OPENCV_IN_WAYMO_CAMERA = np.array([[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0],
                                   [0.0, 0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class WaymoOptions:
    waymo_stride: int = 5
    """One sample every N frames of a segment (10 Hz): 5 gives 2 Hz, 1 every frame."""
    waymo_format: str = "auto"
    """v1 (TFRecord Frames), v2 (parquet components), or auto (whichever the root holds)."""


class BadFrame(Exception):
    """A frame's content that cannot make a sample; the message is the quarantine reason."""


def find_layouts(root: Path) -> dict[str, list[Path]]:
    """{'v1': [segment files], 'v2': [camera_image files]} found under the official split folders."""
    found: dict[str, list[Path]] = {"v1": [], "v2": []}
    for split_dir in SPLIT_DIRS:
        found["v1"] += sorted((root / split_dir).glob("*.tfrecord"))
        found["v2"] += sorted((root / split_dir / "camera_image").glob("*.parquet"))
    return found


def segment_of(path: Path) -> str:
    """The context name in an official v1 file name (segment-<context>_with_camera_labels.tfrecord)."""
    return path.stem.removeprefix("segment-").removesuffix("_with_camera_labels")


def opencv_extrinsics(vehicle_from_camera) -> list[list[float]]:
    return (np.asarray(vehicle_from_camera, dtype=float).reshape(4, 4) @ OPENCV_IN_WAYMO_CAMERA).tolist()


def intrinsics_matrix(intrinsic) -> list[list[float]]:
    f_u, f_v, c_u, c_v = (float(v) for v in intrinsic[:4])
    return [[f_u, 0.0, c_u], [0.0, f_v, c_v], [0.0, 0.0, 1.0]]


def xyxy(center, size) -> list[float]:
    (cx, cy), (length, width) = center, size
    return [clean(cx - length / 2, 2), clean(cy - width / 2, 2), clean(cx + length / 2, 2), clean(cy + width / 2, 2)]


@register
class WaymoConverter(Converter):
    """Waymo Open Dataset v1/v2 segments: 5 cameras, ego state, 2 s history, 3 s plan, boxes."""

    name = "waymo"
    version = "1.0"
    options_type = WaymoOptions
    cameras = CAMERAS

    def _layout(self) -> tuple[str, list[Path]]:
        opts = self.options
        if opts.waymo_stride < 1:
            raise UsageError(f"--waymo-stride must be at least 1, got {opts.waymo_stride}")
        if opts.waymo_format not in ("auto", "v1", "v2"):
            raise UsageError(f"--waymo-format takes auto, v1 or v2, got {opts.waymo_format!r}")
        if not self.src.is_dir():
            raise UsageError(f"{self.src}: not a directory")
        found = find_layouts(self.src)
        if opts.waymo_format == "auto" and found["v1"] and found["v2"]:
            raise UsageError(f"{self.src} holds both v1 TFRecords and v2 parquet: pass --waymo-format v1 or v2")
        fmt = opts.waymo_format if opts.waymo_format != "auto" else ("v1" if found["v1"] else "v2")
        if not found[fmt]:
            raise UsageError(f"{self.src}: not a Waymo Open Dataset root: expected training/, validation/ or "
                             f"testing/ holding segment-*.tfrecord (v1) or camera_image/*.parquet (v2)")
        return fmt, found[fmt]

    def check_source(self) -> None:
        self._layout()

    def units(self) -> list[Unit]:
        fmt, files = self._layout()
        units, seen = [], {}
        for path in files:
            split_dir = path.parent if fmt == "v1" else path.parent.parent
            segment = segment_of(path) if fmt == "v1" else path.stem
            unit_id = re.sub(r"[^A-Za-z0-9_-]", "_", segment)
            if unit_id in seen:
                raise UsageError(f"segments {seen[unit_id]} and {path} both map to work unit {unit_id}")
            seen[unit_id] = path
            units.append(Unit(id=unit_id, split=SPLIT_DIRS[split_dir.name], payload={
                "format": fmt, "split_dir": split_dir.name, "segment": segment,
                "path": str(path.relative_to(self.src))}))
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        """Frames stream through: a picked frame becomes a sample as soon as the poses of its
        3 s future have been read, so a v1 segment is never held in memory whole."""
        p, stride = unit.payload, self.options.waymo_stride
        if p["format"] == "v1":
            events = tfrecord_events(self.src / p["path"], stride)
        else:
            events = parquet_events(self.src / p["split_dir"], p["segment"], stride)
        track, pending = PoseTrack(), deque()
        for event in events:
            if isinstance(event, Quarantined):
                yield event
                continue
            track.append(event.timestamp_us, event.pose)
            if event.frame is not None:
                pending.append((len(track) - 1, event.frame))
            while pending and track.covers_window(pending[0][0]):
                yield self._record(unit, track, *pending.popleft())
        while pending:
            yield self._record(unit, track, *pending.popleft())

    def _record(self, unit: Unit, track: PoseTrack, i: int, frame: WaymoFrame) -> Record | Quarantined:
        key = sample_key(frame.context, frame.timestamp_us)
        try:
            if frame.problems:
                raise BadFrame("; ".join(frame.problems))
            media, blobs, cameras = _media(frame)
            objects = _objects(frame)
        except BadFrame as exc:
            return Quarantined(key, str(exc))
        return Record(self._sample(unit, track, i, frame, media, objects, cameras), blobs)

    def _sample(self, unit: Unit, track: PoseTrack, i: int, frame: WaymoFrame, media: list[dict],
                objects: list[dict], cameras: dict) -> dict:
        hist_xy, hist_valid, fut_xy, fut_valid = ego_windows(track, i)
        ego = {**track_motion(track, i), "history_xy": hist_xy, "history_valid": hist_valid}
        command = command_from_future(fut_xy, fut_valid)
        location = frame.stats.get("location", "")
        history = [p for p, v in zip(hist_xy, hist_valid) if v]
        return {
            "schema": "sample/1", "id": sample_key(frame.context, frame.timestamp_us), "dataset": "waymo",
            "split": unit.split, "task": "planning.trajectory", "scene_id": f"waymo:{frame.context}",
            "frame_id": f"waymo:{frame.context}:{frame.timestamp_us}", "layout": "multi_view", "media": media,
            "conversations": [
                {"role": "user", "content": planning_question(
                    LOCATION_WORDS.get(location, "an unknown city"), ego, command, history)},
                {"role": "assistant", "content": format_waypoints(fut_xy)},
            ],
            "ego": ego,
            "trajectory": {"frame": "ego_xfwd_yleft", "dt_s": DT, "xy": fut_xy, "valid": fut_valid},
            "command": command,
            "objects": objects,
            "meta": {"segment": frame.context, "timestamp_micros": frame.timestamp_us,
                     "source_format": unit.payload["format"], "frame_index": frame.index,
                     "stride": self.options.waymo_stride, **frame.stats,
                     "world_from_vehicle": np.asarray(frame.pose, dtype=float).reshape(4, 4).tolist(),
                     "cameras": cameras, "ego_motion_source": "vehicle_pose",
                     "future_complete": all(fut_valid)},
        }


def _camera(frame: WaymoFrame, name: str):
    number = CAMERA_NUMBERS[name]
    if number not in frame.shots:
        raise BadFrame(f"{name}: no image")
    if number not in frame.calibrations:
        raise BadFrame(f"{name}: no calibration")
    shot, calib = frame.shots[number], frame.calibrations[number]
    blob, reason = check_image_bytes(shot.jpeg)
    if reason:
        raise BadFrame(f"{name}: {reason}")
    if (blob.width, blob.height) != (calib.width, calib.height):
        raise BadFrame(f"{name}: image is {blob.width}x{blob.height}, calibration says {calib.width}x{calib.height}")
    problem = pose_problem(calib.extrinsic) if len(calib.intrinsic) == 9 else "intrinsic needs 9 values"
    if problem:
        raise BadFrame(f"{name}: calibration {problem}")
    return shot, calib, blob


def _media(frame: WaymoFrame) -> tuple[list[dict], list[bytes], dict]:
    """The 5 cameras in order, and per-camera extras for meta."""
    unknown = sorted(str(c) for c in [*frame.shots, *frame.calibrations] if CAMERA_NAMES.get(c) not in CAMERAS)
    if unknown:
        raise BadFrame(f"unknown camera names {unknown}")
    ego_from_world = invert(np.asarray(frame.pose, dtype=float).reshape(4, 4))
    media, blobs, extras = [], [], {}
    for i, name in enumerate(CAMERA_ORDER):
        shot, calib, blob = _camera(frame, name)
        offset = shot.pose_timestamp - frame.timestamp_us / 1e6 if shot.pose_timestamp > 0 else 0.0
        media.append({
            "member": f"img{i}.{blob.format}", "camera": canonical(CAMERAS, name, "waymo"), "source_camera": name,
            "time_offset_s": clean(offset, 6), "width": blob.width, "height": blob.height,
            "intrinsics": intrinsics_matrix(calib.intrinsic), "extrinsics": opencv_extrinsics(calib.extrinsic),
        })
        blobs.append(blob.data)
        at_capture = None
        if pose_problem(shot.pose) is None:
            moved = ego_from_world @ np.asarray(shot.pose, dtype=float).reshape(4, 4)
            at_capture = [[clean(v, 6) for v in row] for row in moved]
        extras[name] = {"distortion_k1_k2_p1_p2_k3": [float(v) for v in calib.intrinsic[4:9]],
                        "rolling_shutter_direction": int(calib.rolling_shutter_direction),
                        "pose_timestamp": shot.pose_timestamp or None, "vehicle_at_capture": at_capture}
    return media, blobs, extras


def _views(boxes, label: str) -> dict[str, list[dict]]:
    """Image boxes grouped by object id, each view {camera, xyxy}, views in camera order."""
    named = []
    for b in boxes:
        name = CAMERA_NAMES.get(b.camera)
        if name not in CAMERAS:
            raise BadFrame(f"{label} box {b.object_id!r} for unknown camera {b.camera!r}")
        named.append((b.object_id, CAMERA_ORDER.index(name), name, b))
    views: dict[str, list[dict]] = {}
    for object_id, _, name, b in sorted(named, key=lambda t: t[:2]):
        views.setdefault(object_id, []).append({"camera": canonical(CAMERAS, name, "waymo"),
                                                "xyxy": xyxy(b.center, b.size)})
    return views


def _category(type_number: int) -> str:
    if type_number not in CATEGORIES:
        raise BadFrame(f"unknown label type {type_number!r}")
    return CATEGORIES[type_number]


def _objects(frame: WaymoFrame) -> list[dict]:
    """Laser boxes (3D, vehicle frame) with their projections into the cameras; then projections whose
    laser box is absent (label_source laser_projected) and camera-only boxes (label_source camera)."""
    projected = _views(frame.projected_boxes, "projected")
    objects = []
    for b in sorted(frame.laser_boxes, key=lambda b: b.object_id):
        length, width, height = b.size_lwh
        objects.append({
            "category": _category(b.type), "instance_id": f"waymo:{frame.context}:{b.object_id}",
            "label_source": "laser", "num_lidar_points": int(b.num_lidar_points),
            "box_3d": {"center": [clean(v) for v in b.center], "size_wlh": [clean(width), clean(length), clean(height)],
                       "yaw": clean(b.heading)},
            "box_2d": projected.pop(b.object_id, []),
        })
    for source, boxes, views in (("laser_projected", frame.projected_boxes, projected),
                                 ("camera", frame.camera_boxes, _views(frame.camera_boxes, "camera"))):
        types = {b.object_id: b.type for b in boxes}
        objects += [{"category": _category(types[object_id]), "instance_id": f"waymo:{frame.context}:{object_id}",
                     "label_source": source, "box_2d": group} for object_id, group in views.items()]
    return objects
