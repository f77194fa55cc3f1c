"""nuScenes keyframes as 6-camera planning samples (ego state, trajectory, command, objects).

Source schema (nuScenes v1.0, `nutonomy/nuscenes-devkit:docs/schema_nuscenes.md`): the 13
JSON tables under `<root>/<version>/`, keyframe JPEGs under `samples/CAM_*`, and optionally
the CAN bus expansion `can_bus/<scene>_pose.json`. Work unit: one scene. Splits: the
devkit's official scene splits (mini_train/mini_val, train/val, test).

Planning conventions (reference datasets.md section 2): keyframes at 2 Hz; the past 2 s
(4 points) and future 3 s (6 points) of the ego position from each keyframe's LIDAR_TOP
ego pose, in the current ego frame (x forward, y left). Points past a scene's end are
marked invalid and repeat the last valid point (as VAD does). The command follows VAD's
rule on the last valid future point: more than 2 m left is turn_left, more than 2 m right
is turn_right, otherwise go_straight (go_straight when no future point is valid).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from converters.nuscenes_media import camera_media
from converters.nuscenes_tables import LIDAR, NuScenesTables, official_splits, resolve_versions
from dataengine.cameras import NUSCENES_ORDER, canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.geometry import (apply, box_corners, invert, pose_matrices, pose_matrix, project_boxes, quat_to_matrix,
                                 quat_yaw)
from dataengine.trajectory import DT, FUTURE, PAST, command_from_future, planning_question
from dataengine.waypoints import format_waypoints


@dataclass(frozen=True)
class NuScenesOptions:
    version: str = "auto"
    """v1.0-mini, v1.0-trainval, v1.0-test, or auto (trainval and test when present, else mini)."""


def _finite_pose(pose: dict) -> bool:
    return all(math.isfinite(v) for v in [*pose["translation"], *pose["rotation"]])


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd) + 0.0  # + 0.0 turns -0.0 into 0.0 for stable JSON


def relative_points(ego_to_global: np.ndarray, poses: list[dict | None]) -> tuple[list[list[float]], list[bool]]:
    """Positions of `poses` in the ego frame; None or non-finite poses are invalid and repeat
    the previous valid point (the origin when there is none)."""
    valid = [pose is not None and _finite_pose(pose) for pose in poses]
    points = [pose["translation"] for pose, ok in zip(poses, valid) if ok]
    local = iter(apply(invert(ego_to_global), np.array(points, dtype=float)).tolist() if points else [])
    xy, last = [], [0.0, 0.0]
    for ok in valid:
        if ok:
            p = next(local)
            last = [_r(p[0]), _r(p[1])]
        xy.append(list(last))
    return xy, valid


def ego_motion(poses: list[dict | None], times: list[float], k: int) -> dict:
    """Speed, acceleration and yaw rate at keyframe k from neighbouring keyframe poses."""
    def velocity(i: int):
        lo, hi = max(i - 1, 0), min(i + 1, len(poses) - 1)
        if lo == hi or poses[lo] is None or poses[hi] is None:
            return None
        d = np.subtract(poses[hi]["translation"][:2], poses[lo]["translation"][:2])
        return float(np.linalg.norm(d)) / (times[hi] - times[lo])

    def yaw(i: int) -> float:
        return quat_yaw(poses[i]["rotation"])

    speed = velocity(k) or 0.0
    lo, hi = max(k - 1, 0), min(k + 1, len(poses) - 1)
    accel, yaw_rate = 0.0, 0.0
    if lo != hi and poses[lo] is not None and poses[hi] is not None:
        v_lo, v_hi = velocity(lo), velocity(hi)
        if v_lo is not None and v_hi is not None:
            accel = (v_hi - v_lo) / (times[hi] - times[lo])
        dyaw = (yaw(hi) - yaw(lo) + math.pi) % (2 * math.pi) - math.pi
        yaw_rate = dyaw / (times[hi] - times[lo])
    return {"speed_mps": _r(speed, 3), "accel_mps2": _r(accel, 3), "yaw_rate_rps": _r(yaw_rate, 4)}


def can_bus_motion(messages: list[dict], timestamp_us: int) -> dict | None:
    """The CAN bus pose message nearest the keyframe (within 0.1 s), as ego motion."""
    if not messages:
        return None
    best = min(messages, key=lambda m: abs(m["utime"] - timestamp_us))
    if abs(best["utime"] - timestamp_us) > 100_000:
        return None
    return {"speed_mps": _r(best["vel"][0], 3), "accel_mps2": _r(best["accel"][0], 3),
            "yaw_rate_rps": _r(best["rotation_rate"][2], 4)}


@register
class NuScenesConverter(Converter):
    """nuScenes keyframes: 6 cameras, ego state, 2 s history, 3 s plan, command, 3D/2D boxes."""

    name = "nuscenes"
    version = "1.0"
    options_type = NuScenesOptions

    def check_source(self) -> None:
        resolve_versions(self.src, self.options.version)

    def units(self) -> list[Unit]:
        units = []
        for version in resolve_versions(self.src, self.options.version):
            tables = NuScenesTables(self.src, version)
            splits = official_splits(version)
            for scene in tables.scenes():
                if scene["name"] not in splits:
                    raise UsageError(f"{self.src / version}: scene {scene['name']} is not in the devkit's "
                                     f"official {version} splits")
                try:
                    location = tables.get("log", scene["log_token"])["location"]
                except KeyError:
                    location = ""
                frames = [tables.keyframe(s) for s in tables.scene_samples(scene["token"])]
                units.append(Unit(id=scene["token"], split=splits[scene["name"]], payload={
                    "version": version, "scene": {k: scene[k] for k in ("token", "name", "description")},
                    "location": location, "frames": frames}))
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        frames = unit.payload["frames"]
        lidar_poses = [f["sensors"].get(LIDAR, {}).get("ego_pose") for f in frames]
        times = [f["timestamp"] / 1e6 for f in frames]
        can = self._can_bus(unit.payload["scene"]["name"])
        for k, frame in enumerate(frames):
            problem = self._problem(frame)
            if problem:
                yield Quarantined(frame["token"], problem)
                continue
            media, blobs, reason = camera_media(self.src, frame, self.name)
            if reason:
                yield Quarantined(frame["token"], reason)
                continue
            yield Record(self._sample(unit, frames, lidar_poses, times, can, k, media), blobs)

    def _can_bus(self, scene_name: str) -> list[dict]:
        path = self.src / "can_bus" / f"{scene_name}_pose.json"
        return json.loads(path.read_text()) if path.exists() else []

    @staticmethod
    def _problem(frame: dict) -> str | None:
        if frame["problems"]:
            return "broken table link: " + "; ".join(frame["problems"])
        bad = [c for c, s in frame["sensors"].items() if not _finite_pose(s["ego_pose"])]
        if bad:
            return f"non-finite ego_pose: {', '.join(sorted(bad))}"
        return None

    @staticmethod
    def _objects(frame: dict, ego_to_global: np.ndarray) -> list[dict]:
        anns = frame["annotations"]
        if not anns:
            return []
        world_to_ego = invert(ego_to_global)
        rotations = np.array([a["rotation"] for a in anns], dtype=float)
        translations = np.array([a["translation"] for a in anns], dtype=float)
        corners = box_corners(translations, np.array([a["size"] for a in anns], dtype=float), rotations)  # (N, 8, 3)
        # every box in every camera in one batch: (6 cameras, N boxes, 8 corners, 3)
        cams = [frame["sensors"][channel] for channel in NUSCENES_ORDER]
        cam_to_ego = pose_matrices([c["calibration"]["translation"] for c in cams],
                                   [c["calibration"]["rotation"] for c in cams])
        ego_to_world = pose_matrices([c["ego_pose"]["translation"] for c in cams],
                                     [c["ego_pose"]["rotation"] for c in cams])
        world_to_cam = invert(cam_to_ego) @ invert(ego_to_world)
        in_cams = (corners.reshape(1, -1, 3) @ np.swapaxes(world_to_cam[:, :3, :3], 1, 2)
                   + world_to_cam[:, None, :3, 3]).reshape(len(cams), len(anns), 8, 3)
        visible, xyxy = project_boxes(in_cams, np.array([c["calibration"]["camera_intrinsic"] for c in cams], dtype=float),
                                      [[c["width"], c["height"]] for c in cams])
        names = [canonical("nuscenes", channel) for channel in NUSCENES_ORDER]
        xyxy = xyxy.tolist()
        centers = apply(world_to_ego, translations).tolist()
        in_ego = world_to_ego[:3, :3] @ quat_to_matrix(rotations)
        yaws = np.arctan2(in_ego[:, 1, 0], in_ego[:, 0, 0]).tolist()
        return [{
            "category": ann["category"], "instance_id": f"nuscenes:{ann['instance_token']}",
            "annotation_id": ann["token"], "attributes": ann["attributes"],
            "visibility": ann["visibility"], "num_lidar_pts": ann["num_lidar_pts"],
            "box_3d": {"center": [_r(v) for v in centers[i]], "size_wlh": [_r(v) for v in ann["size"]],
                       "yaw": _r(yaws[i])},
            "box_2d": [{"camera": names[c], "xyxy": [_r(v, 2) for v in xyxy[c][i]]}
                       for c in range(len(cams)) if visible[c, i]],
        } for i, ann in enumerate(anns)]

    def _sample(self, unit: Unit, frames, lidar_poses, times, can, k: int, media: list[dict]) -> dict:
        frame = frames[k]
        ego_to_global = pose_matrix(**lidar_poses[k])
        future = [lidar_poses[j] if j < len(frames) else None for j in range(k + 1, k + 1 + FUTURE)]
        past = [lidar_poses[j] if j >= 0 else None for j in range(k - PAST, k)]
        fut_xy, fut_valid = relative_points(ego_to_global, future)
        # history pads backwards: a missing early point repeats the oldest valid one
        hist_xy, hist_valid = (list(reversed(x)) for x in relative_points(ego_to_global, past[::-1]))
        motion = can_bus_motion(can, frame["timestamp"])
        ego_source = "can_bus" if motion else "ego_pose"
        motion = motion or ego_motion(lidar_poses, times, k)
        command = command_from_future(fut_xy, fut_valid)
        ego = {**motion, "history_xy": hist_xy, "history_valid": hist_valid}
        scene = unit.payload["scene"]
        location = unit.payload["location"] or "an unknown city"
        return {
            "schema": "sample/1", "id": f"nuscenes-{frame['token']}", "dataset": "nuscenes", "split": unit.split,
            "task": "planning.trajectory", "scene_id": f"nuscenes:{scene['token']}",
            "frame_id": f"nuscenes:{frame['token']}", "layout": "multi_view", "media": media,
            "conversations": [
                {"role": "user", "content": planning_question(
                    location, ego, command, [p for p, v in zip(hist_xy, hist_valid) if v])},
                {"role": "assistant", "content": format_waypoints(fut_xy)},
            ],
            "ego": ego,
            "trajectory": {"frame": "ego_xfwd_yleft", "dt_s": DT, "xy": fut_xy, "valid": fut_valid},
            "command": command,
            "objects": self._objects(frame, ego_to_global),
            "meta": {"scene_name": scene["name"], "scene_description": scene["description"],
                     "location": unit.payload["location"], "version": unit.payload["version"],
                     "sample_token": frame["token"], "timestamp_us": frame["timestamp"],
                     "ego_motion_source": ego_source, "future_complete": all(fut_valid)},
        }

    @classmethod
    def make_fixture(cls, out: Path, **kwargs) -> Path:
        from converters.nuscenes_fixture import make_nuscenes_root  # fixture writers stay out of the workers

        return make_nuscenes_root(out, **kwargs)
