"""A small Waymo Open Dataset in both official layouts, built with the official protos.

`make_waymo_v1` writes `<out>/{training,validation,testing}/segment-<context>_with_camera_labels.tfrecord`
(TFRecords of `Frame` protos); `make_waymo_v2` writes the same frames as the v2 parquet
components `<out>/<split>/<component>/<context>.parquet` with the official column names and
types (`v2/perception/*.py`), `key.camera_name` as int8 or as strings.

Each segment drives one manoeuvre at 10 Hz (timestamps jittered by up to 100 us): a left
curve, a right curve, braking, and an unlabelled straight test segment, so trajectories and
commands differ and can be checked against closed forms (`Drive`). Five cameras with a
Waymo-like rig (x forward, y left, z up camera frame), small JPEGs, and world-fixed objects
beside the route give laser labels, their projections into the cameras (Waymo's camera
model, `waymo_project`) and camera labels. Deterministic for a given seed.
"""
from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from waymo_open_dataset import dataset_pb2, label_pb2

from converters.fixture_images import render_jpeg
from converters.waymo.converter import WaymoOptions
from converters.waymo.fixture_v2 import write_components
from converters.waymo.tfrecord import write_tfrecords
from dataengine.geometry import invert


@dataclass(frozen=True)
class Drive:
    """One segment's motion: constant yaw rate at constant speed, or straight with constant accel."""

    split_dir: str
    speed: float
    yaw_rate: float
    accel: float
    frames: int
    labelled: bool
    location: str

    def local(self, t: float) -> tuple[float, float, float]:
        """(x, y, yaw) at t seconds, in the frame of the vehicle at t = 0."""
        if self.yaw_rate:
            r = self.speed / self.yaw_rate
            return r * math.sin(self.yaw_rate * t), r * (1 - math.cos(self.yaw_rate * t)), self.yaw_rate * t
        return self.speed * t + self.accel * t * t / 2, 0.0, 0.0


DRIVES = (
    Drive("training", 7.0, 0.16, 0.0, 60, True, "location_sf"),
    Drive("training", 7.0, -0.16, 0.0, 60, True, "location_phx"),
    Drive("validation", 9.0, 0.0, -1.2, 60, True, "location_sf"),
    Drive("testing", 8.0, 0.0, 0.0, 40, False, "location_other"),
)
# name: (optical axis yaw deg, mount x, y, z in the vehicle frame, width, height, c_v, shot delay s)
RIG = {
    "FRONT": (0.0, 1.54, -0.02, 2.12, 96, 64, 31.7, 0.052),
    "FRONT_LEFT": (45.0, 1.49, 0.09, 2.11, 96, 64, 32.3, 0.042),
    "FRONT_RIGHT": (-45.0, 1.49, -0.09, 2.12, 96, 64, 32.3, 0.062),
    "SIDE_LEFT": (90.0, 1.43, 0.11, 2.11, 96, 44, 12.3, 0.022),
    "SIDE_RIGHT": (-90.0, 1.43, -0.11, 2.12, 96, 44, 12.0, 0.072),
}
FOCAL = 2044.5 * 96 / 1920  # the real FRONT focal length, scaled to 96 px wide images
DISTORTION = (0.0404, -0.33, 0.00104, -0.00157, 0.0)  # k1, k2, p1, p2, k3 of a real FRONT camera
# (type, length, width, height) of the world-fixed objects placed beside each labelled route
OBJECTS = (("TYPE_VEHICLE", 4.6, 1.9, 1.6), ("TYPE_PEDESTRIAN", 0.7, 0.7, 1.8), ("TYPE_SIGN", 0.1, 0.7, 0.7),
           ("TYPE_CYCLIST", 1.8, 0.7, 1.7), ("TYPE_VEHICLE", 4.9, 2.0, 1.8), ("TYPE_VEHICLE", 4.4, 1.8, 1.5))


def context_name(index: int) -> str:
    """A context name shaped like the real ones (e.g. 10023947602400723454_1120_000_1140_000)."""
    return f"{10_000_000_000_000_000_000 + 7919 * index}_{1000 + 20 * index:04d}_000_{1020 + 20 * index:04d}_000"


def timestamp_us(index: int, k: int) -> int:
    return 1_550_000_000_000_000 + 100_000_000 * index + 100_000 * k + ((k * 37) % 11 - 5) * 20


def _rot(yaw: float, pitch: float = 0.0) -> np.ndarray:
    cz, sz, cy, sy = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    return np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])


def world_from_vehicle(drive: Drive, index: int, t: float) -> np.ndarray:
    """The segment's route placed in a world frame of its own (origin and heading per segment)."""
    x0, y0, yaw0 = 1200.0 + 450 * index, -350.0 + 80 * index, 0.6 - 0.9 * index
    x, y, yaw = drive.local(t)
    m = np.eye(4)
    m[:3, :3] = _rot(yaw0 + yaw)
    m[:3, 3] = [x0 + math.cos(yaw0) * x - math.sin(yaw0) * y, y0 + math.sin(yaw0) * x + math.cos(yaw0) * y, 12.5]
    return m


def calibrations() -> dict[str, tuple[list[float], np.ndarray, int, int]]:
    """name -> (intrinsic [f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3], vehicle_from_camera, width, height)."""
    out = {}
    for name, (yaw, x, y, z, w, h, c_v, _) in RIG.items():
        extrinsic = np.eye(4)
        extrinsic[:3, :3] = _rot(math.radians(yaw), pitch=0.012)
        extrinsic[:3, 3] = [x, y, z]
        out[name] = ([FOCAL, FOCAL, w / 2 + 0.4, c_v, *DISTORTION], extrinsic, w, h)
    return out


def waymo_project(intrinsic, vehicle_from_camera, points: np.ndarray, distort: bool = True):
    """Waymo's camera model (`wdl_limited/camera/camera_model.cc`, global shutter): vehicle-frame
    points (N, 3) to pixels (N, 2) and depth along the optical axis (N,)."""
    cam = (np.asarray(points, dtype=float) - vehicle_from_camera[:3, 3]) @ vehicle_from_camera[:3, :3]
    depth = cam[:, 0]
    u, v = -cam[:, 1] / depth, -cam[:, 2] / depth
    f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3 = intrinsic
    if distort:
        r2 = u * u + v * v
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 ** 3
        u, v = (u * radial + 2 * p1 * u * v + p2 * (r2 + 2 * u * u),
                v * radial + p1 * (r2 + 2 * v * v) + 2 * p2 * u * v)
    return np.stack([u * f_u + c_u, v * f_v + c_v], axis=1), depth


def _ids(context: str, j: int) -> tuple[str, str]:
    """(laser object id: 22 base64url characters, camera object id: a UUID), as the real ones look."""
    digest = hashlib.md5(f"{context}/{j}".encode()).digest()
    h = hashlib.md5(f"camera/{context}/{j}".encode()).hexdigest()
    return base64.urlsafe_b64encode(digest).decode()[:22], f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _objects(drive: Drive, index: int, context: str) -> list[tuple]:
    """(laser id, camera id, type, (l, w, h), world center, world heading), beside the route."""
    out = []
    for j, (kind, length, width, height) in enumerate(OBJECTS):
        t = 1.0 + 0.8 * j
        pose = world_from_vehicle(drive, index, t)
        side = 4.5 if j % 2 == 0 else -4.0
        center = pose[:3, :3] @ np.array([6.0, side, height / 2]) + pose[:3, 3]  # on the road surface
        heading = math.atan2(pose[1, 0], pose[0, 0])
        out.append((*_ids(context, j), kind, (length, width, height), center, heading))
    return out


def _corners(center, lwh, heading) -> np.ndarray:
    length, w, h = lwh
    x = length / 2 * np.array([1, 1, 1, 1, -1, -1, -1, -1])
    y = w / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
    z = h / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    return np.stack([x, y, z], axis=1) @ _rot(heading).T + np.asarray(center)


def _image_box(calib, corners) -> tuple[float, float, float, float] | None:
    """Clamped (center_x, center_y, length, width) of projected corners, None when not in view."""
    intrinsic, extrinsic, width, height = calib
    uv, depth = waymo_project(intrinsic, extrinsic, corners)
    if (depth < 0.5).any():
        return None
    x1, y1 = np.clip(uv.min(axis=0), 0, [width, height])
    x2, y2 = np.clip(uv.max(axis=0), 0, [width, height])
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _add_box2d(group, label_id: str, kind: str, box, shrink: float = 1.0) -> None:
    label = group.labels.add()
    label.box.center_x, label.box.center_y = box[0], box[1]
    label.box.length, label.box.width = box[2] * shrink, box[3] * shrink
    label.type, label.id = label_pb2.Label.Type.Value(kind), label_id


def _add_labels(frame: dataset_pb2.Frame, objects: list[tuple], pose: np.ndarray, calibs: dict) -> None:
    vehicle_from_world = invert(pose)
    yaw = math.atan2(pose[1, 0], pose[0, 0])
    projected = {n: frame.projected_lidar_labels.add(name=dataset_pb2.CameraName.Name.Value(n)) for n in RIG}
    camera = {n: frame.camera_labels.add(name=dataset_pb2.CameraName.Name.Value(n)) for n in RIG}
    for laser_id, camera_id, kind, lwh, center, heading in objects:
        c = vehicle_from_world[:3, :3] @ center + vehicle_from_world[:3, 3]
        if np.linalg.norm(c[:2]) > 50:
            continue
        label = frame.laser_labels.add()
        b = label.box
        b.center_x, b.center_y, b.center_z = c
        b.length, b.width, b.height = lwh
        b.heading = (heading - yaw + math.pi) % (2 * math.pi) - math.pi
        label.type, label.id = label_pb2.Label.Type.Value(kind), laser_id
        label.num_lidar_points_in_box = max(5, int(400 / (1 + np.linalg.norm(c))))
        corners = _corners(c, lwh, b.heading)
        for name, calib in calibs.items():
            box = _image_box(calib, corners)
            if box is not None:
                _add_box2d(projected[name], f"{laser_id}_{name}", kind, box)
                if kind != "TYPE_SIGN":
                    _add_box2d(camera[name], camera_id, kind, box, shrink=0.9)


def _frame(drive: Drive, index: int, k: int, calibs: dict, objects: list, rng) -> dataset_pb2.Frame:
    context, ts = context_name(index), timestamp_us(index, k)
    t = (ts - timestamp_us(index, 0)) / 1e6
    frame = dataset_pb2.Frame(timestamp_micros=ts)
    frame.context.name = context
    for name, (intrinsic, extrinsic, w, h) in calibs.items():
        c = frame.context.camera_calibrations.add(name=dataset_pb2.CameraName.Name.Value(name), width=w, height=h)
        c.intrinsic.extend(intrinsic)
        c.extrinsic.transform.extend(extrinsic.ravel())
        c.rolling_shutter_direction = dataset_pb2.CameraCalibration.LEFT_TO_RIGHT
    frame.context.stats.location, frame.context.stats.time_of_day = drive.location, "Day"
    frame.context.stats.weather = "sunny"
    pose = world_from_vehicle(drive, index, t)
    frame.pose.transform.extend(pose.ravel())
    for name, (_, _, _, _, w, h, _, delay) in RIG.items():
        image = frame.images.add(name=dataset_pb2.CameraName.Name.Value(name))
        image.image = render_jpeg(rng, w, h, f"{name} {k}", 80)
        image.pose.transform.extend(world_from_vehicle(drive, index, t + delay).ravel())
        image.pose_timestamp = ts / 1e6 + delay
        image.shutter, image.camera_trigger_time = 0.0025, ts / 1e6 + delay - 0.02
        image.camera_readout_done_time = ts / 1e6 + delay + 0.025
    if drive.labelled:
        _add_labels(frame, objects, pose, calibs)
    return frame


def segment_frames(index: int, seed: int = 0) -> list[dataset_pb2.Frame]:
    drive = DRIVES[index]
    rng = np.random.default_rng(seed + index)
    calibs, objects = calibrations(), _objects(drive, index, context_name(index))
    return [_frame(drive, index, k, calibs, objects, rng) for k in range(drive.frames)]


def v1_path(out: Path, index: int) -> Path:
    return Path(out) / DRIVES[index].split_dir / f"segment-{context_name(index)}_with_camera_labels.tfrecord"


def make_waymo_v1(out: Path, seed: int = 0, segments: tuple[int, ...] | None = None) -> Path:
    """Write the v1 layout (all of DRIVES, or the `segments` indices) under `out`; returns `out`."""
    for index in range(len(DRIVES)) if segments is None else segments:
        frames = segment_frames(index, seed)
        write_tfrecords(v1_path(out, index), (f.SerializeToString(deterministic=True) for f in frames))
    return Path(out)


def make_waymo_v2(out: Path, seed: int = 0, camera_names: str = "int8",
                  segments: tuple[int, ...] | None = None) -> Path:
    """Write the same frames as v2 parquet components under `out`; `camera_names` is int8 or string."""
    for index in range(len(DRIVES)) if segments is None else segments:
        write_components(Path(out) / DRIVES[index].split_dir, segment_frames(index, seed), camera_names)
    return Path(out)


def jobs(name: str, out: Path) -> list[tuple[Path, WaymoOptions]]:
    return [(make_waymo_v1(out), WaymoOptions())]
