"""A small Talk2Car release: `commands/{train,val,test}_commands.json` referring to boxes the
generated nuScenes root beside them shows in CAM_FRONT (see `converters/nuscenes/fixture_derived.py`)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from converters.nuscenes.fixture import token
from converters.nuscenes.fixture_derived import CLASS_WORDS, scene_frames, write_json
from converters.talk2car.converter import Talk2CarOptions
from dataengine.geometry import apply, box_2d_in_image, box_corners, invert, pose_matrix, quat_to_matrix


def _matrix_to_quat(m: np.ndarray) -> list[float]:
    """(w, x, y, z) of a rotation matrix (Shepperd's method)."""
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2 * math.sqrt(1 + trace)
        return [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    i = int(np.argmax([m[0, 0], m[1, 1], m[2, 2]]))
    j, k = (i + 1) % 3, (i + 2) % 3
    s = 2 * math.sqrt(1 + m[i, i] - m[j, j] - m[k, k])
    q = [0.0] * 4
    q[0] = (m[k, j] - m[j, k]) / s
    q[1 + i] = s / 4
    q[1 + j] = (m[j, i] + m[i, j]) / s
    q[1 + k] = (m[k, i] + m[i, k]) / s
    return q


def _front_boxes(frame: dict) -> list[dict]:
    """Boxes of the frame's annotations seen by CAM_FRONT, in its camera frame (Talk2Car's
    convention), with the 2D box as [x, y, w, h] pixels."""
    cam = frame["sensors"]["CAM_FRONT"]
    calib = cam["calibration"]
    world_to_cam = invert(pose_matrix(calib["translation"], calib["rotation"])) @ invert(pose_matrix(**cam["ego_pose"]))
    out = []
    for ann in frame["annotations"]:
        corners = apply(world_to_cam, box_corners(ann["translation"], ann["size"], ann["rotation"]))
        xyxy = box_2d_in_image(corners, calib["camera_intrinsic"], cam["width"], cam["height"])
        if xyxy is None or ann["category"] not in CLASS_WORDS:
            continue
        x1, y1 = int(xyxy[0]), int(xyxy[1])
        out.append({"ann": ann, "translation": apply(world_to_cam, np.array([ann["translation"]]))[0].tolist(),
                    "rotation": _matrix_to_quat(world_to_cam[:3, :3] @ quat_to_matrix(ann["rotation"])),
                    "2d_box": [x1, y1, max(1, round(xyxy[2]) - x1), max(1, round(xyxy[3]) - y1)]})
    return out


def _command(box: dict, n: int) -> str:
    word = CLASS_WORDS[box["ann"]["category"]]
    side = "left" if box["translation"][0] < 0 else "right"
    return (f"pull over behind the {word} on the {side}", f"follow that {word}",
            f"stop next to the {word} over there on the {side}")[n % 3]


def make_talk2car(out: Path, **kwargs) -> Path:
    """Talk2Car's `data/` layout: `<out>/commands/{train,val,test}_commands.json` + `<out>/nuscenes`.
    Commands refer to boxes seen by CAM_FRONT; `sample_token` is the CAM_FRONT sample_data token,
    as the devkit reads it. Train scenes give train commands on every other key frame; the
    val scene's key frames alternate between val and test (so no evaluation frame is in a
    training scene). Returns `out`."""
    out = Path(out)
    _, scenes = scene_frames(out, **kwargs)
    by_split: dict[str, dict] = {s: {"scene_tokens": [], "commands": []} for s in ("train", "val", "test")}
    for split, scene, frames in scenes:
        parts = [("train", frames[::2])] if split == "train" else [("val", frames[::2]), ("test", frames[1::2])]
        for target, chosen in parts:
            data = by_split[target]
            data["scene_tokens"].append(scene["token"])
            for frame in chosen:
                data["commands"] += [_talk2car_command(target, scene, frame, box, len(data["commands"]) + i)
                                     for i, box in enumerate(_front_boxes(frame))]
    for split, data in by_split.items():
        write_json(out / "commands" / f"{split}_commands.json", data)
    return out


def _talk2car_command(split: str, scene: dict, frame: dict, box: dict, n: int) -> dict:
    ann = box["ann"]
    return {"scene_token": scene["token"], "sample_token": frame["sensors"]["CAM_FRONT"]["sample_data_token"],
            "translation": box["translation"], "size": ann["size"],
            "rotation": [repr(float(v)) for v in box["rotation"]], "command": _command(box, n),
            "obj_name": ann["category"], "box_token": ann["token"],
            "command_token": token("command", split, ann["token"], n), "2d_box": box["2d_box"],
            "t2c_img": f"img_{split}_{n}.jpg"}


def jobs(name: str, out: Path) -> list[tuple[Path, Talk2CarOptions]]:
    return [(make_talk2car(out), Talk2CarOptions(nuscenes_root=str(Path(out) / "nuscenes")))]
