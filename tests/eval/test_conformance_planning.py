"""Planning collision equals the official BEV-grid computation (UniAD and VAD/ST-P3).

Oracles re-written from OpenDriveLab/UniAD@dd161b220c22de1c874c3fb8d55979054b24d716
(projects/mmdet3d_plugin/uniad/dense_heads/planning_head_plugin/planning_metrics.py,
`evaluate_single_coll`; obstacles as projects/mmdet3d_plugin/datasets/pipelines/occflow_label.py
rasterises them) and hustvl/VAD@1688c4b1c3a9e2e7873ca9700ff8058170c0e3c8
(projects/mmdet3d_plugin/VAD/planner/metric_stp3.py, `_get_poly_region_in_image`,
`evaluate_single_coll`). skimage.draw.polygon is replaced by a pixel-centre-inside test
(matplotlib's Path), which is what it computes for this box.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from matplotlib.path import Path as MplPath

from eval.metrics.planning import box_corners, grid_collisions, occupancy, score_planning

DX, BX, DIM, W, H = 0.5, -49.75, 200, 1.85, 4.084


def polygon_cells(rows, cols):
    """skimage.draw.polygon(rows, cols): integer cells whose centres lie inside."""
    path = MplPath(np.stack([rows, cols], 1))
    rr, cc = np.meshgrid(np.arange(math.floor(min(rows)), math.ceil(max(rows)) + 1),
                         np.arange(math.floor(min(cols)), math.ceil(max(cols)) + 1), indexing="ij")
    inside = path.contains_points(np.stack([rr.ravel(), cc.ravel()], 1))
    return rr.ravel()[inside], cc.ravel()[inside]


def official_single_coll(traj_lidar, seg, vad):
    pts = np.array([[-H / 2 + 0.5, W / 2], [H / 2 + 0.5, W / 2], [H / 2 + 0.5, -W / 2], [-H / 2 + 0.5, -W / 2]])
    pts = (pts - BX) / DX
    pts[:, [0, 1]] = pts[:, [1, 0]]
    rr, cc = polygon_cells(pts[:, 1], pts[:, 0])
    rc = np.concatenate([rr[:, None], cc[:, None]], axis=-1)
    trajs = traj_lidar.astype(np.float32).reshape(-1, 1, 2)[:, :, [1, 0]] / np.float32(DX) + rc
    r = (DIM - trajs[:, :, 0]).astype(np.int32) if vad else trajs[:, :, 0].astype(np.int32)
    r, c = np.clip(r, 0, DIM - 1), np.clip(trajs[:, :, 1].astype(np.int32), 0, DIM - 1)
    return np.array([seg[r[t], c[t]].any() for t in range(len(traj_lidar))])


def official_occupancy(boxes_lidar, vad):
    """boxes: (x, y, length, width, yaw) in the LiDAR frame (x right, y forward)."""
    seg = np.zeros((DIM, DIM))
    for x, y, length, width, yaw in boxes_lidar:
        rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
        corner = np.array([[length / 2, -length / 2, -length / 2, length / 2],
                           [width / 2, width / 2, -width / 2, -width / 2]])
        real = rot @ corner + np.array([[x], [y]])
        if vad:
            real = np.array([[1, 0], [0, -1]]) @ real
        pts = np.round(((real - BX + DX / 2.0) / DX).T).astype(np.int32)
        cv2.fillPoly(seg, [pts], 1.0)
    return seg


def cases(seed=0, n=60):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        traj = np.cumsum(rng.normal([1.5, 0.0], [0.6, 0.3], size=(6, 2)), axis=0)   # ego frame, x fwd
        boxes = []
        for _ in range(rng.integers(1, 4)):
            k = rng.integers(1, 6)   # near a waypoint: near misses and touches
            cx, cy = traj[k] + rng.normal(0, 2.2, 2)
            boxes.append({"center": [cx, cy, 0.0], "size_wlh": [rng.uniform(0.6, 2.2), rng.uniform(0.6, 5.0), 1.5],
                          "yaw": rng.uniform(-math.pi, math.pi)})
        yield traj, boxes


def test_grid_collision_equals_official_per_step():
    for vad in (False, True):
        grid = "vad" if vad else "uniad"
        for traj, boxes in cases():
            # ego frame box (x fwd, y left, yaw from x) -> LiDAR (x right, y fwd, yaw from x right)
            lidar_boxes = [(-b["center"][1], b["center"][0], b["size_wlh"][1], b["size_wlh"][0], b["yaw"] + math.pi / 2)
                           for b in boxes]
            seg = official_occupancy(lidar_boxes, vad)
            ours = occupancy([box_corners(b) for b in boxes], grid)
            assert (ours == seg).all()
            lidar = np.stack([-traj[:, 1], traj[:, 0]], 1)
            assert (grid_collisions(traj, ours, grid) == official_single_coll(lidar, seg, vad)).all()


def test_near_miss_differs_between_grid_and_exact():
    """A box 0.2 m beside the ego box: no exact overlap, but the grids snap both onto shared cells."""
    box = {"center": [0.5, 1.85 / 2 + 0.2 + 0.5, 0.0], "size_wlh": [1.0, 4.0, 1.5], "yaw": 0.0}
    row = {"task": "planning.trajectory", "prediction": [", ".join(["(0.0, 0.0)"] * 6)],
           "prompt": {}, "sample": {"trajectory": {"xy": [[5.0, 20.0]] * 6, "valid": [True] * 6},
                                    "objects": [{"category": "vehicle.car", "box_3d": box}]}}
    s = score_planning([row], None)
    assert s["collision_exact_1s.uniad"]["value"] == 0.0
    seg = official_occupancy([(-box["center"][1], box["center"][0], 4.0, 1.0, math.pi / 2)], vad=False)
    official = official_single_coll(np.zeros((6, 2)), seg, vad=False)
    assert official.all() and s["collision_1s.uniad"]["value"] == 100.0
    assert s["collision_1s.stp3"]["value"] == 100.0 * official_single_coll(
        np.zeros((6, 2)), official_occupancy([(-box["center"][1], box["center"][0], 4.0, 1.0, math.pi / 2)], True),
        True)[:2].mean()
