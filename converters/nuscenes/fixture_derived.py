"""What the fixtures of the datasets that annotate nuScenes frames (nuScenes-QA, OmniDrive,
NuInstruct, Talk2Car) share: a generated nuScenes root to point into, and facts read from it.

Each such fixture writes its annotation files in the owner's layout next to a generated
nuScenes root (`<out>/nuscenes`, from `make_nuscenes_root`), and computes its answers from
that root's tables (object counts, ego motion, projected boxes), so what a sample says is
true of its scene. Scenes keep their devkit split (mini_train -> train, mini_val -> val)
unless a dataset has its own. Deterministic: same arguments, same bytes.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from converters.nuscenes.fixture import make_nuscenes_root
from converters.nuscenes.tables import LIDAR, NuScenesTables, official_splits
from dataengine.geometry import apply, invert, pose_matrix

VERSION = "v1.0-mini"
# nuScenes category / attribute -> nuScenes-QA's answer words (src/datasets/answer_dict.json)
CLASS_WORDS = {"vehicle.car": "car", "vehicle.truck": "truck", "human.pedestrian.adult": "pedestrian",
               "movable_object.trafficcone": "traffic cone", "vehicle.bicycle": "bicycle",
               "movable_object.barrier": "barrier", "vehicle.bus.rigid": "bus", "vehicle.trailer": "trailer",
               "vehicle.construction": "construction vehicle", "vehicle.motorcycle": "motorcycle"}


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def scene_frames(out: Path, **kwargs) -> tuple[Path, list[tuple[str, dict, list[dict]]]]:
    """The generated nuScenes root and, per scene in table order, (split, scene, key frames)."""
    root = make_nuscenes_root(Path(out) / "nuscenes", version=VERSION, **kwargs)
    tables = NuScenesTables(root, VERSION)
    splits = official_splits(VERSION)
    scenes = [(splits[s["name"]], s, [tables.keyframe(x) for x in tables.scene_samples(s["token"])])
              for s in tables.scenes()]
    return root, scenes


def future_xy(frames: list[dict], k: int) -> tuple[list[list[float]], list[bool]]:
    """The next 6 key frames' ego positions in frame k's ego frame (x forward, y left); past
    the scene's end a point repeats the last one and is invalid."""
    poses = [f["sensors"][LIDAR]["ego_pose"] for f in frames]
    world_to_ego = invert(pose_matrix(**poses[k]))
    xy, valid, last = [], [], [0.0, 0.0]
    for j in range(k + 1, k + 7):
        if j < len(poses):
            p = apply(world_to_ego, np.array([poses[j]["translation"]], dtype=float))[0]
            last = [round(float(p[0]), 4) + 0.0, round(float(p[1]), 4) + 0.0]
        xy.append(list(last))
        valid.append(j < len(poses))
    return xy, valid


def closest_category(frame: dict) -> str | None:
    """Category of the annotation nearest the ego vehicle (None without annotations)."""
    ego = np.array(frame["sensors"][LIDAR]["ego_pose"]["translation"][:2])
    anns = sorted(frame["annotations"], key=lambda a: float(np.linalg.norm(np.array(a["translation"][:2]) - ego)))
    return anns[0]["category"] if anns else None


def class_counts(frame: dict) -> Counter:
    return Counter(CLASS_WORDS[a["category"]] for a in frame["annotations"] if a["category"] in CLASS_WORDS)
