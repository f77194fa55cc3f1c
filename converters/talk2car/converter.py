"""Talk2Car: spoken-style commands to a car, each referring to one object seen by the front
camera (visual grounding).

Source schema (`talk2car/Talk2Car` @ eeec6b0: `data/README.md`, `talk2car.py`; reference
datasets.md section 13): `commands/{train,val,test}_commands.json` (the repository's
`data/commands/`; older copies sit in `data/` itself, also looked up), each
`{"scene_tokens": [...], "commands": [...]}`. A command has `scene_token`,
`sample_token`, `command`, `command_token`, `obj_name`, `box_token`, the referred object's
3D box in the CAM_FRONT frame (`translation`, `size` as w, l, h, `rotation` as w, x, y, z
quaternion strings), `2d_box` as [x, y, w, h] pixels of the front image, and `t2c_img`
(Talk2Car's slim image set, not used: images come from nuScenes).

Despite its name, `sample_token` is read by the devkit as a sample_data token, the CAM_FRONT
key-frame image (`Talk2Car.Command` calls `get("sample_data", frame_token)`). It is
resolved that way through `--nuscenes-root` (a sample token, as the README words it, is
accepted too); `frame_id` is that image's nuScenes sample. Commands whose token is not in
the root are quarantined ("sample token not in nuScenes root").

Sample: the front image (`single_image`), task `grounding.box`; the user turn quotes the
command, the answer is the referred object's box `[x1, y1, x2, y2]` in front-image pixels
(integers; scored by IoU). `objects[0]` has the category, that box as `box_2d` on `front`
and the 3D box moved to the ego frame (`center`, `size_wlh`, `yaw`, as the nuScenes
converter writes boxes). A command without `2d_box` gets one by projecting its 3D box with
the camera intrinsics from the tables. Key `talk2car-<command_token>`. Work unit: one
nuScenes scene per split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from converters.nuscenes.media import keyframe_media
from converters.nuscenes.tables import CAMERAS, NuScenesIndex, require_root
from converters.nuscenes.units import (
    is_unresolved,
    key_part,
    quarantine_unresolved,
    read_split_lists,
    records_by_frame,
    scene_units,
    split_files,
)
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.geometry import apply, box_2d_in_image, box_corners, matrix_yaw, pose_matrix, quat_to_matrix

SPLITS = ("train", "val", "test")
COMMAND_FILES = {split: f"{split}_commands.json" for split in SPLITS}
FRONT = "CAM_FRONT"


@dataclass(frozen=True)
class Talk2CarOptions:
    nuscenes_root: str = ""
    """The nuScenes dataroot (v1.0-*/ tables, samples/) the commands' front images are in. Required."""


def _numbers(value, n: int) -> list[float] | None:
    """`value` as n finite floats (numbers or numeric strings, as Talk2Car writes rotations)."""
    if not isinstance(value, list) or len(value) != n or any(isinstance(v, bool) for v in value):
        return None
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return out if all(math.isfinite(v) for v in out) else None


def box_3d(c: dict) -> tuple[dict | None, str | None]:
    """The command's camera-frame 3D box ({translation, size, rotation}), None when it has none,
    or a reason when it is malformed."""
    fields = ("translation", "size", "rotation")
    if not any(f in c for f in fields):
        return None, None
    box = {"translation": _numbers(c.get("translation"), 3), "size": _numbers(c.get("size"), 3),
           "rotation": _numbers(c.get("rotation"), 4)}
    bad = [f for f in fields if box[f] is None]
    if bad or min(box["size"]) <= 0 or not any(box["rotation"]):
        return None, f"3D box fields {', '.join(bad) or 'size/rotation'} are not valid numbers"
    return box, None


def command_problem(c) -> str | None:
    """Why a command cannot be converted (its nuScenes link aside), or None."""
    if not isinstance(c, dict):
        return "command is not an object"
    for field in ("command", "command_token", "sample_token", "scene_token"):
        if not isinstance(c.get(field), str) or not c[field].strip():
            return f"no {field} string"
    box2d = c.get("2d_box")
    if box2d is not None:
        xywh = _numbers(box2d, 4)
        if xywh is None or xywh[2] <= 0 or xywh[3] <= 0:
            return f"2d_box {box2d!r} is not [x, y, w, h] with positive w and h"
    box, reason = box_3d(c)
    if reason:
        return reason
    if box2d is None and box is None:
        return "no referred object box (2d_box or translation/size/rotation)"
    return None


@register
class Talk2CarConverter(Converter):
    """Talk2Car: commands grounded to one object box in the front camera."""

    name = "talk2car"
    version = "1.0"
    options_type = Talk2CarOptions
    cameras = CAMERAS

    def check_source(self) -> None:
        if not split_files(self.src, "commands", COMMAND_FILES):
            raise UsageError(f"{self.src} is not a Talk2Car root: no commands/{{train,val,test}}_commands.json")
        require_root(self.options.nuscenes_root, self.name)
        _ = self._commands  # parsed once, here: a bad file is a usage error before anything runs

    @cached_property
    def _commands(self) -> dict[str, list]:
        return read_split_lists(split_files(self.src, "commands", COMMAND_FILES), "commands", "Talk2Car commands")

    def units(self) -> list[Unit]:
        index = NuScenesIndex(Path(self.options.nuscenes_root))
        units = []
        for split, commands in self._commands.items():
            seen: set[str] = set()
            records = [self._record(index, split, i, c, seen) for i, c in enumerate(commands)]
            units += scene_units(index, split, records)
        return units

    @staticmethod
    def _record(index: NuScenesIndex, split: str, i: int, c, seen: set[str]) -> dict:
        """A command with its front image resolved to a nuScenes sample (or its problem)."""
        token = c.get("command_token") if isinstance(c, dict) else None
        record = {"record_id": token if isinstance(token, str) and token else f"{split}/#{i}", "sample_tokens": []}
        problem = command_problem(c) or ("repeated command_token" if key_part(token) in seen else None)
        if problem:
            return {**record, "problem": problem}
        seen.add(key_part(token))
        image = c["sample_token"]
        found = index.find("sample_data", image)
        box, _ = box_3d(c)
        return {**record, "key": key_part(token), "sample_tokens": [found[1]["sample_token"] if found else image],
                "image_token": image if found else None, "scene_token": c["scene_token"], "box_3d": box,
                "box_2d": _numbers(c.get("2d_box"), 4) if c.get("2d_box") is not None else None,
                "source": {k: v for k, v in c.items() if k not in ("translation", "size", "rotation", "2d_box")}}

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        if is_unresolved(unit):
            yield from quarantine_unresolved(unit)
            return
        for token, records in records_by_frame(unit).items():  # one front image in memory at a time
            frame = unit.payload["frames"][token]
            media, blobs, reason = keyframe_media(Path(self.options.nuscenes_root), frame, self.name, (FRONT,))
            for record in records:
                problem = reason or self._link_problem(unit, frame, record)
                objects, problem = ([], problem) if problem else self._objects(frame, media[0], record)
                if problem:
                    yield Quarantined(record["record_id"], problem)
                else:
                    yield Record(self._sample(unit, frame, media, record, objects), blobs)

    @staticmethod
    def _link_problem(unit: Unit, frame: dict, record: dict) -> str | None:
        image = record["image_token"]
        if image is not None and frame["sensors"][FRONT]["sample_data_token"] != image:
            return f"sample_data {image} is not the {FRONT} key-frame image of its sample"
        if record["scene_token"] != unit.payload["scene"]["token"]:
            return f"scene_token {record['scene_token']} is not the scene of sample {frame['token']}"
        return None

    @staticmethod
    def _objects(frame: dict, image: dict, record: dict) -> tuple[list[dict], str | None]:
        """The referred object: its front-image box (given, else projected) and its ego-frame 3D box."""
        calib = frame["sensors"][FRONT]["calibration"]
        box = record["box_3d"]
        if record["box_2d"] is not None:
            x, y, w, h = record["box_2d"]
            xyxy = [x, y, x + w, y + h]
        else:
            corners = box_corners(box["translation"], box["size"], box["rotation"])
            xyxy = box_2d_in_image(corners, calib["camera_intrinsic"], image["width"], image["height"])
            if xyxy is None:
                return [], "the 3D box is not visible in the front image"
        clipped = [max(0.0, xyxy[0]), max(0.0, xyxy[1]), min(float(image["width"]), xyxy[2]),
                   min(float(image["height"]), xyxy[3])]
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            return [], f"2d_box {xyxy} lies outside the {image['width']}x{image['height']} front image"
        obj = {"category": record["source"].get("obj_name") or "object",
               "box_2d": [{"camera": "front", "xyxy": [round(v, 2) + 0.0 for v in clipped]}]}
        if record["source"].get("box_token"):
            obj["annotation_id"] = record["source"]["box_token"]
        if box is not None:
            cam_to_ego = pose_matrix(calib["translation"], calib["rotation"])
            center = apply(cam_to_ego, np.array([box["translation"]]))[0]
            obj["box_3d"] = {"center": [round(float(v), 4) + 0.0 for v in center], "size_wlh": box["size"],
                             "yaw": round(matrix_yaw(cam_to_ego[:3, :3] @ quat_to_matrix(box["rotation"])), 4) + 0.0}
        return [obj], None

    def _sample(self, unit: Unit, frame: dict, media: list[dict], record: dict, objects: list[dict]) -> dict:
        scene = unit.payload["scene"]
        command = record["source"]["command"]
        answer = "[" + ", ".join(str(round(v)) for v in objects[0]["box_2d"][0]["xyxy"]) + "]"
        return {
            "schema": "sample/1", "id": f"talk2car-{record['key']}", "dataset": self.name, "split": unit.split,
            "task": "grounding.box", "scene_id": f"nuscenes:{scene['token']}", "frame_id": f"nuscenes:{frame['token']}",
            "layout": "single_image", "media": [dict(m) for m in media],
            "conversations": [
                {"role": "user", "content": f"Command: \"{command}\"\nWhich object does this command refer to? Answer "
                                            f"with its bounding box in the front view as [x1, y1, x2, y2] in pixels."},
                {"role": "assistant", "content": answer}],
            "objects": objects,
            "meta": {**record["source"], "box_3d_camera": record["box_3d"], "box_2d_xywh": record["box_2d"],
                     "nuscenes_sample_token": frame["token"], "scene_name": scene["name"],
                     "location": scene["location"]},
        }
