"""Sample schema v3: the contract between converters, shards, the loader and evaluation.

sample/3 has the fields of sample/1 and sample/2; what changed is storage: a media item's
bytes are in the shard root's media store under its `sha1` (sample/2), and the fields the
samples of one key frame share may be stored once there as a context (sample/3,
`dataengine/context.py`), which readers merge back. This module checks the whole sample
(docs/format.md, "Migration"). A converter may still label its records sample/1.

`validate_sample` collects every problem of a sample and raises one `SchemaError` that
names the sample and each bad field, so a converter bug is fixed in one pass.
"""
from __future__ import annotations

import math
import re
from typing import Any

from dataengine import SCHEMA_VERSION
from dataengine.cameras import CANONICAL
from dataengine.errors import SchemaError

KEY_RE = re.compile(r"^[a-z0-9_-]+$")
MEMBER_RE = re.compile(r"^[a-z0-9_]+\.(jpg|jpeg|png)$")
SPLITS = ("train", "val", "test")
LAYOUTS = ("single_image", "multi_view", "video", "multi_view_video")
ROLES = ("user", "assistant")
COMMANDS = ("turn_left", "turn_right", "go_straight")
TRAJECTORY_FRAMES = ("ego_xfwd_yleft", "lidar_xright_yfwd")
SHA1_RE = re.compile(r"[0-9a-f]{40}")
NAMESPACE_RE = re.compile(r"^[a-z0-9_]+:.+$")
READABLE = ("sample/1", "sample/2", SCHEMA_VERSION)  # same fields; the writer stamps SCHEMA_VERSION
REQUIRED = ("schema", "id", "dataset", "split", "task", "scene_id", "frame_id", "layout",
            "media", "conversations", "meta")
OPTIONAL = ("ego", "trajectory", "command", "objects")


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _finite_numbers(values: list) -> bool:
    """`_is_num` of every value, with a fast path for plain floats: it runs on every
    matrix and point of every sample written."""
    for v in values:
        if type(v) is float:
            if not math.isfinite(v):
                return False
        elif not _is_num(v):
            return False
    return True


def _matrix(x: Any, rows: int, cols: int) -> bool:
    return (isinstance(x, list) and len(x) == rows
            and all(isinstance(r, list) and len(r) == cols and _finite_numbers(r) for r in x))


def _points(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(p, list) and len(p) == 2 and _finite_numbers(p) for p in x)


def _check_media(media: Any, bad: list[str]) -> None:  # noqa: C901 (one branch per rule of the media list)
    if not isinstance(media, list):
        bad.append("media: must be a list")
        return
    members = set()
    for i, m in enumerate(media):
        where = f"media[{i}]"
        if not isinstance(m, dict):
            bad.append(f"{where}: must be an object")
            continue
        member = m.get("member")
        if not isinstance(member, str) or not MEMBER_RE.match(member):
            bad.append(f"{where}.member: {member!r} must look like 'img0.jpg' ([a-z0-9_] stem, image suffix)")
        elif member in members:
            bad.append(f"{where}.member: {member!r} repeated")
        members.add(member)
        if m.get("camera") not in CANONICAL:
            bad.append(f"{where}.camera: {m.get('camera')!r} is not one of {', '.join(CANONICAL)}")
        if not isinstance(m.get("source_camera"), str) or not m.get("source_camera"):
            bad.append(f"{where}.source_camera: must be a non-empty string")
        if not _is_num(m.get("time_offset_s")):
            bad.append(f"{where}.time_offset_s: must be a finite number")
        for dim in ("width", "height"):
            if not isinstance(m.get(dim), int) or isinstance(m.get(dim), bool) or m.get(dim) <= 0:
                bad.append(f"{where}.{dim}: must be a positive integer")
        sha1 = m.get("sha1")
        if not isinstance(sha1, str) or not SHA1_RE.fullmatch(sha1):
            bad.append(f"{where}.sha1: must be 40 lowercase hex digits")
        if "intrinsics" in m and not _matrix(m["intrinsics"], 3, 3):
            bad.append(f"{where}.intrinsics: must be a 3x3 matrix of finite numbers")
        if "extrinsics" in m and not _matrix(m["extrinsics"], 4, 4):
            bad.append(f"{where}.extrinsics: must be a 4x4 matrix of finite numbers")


def _check_conversations(conv: Any, bad: list[str]) -> None:
    if not isinstance(conv, list) or not conv:
        bad.append("conversations: must be a non-empty list")
        return
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or turn.get("role") not in ROLES:
            bad.append(f"conversations[{i}].role: must be 'user' or 'assistant'")
            continue
        content = turn.get("content")
        if not isinstance(content, str):
            bad.append(f"conversations[{i}].content: must be a string")
        elif "<image>" in content or "<video>" in content:
            bad.append(f"conversations[{i}].content: carries an image placeholder; the renderer places them")
    if isinstance(conv[0], dict) and conv[0].get("role") != "user":
        bad.append("conversations[0].role: the first turn must be the user's")


def _check_optional(sample: dict, bad: list[str]) -> None:  # noqa: C901 (one branch per optional field of the schema)
    ego = sample.get("ego")
    if ego is not None:
        if not isinstance(ego, dict):
            bad.append("ego: must be an object")
        else:
            for k in ("speed_mps", "accel_mps2", "yaw_rate_rps"):
                if k in ego and not _is_num(ego[k]):
                    bad.append(f"ego.{k}: must be a finite number")
            if "history_xy" in ego and not _points(ego["history_xy"]):
                bad.append("ego.history_xy: must be a list of [x, y] finite numbers")
    traj = sample.get("trajectory")
    if traj is not None:
        if not isinstance(traj, dict):
            bad.append("trajectory: must be an object")
        else:
            if traj.get("frame", "ego_xfwd_yleft") not in TRAJECTORY_FRAMES:
                bad.append(f"trajectory.frame: {traj.get('frame')!r} is not one of {TRAJECTORY_FRAMES}")
            if not _is_num(traj.get("dt_s")) or traj.get("dt_s", 0) <= 0:
                bad.append("trajectory.dt_s: must be a positive number")
            if not _points(traj.get("xy")):
                bad.append("trajectory.xy: must be a list of [x, y] finite numbers")
            valid = traj.get("valid")
            if not isinstance(valid, list) or not all(isinstance(v, bool) for v in valid):
                bad.append("trajectory.valid: must be a list of booleans")
            elif isinstance(traj.get("xy"), list) and len(valid) != len(traj["xy"]):
                bad.append("trajectory.valid: must have one entry per point of trajectory.xy")
    if "command" in sample and sample["command"] not in COMMANDS:
        bad.append(f"command: {sample['command']!r} is not one of {COMMANDS}")
    objects = sample.get("objects")
    if objects is not None:
        if not isinstance(objects, list):
            bad.append("objects: must be a list")
        else:
            for i, obj in enumerate(objects):
                if not isinstance(obj, dict) or not isinstance(obj.get("category"), str):
                    bad.append(f"objects[{i}].category: must be a string")
                    continue
                for j, view in enumerate(obj.get("box_2d", [])):
                    if view.get("camera") not in CANONICAL or not (
                            isinstance(view.get("xyxy"), list) and len(view["xyxy"]) == 4
                            and _finite_numbers(view["xyxy"])):
                        bad.append(f"objects[{i}].box_2d[{j}]: needs a canonical camera and 4 finite xyxy")


def validate_sample(sample: Any) -> None:  # noqa: C901 (one branch per required field, the fast path first)
    """Raise SchemaError naming the sample and every field that breaks the schema."""
    if not isinstance(sample, dict):
        raise SchemaError(f"sample must be a JSON object, got {type(sample).__name__}")
    bad: list[str] = []
    for field in REQUIRED:
        if field not in sample:
            bad.append(f"{field}: missing")
    extra = set(sample) - set(REQUIRED) - set(OPTIONAL)
    if extra:
        bad.append(f"unknown top-level fields {sorted(extra)}: put source extras under meta")
    if sample.get("schema", SCHEMA_VERSION) not in READABLE:
        bad.append(f"schema: {sample.get('schema')!r}, this engine reads {SCHEMA_VERSION!r}")
    key = sample.get("id")
    if "id" in sample and (not isinstance(key, str) or not KEY_RE.match(key)):
        bad.append(f"id: {key!r} must match [a-z0-9_-]+ (WebDataset splits member names at the first dot)")
    for field in ("dataset", "task"):
        if field in sample and (not isinstance(sample[field], str) or not sample[field]):
            bad.append(f"{field}: must be a non-empty string")
    if "split" in sample and sample["split"] not in SPLITS:
        bad.append(f"split: {sample['split']!r} is not one of {SPLITS}")
    for field in ("scene_id", "frame_id"):
        if field in sample and (not isinstance(sample[field], str) or not NAMESPACE_RE.match(sample[field])):
            bad.append(f"{field}: {sample[field]!r} must be '<namespace>:<source id>'")
    if "layout" in sample and sample["layout"] not in LAYOUTS:
        bad.append(f"layout: {sample['layout']!r} is not one of {LAYOUTS}")
    if "media" in sample:
        _check_media(sample["media"], bad)
    if "conversations" in sample:
        _check_conversations(sample["conversations"], bad)
    if "meta" in sample and not isinstance(sample["meta"], dict):
        bad.append("meta: must be an object")
    _check_optional(sample, bad)
    if bad:
        name = key if isinstance(key, str) else "<no id>"
        raise SchemaError(f"sample {name}: " + "; ".join(bad))
