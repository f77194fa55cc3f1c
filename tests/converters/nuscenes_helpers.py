"""Helpers for nuScenes tests: edit a generated dataroot's tables, compare with the devkit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_tables(root: Path, version: str = "v1.0-mini") -> dict[str, list]:
    return {p.stem: json.loads(p.read_text()) for p in (root / version).glob("*.json")}


def save_tables(root: Path, tables: dict[str, list], version: str = "v1.0-mini") -> None:
    for name, rows in tables.items():
        (root / version / f"{name}.json").write_text(json.dumps(rows))


def devkit_box_views(nusc, sample_token: str) -> dict[tuple[str, str], list[float]]:
    """(annotation token, channel) -> [x1, y1, x2, y2] from the devkit's own transforms:
    boxes visible with BoxVisibility.ANY, their corners' extent clipped to the image."""
    from nuscenes.utils.geometry_utils import BoxVisibility, view_points

    sample = nusc.get("sample", sample_token)
    out = {}
    for channel in ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"):
        sd = nusc.get("sample_data", sample["data"][channel])
        _, boxes, k = nusc.get_sample_data(sd["token"], box_vis_level=BoxVisibility.ANY)
        for box in boxes:
            uv = view_points(box.corners(), k, normalize=True)[:2]
            x1, y1 = np.clip(uv.min(axis=1), 0, [sd["width"], sd["height"]])
            x2, y2 = np.clip(uv.max(axis=1), 0, [sd["width"], sd["height"]])
            out[(box.token, channel)] = [x1, y1, x2, y2]
    return out


def ours_box_views(sample: dict) -> dict[tuple[str, str], list[float]]:
    source = {m["camera"]: m["source_camera"] for m in sample["media"]}
    return {(obj["annotation_id"], source[v["camera"]]): v["xyxy"] for obj in sample["objects"] for v in obj["box_2d"]}
