"""Waymo v2 parquet components, read with pyarrow and joined on their keys into pose events.

Layout (`waymo-research/waymo-open-dataset:src/waymo_open_dataset/v2/__init__.py`,
`tutorial/tutorial_v2.ipynb`): `<split dir>/<component>/<context name>.parquet`, one file per
segment and component. Key columns are `key.segment_context_name`, `key.frame_timestamp_micros`,
`key.camera_name` (int8 officially, a string such as 'FRONT' in some files: both are read),
`key.laser_object_id`, `key.camera_object_id`; values are `[<Component>].<field path>`. The
names below are those of the official component definitions (`v2/perception/camera_image.py`,
`context.py`, `pose.py`, `box.py`). Required: camera_image, camera_calibration, vehicle_pose;
read when present: lidar_box, projected_lidar_box, camera_box, stats. Rows are selected by
`key.segment_context_name` equal to the file's stem, as the official layout names each file
after its segment.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from converters.waymo.frames import (
    Box2d,
    Box3d,
    Calibration,
    PoseEvent,
    Shot,
    WaymoFrame,
    camera_id,
    pose_problem,
    sample_key,
)
from dataengine.converter import Quarantined

SEG, TS, CAM = "key.segment_context_name", "key.frame_timestamp_micros", "key.camera_name"
LASER_ID, CAMERA_OBJECT_ID = "key.laser_object_id", "key.camera_object_id"

_IMG, _CAL = "[CameraImageComponent].", "[CameraCalibrationComponent]."
IMAGE_COLUMNS = {"ts": TS, "camera": CAM, "image": _IMG + "image", "pose": _IMG + "pose.transform",
                 "pose_timestamp": _IMG + "pose_timestamp"}
CALIBRATION_COLUMNS = {"camera": CAM, **{k: f"{_CAL}intrinsic.{k}" for k in
                                         ("f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3")},
                       "extrinsic": _CAL + "extrinsic.transform", "width": _CAL + "width",
                       "height": _CAL + "height", "rolling_shutter_direction": _CAL + "rolling_shutter_direction"}
POSE_COLUMNS = {"ts": TS, "pose": "[VehiclePoseComponent].world_from_vehicle.transform"}
_LB = "[LiDARBoxComponent]."
LIDAR_BOX_COLUMNS = {"ts": TS, "id": LASER_ID, "type": _LB + "type", "points": _LB + "num_lidar_points_in_box",
                     **{f"{a}_{x}": f"{_LB}box.{a}.{x}" for a in ("center", "size") for x in "xyz"},
                     "heading": _LB + "box.heading"}
_PB, _CB = "[ProjectedLiDARBoxComponent].", "[CameraBoxComponent]."
PROJECTED_BOX_COLUMNS = {"ts": TS, "camera": CAM, "id": LASER_ID, "type": _PB + "type",
                         **{f"{a}_{x}": f"{_PB}box.{a}.{x}" for a in ("center", "size") for x in "xy"}}
CAMERA_BOX_COLUMNS = {"ts": TS, "camera": CAM, "id": CAMERA_OBJECT_ID, "type": _CB + "type",
                      **{f"{a}_{x}": f"{_CB}box.{a}.{x}" for a in ("center", "size") for x in "xy"}}
STATS_COLUMNS = {"ts": TS, **{k: f"[StatsComponent].{k}" for k in ("location", "time_of_day", "weather")}}


class ComponentError(Exception):
    """A component file that is missing, unreadable or lacks a column: the whole segment is affected."""


def component_path(split_dir: Path, component: str, segment: str) -> Path:
    return Path(split_dir) / component / f"{segment}.parquet"


def read_rows(path: Path, segment: str, columns: dict[str, str], timestamps=None) -> list[dict]:
    """Rows of one component file for `segment` (and `timestamps`), columns renamed to the dict's keys."""
    if not path.is_file():
        raise ComponentError(f"missing component {path.parent.name}/{path.name}")
    try:
        names = pq.read_schema(path).names
        missing = [c for c in [SEG, *columns.values()] if c not in names]
        if missing:
            raise ComponentError(f"{path.parent.name}/{path.name} lacks columns {missing}")
        filters = [(SEG, "=", segment)]
        if timestamps is not None:
            if not timestamps:
                return []
            filters.append((TS, "in", sorted(timestamps)))
        table = pq.read_table(path, columns=list(columns.values()), filters=filters)
    except (pa.ArrowException, OSError) as exc:
        raise ComponentError(f"unreadable component {path.parent.name}/{path.name} ({exc})") from None
    return table.rename_columns(list(columns)).to_pylist()


def vehicle_poses(path: Path, segment: str) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """world_from_vehicle per frame timestamp, and the timestamps whose pose is unusable, with why."""
    poses, problems, seen = {}, {}, set()
    for row in read_rows(path, segment, POSE_COLUMNS):
        ts = row["ts"]
        problem = "two vehicle_pose rows for this frame" if ts in seen else pose_problem(row["pose"] or [])
        seen.add(ts)
        if problem:
            problems[ts] = problem
            poses.pop(ts, None)
        else:
            poses[ts] = np.asarray(row["pose"], dtype=float).reshape(4, 4)
    return poses, problems


def _calibrations(path: Path, segment: str) -> tuple[dict, list[str]]:
    calibrations, problems = {}, []
    for r in read_rows(path, segment, CALIBRATION_COLUMNS):
        cam = camera_id(r["camera"])
        if cam in calibrations:
            problems.append(f"two camera_calibration rows for camera {r['camera']}")
        intrinsic = tuple(r[k] for k in ("f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3"))
        calibrations[cam] = Calibration(intrinsic, tuple(r["extrinsic"] or ()), r["width"], r["height"],
                                        r["rolling_shutter_direction"])
    return calibrations, problems


def _box2d(r: dict) -> Box2d:
    return Box2d(r["id"], camera_id(r["camera"]), r["type"], (r["center_x"], r["center_y"]),
                 (r["size_x"], r["size_y"]))


def _add_labels(frames: dict[int, WaymoFrame], split_dir: Path, segment: str) -> None:
    """The optional box and stats components, for the chosen frames."""
    def rows(component: str, columns: dict[str, str]) -> list[dict]:
        path = component_path(split_dir, component, segment)
        return read_rows(path, segment, columns, set(frames)) if path.exists() else []

    for r in rows("lidar_box", LIDAR_BOX_COLUMNS):
        frames[r["ts"]].laser_boxes.append(Box3d(
            r["id"], r["type"], (r["center_x"], r["center_y"], r["center_z"]),
            (r["size_x"], r["size_y"], r["size_z"]), r["heading"], r["points"]))
    for r in rows("projected_lidar_box", PROJECTED_BOX_COLUMNS):
        frames[r["ts"]].projected_boxes.append(_box2d(r))
    for r in rows("camera_box", CAMERA_BOX_COLUMNS):
        frames[r["ts"]].camera_boxes.append(_box2d(r))
    for r in rows("stats", STATS_COLUMNS):
        frames[r["ts"]].stats = {k: r[k] for k in ("location", "time_of_day", "weather")}


def _frames(split_dir: Path, segment: str, chosen: dict[int, int],
            poses: dict[int, np.ndarray]) -> dict[int, WaymoFrame]:
    """The picked frames ({timestamp: rank}) with their images, calibrations and labels."""
    frames = {ts: WaymoFrame(segment, ts, tuple(poses[ts].ravel()) if ts in poses else (), rank)
              for ts, rank in sorted(chosen.items())}
    for r in read_rows(component_path(split_dir, "camera_image", segment), segment, IMAGE_COLUMNS, set(chosen)):
        frame, cam = frames[r["ts"]], camera_id(r["camera"])
        if cam in frame.shots:
            frame.problems.append(f"two camera_image rows for camera {r['camera']}")
        frame.shots[cam] = Shot(r["image"], tuple(r["pose"] or ()), r["pose_timestamp"])
    calibrations, problems = _calibrations(component_path(split_dir, "camera_calibration", segment), segment)
    for frame in frames.values():
        frame.calibrations = dict(calibrations)
        frame.problems.extend(problems)
    _add_labels(frames, split_dir, segment)
    return frames


def _events(split_dir: Path, segment: str, stride: int) -> Iterator[PoseEvent | Quarantined]:
    keys = read_rows(component_path(split_dir, "camera_image", segment), segment, {"ts": TS})
    frame_ts = sorted({r["ts"] for r in keys})
    chosen = {ts: rank for rank, ts in enumerate(frame_ts) if rank % stride == 0}
    poses, pose_problems = vehicle_poses(component_path(split_dir, "vehicle_pose", segment), segment)
    frames = _frames(split_dir, segment, chosen, poses)
    for ts in sorted(set(frame_ts) | set(poses) | set(pose_problems)):
        if ts in pose_problems:
            yield Quarantined(sample_key(segment, ts), pose_problems[ts])
        elif ts not in poses:
            yield Quarantined(sample_key(segment, ts), "no vehicle_pose row for this frame")
        else:
            yield PoseEvent(ts, poses[ts], frames.get(ts))


def parquet_events(split_dir: Path, segment: str, stride: int) -> Iterator[PoseEvent | Quarantined]:
    """A v2 segment as pose events in time order; frame i (in camera_image time order) carries
    its content when i % stride == 0. A broken required component quarantines the segment."""
    try:
        events = list(_events(split_dir, segment, stride))
    except ComponentError as exc:
        events = [Quarantined(segment, str(exc))]
    yield from events
