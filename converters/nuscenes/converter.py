"""nuScenes keyframes as 6-camera planning samples (ego state, trajectory, command, objects),
and agent-motion samples of the same keyframes (`motion.agents`, converters/nuscenes/agents.py).

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
from typing import Iterator

from converters.nuscenes.agents import agent_futures, motion_sample
from converters.nuscenes.media import camera_media
from converters.nuscenes.scene import SceneGeometry, finite_pose
from converters.nuscenes.tables import CAMERAS, NuScenesTables, official_splits, resolve_versions
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.geometry import quat_yaw
from dataengine.trajectory import DT, FUTURE, PAST, clean, command_from_future, ego_motion, planning_question
from dataengine.waypoints import format_waypoints


@dataclass(frozen=True)
class NuScenesOptions:
    version: str = "auto"
    """v1.0-mini, v1.0-trainval, v1.0-test, or auto (trainval and test when present, else mini)."""
    agents: bool = True
    """Also write each key frame's agent-motion sample (task motion.agents, converters/nuscenes/agents.py);
    `--agents false` writes the planning samples only."""


def can_bus_motion(messages: list[dict], timestamp_us: int) -> dict | None:
    """The CAN bus pose message nearest the keyframe (within 0.1 s), as ego motion."""
    if not messages:
        return None
    best = min(messages, key=lambda m: abs(m["utime"] - timestamp_us))
    if abs(best["utime"] - timestamp_us) > 100_000:
        return None
    return {"speed_mps": clean(best["vel"][0], 3), "accel_mps2": clean(best["accel"][0], 3),
            "yaw_rate_rps": clean(best["rotation_rate"][2], 4)}


def _can_message_ok(m) -> bool:
    def finite(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    return (isinstance(m, dict) and finite(m.get("utime"))
            and all(isinstance(m.get(k), list) and len(m[k]) >= n and finite(m[k][n - 1])
                    for k, n in (("vel", 1), ("accel", 1), ("rotation_rate", 3))))


@register
class NuScenesConverter(Converter):
    """nuScenes keyframes: 6 cameras, ego state, 2 s history, 3 s plan, command, 3D/2D boxes."""

    name = "nuscenes"
    version = "1.0"
    options_type = NuScenesOptions
    cameras = CAMERAS

    def check_source(self) -> None:
        resolve_versions(self.src, self.options.version)

    def units(self) -> Iterator[Unit]:
        for version in resolve_versions(self.src, self.options.version):
            tables = NuScenesTables(self.src, version)
            splits = official_splits(version)
            seen: set[str] = set()
            for scene in tables.scenes():
                if scene["name"] not in splits:
                    raise UsageError(f"{self.src / version}: scene {scene['name']} is not in the devkit's "
                                     f"official {version} splits")
                if scene["token"] in seen:  # its key frames would be converted twice, by two units
                    raise UsageError(f"{self.src / version / 'scene.json'}: scene token {scene['token']} "
                                     "appears more than once")
                seen.add(scene["token"])
                try:
                    location = tables.get("log", scene["log_token"])["location"]
                except KeyError:
                    location = ""
                frames, repeated, tokens = [], [], set()
                for sample in tables.scene_samples(scene["token"]):
                    (repeated if sample["token"] in tokens else frames).append(sample)
                    tokens.add(sample["token"])
                yield Unit(id=scene["token"], split=splits[scene["name"]], payload={
                    "version": version, "scene": {k: scene[k] for k in ("token", "name", "description")},
                    "location": location, "frames": [tables.keyframe(s) for s in frames],
                    **({"repeated": [s["token"] for s in repeated]} if repeated else {})})

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        for token in unit.payload.get("repeated", []):  # a sample row repeated: left out of the scene's timeline
            yield Quarantined(token, "duplicate: sample token repeated in sample.json")
        frames = unit.payload["frames"]
        times = [f["timestamp"] / 1e6 for f in frames]
        can = self._can_bus(unit.payload["scene"]["name"])
        problems = [self._problem(frame) for frame in frames]
        scene = SceneGeometry(frames, [k for k, problem in enumerate(problems) if not problem])
        for k, frame in enumerate(frames):
            if problems[k]:
                yield Quarantined(frame["token"], problems[k])
                continue
            media, blobs, reason = camera_media(self.src, frame, self.name)
            if reason:
                yield Quarantined(frame["token"], reason)
                continue
            sample = self._sample(unit, scene, times, can, k, media)
            yield Record(sample, blobs)
            agents = agent_futures(frames, scene.world_to_ego[k], k) if self.options.agents else []
            if agents:  # an extra sample of the same key frame (converters/nuscenes/agents.py)
                yield Record(motion_sample(sample, agents), list(blobs))

    def _can_bus(self, scene_name: str) -> list[dict]:
        """The scene's CAN bus pose messages; an unreadable file or malformed message is left
        out, so those frames take their motion from ego_pose (`meta.ego_source` says which)."""
        path = self.src / "can_bus" / f"{scene_name}_pose.json"
        try:
            messages = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        except (ValueError, OSError):
            return []
        return [m for m in messages if _can_message_ok(m)] if isinstance(messages, list) else []

    @staticmethod
    def _problem(frame: dict) -> str | None:
        if frame["problems"]:
            return "broken table link: " + "; ".join(frame["problems"])
        bad = [c for c, s in frame["sensors"].items() if not finite_pose(s["ego_pose"])]
        if bad:
            return f"non-finite ego_pose: {', '.join(sorted(bad))}"
        return None

    def _sample(self, unit: Unit, scene_geometry: SceneGeometry, times, can, k: int, media: list[dict]) -> dict:
        frame = unit.payload["frames"][k]
        fut_xy, fut_valid = scene_geometry.window(k, range(1, FUTURE + 1))
        # history pads backwards: a missing early point repeats the oldest valid one
        hist_xy, hist_valid = (list(reversed(x)) for x in scene_geometry.window(k, range(-1, -PAST - 1, -1)))
        motion = can_bus_motion(can, frame["timestamp"])
        ego_source = "can_bus" if motion else "ego_pose"
        motion = motion or ego_motion(scene_geometry.poses, times, k, position=lambda p: p["translation"],
                                      yaw=lambda p: quat_yaw(p["rotation"]), ticks_per_s=1)
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
            "objects": scene_geometry.objects[k],
            "meta": {"scene_name": scene["name"], "scene_description": scene["description"],
                     "location": unit.payload["location"], "version": unit.payload["version"],
                     "sample_token": frame["token"], "timestamp_us": frame["timestamp"],
                     "ego_motion_source": ego_source, "future_complete": all(fut_valid)},
        }
