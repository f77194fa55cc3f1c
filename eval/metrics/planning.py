"""Open-loop planning: L2 and collision at 1, 2 and 3 s under the UniAD and the ST-P3 protocols.

Both read 6 waypoints every 0.5 s (eval.md section 1.11). Per step k the L2 error is the
distance between predicted and ground-truth waypoint; per protocol, at horizon t seconds:
- UniAD (OpenDriveLab/UniAD planning_metrics.py): the value **at** step 2t;
- ST-P3 (OpenDriveLab/ST-P3 stp3/metrics.py, as VAD and OpenDriveVLA print it): the **mean**
  of the per-step values over steps 1..2t.
"avg" is the mean of the 1/2/3 s values. Collision (a percentage, `collision_*`) is the
official `obj_box_col` on each protocol's own 200 x 200 BEV grid of 0.5 m cells (LiDAR
frame, x right, y forward): obstacle corners rounded to cells and filled with cv2.fillPoly
(UniAD's occflow_label.py; VAD's metric_stp3.py, which flips the rows), the ego box
(4.084 m x 1.85 m, 0.5 m ahead of the waypoint) as skimage's polygon cells of that box
shifted by the waypoint and truncated to cells (8 x 4), clipped to the grid. A step where
the ground-truth trajectory itself collides counts as no collision and stays in the
denominator. UniAD counts vehicles only; ST-P3/VAD vehicles and pedestrians.
`collision_exact_*` is our variant: exact rectangle overlap (separating axes), no grid.

Approximations (docs/evaluation.md): the official scripts rasterise the obstacles' future
boxes; here the obstacles are the sample's own `objects` (3D boxes of the key frame, in
the ego frame) held where they are for the 3 s (a static world), and the ego frame stands
in for the LiDAR frame (no mounting offset). Samples
whose ground-truth future is incomplete are left out and counted (UniAD keeps them with
masked steps). A prediction without 6 parsable waypoints is a failure: counted and
reported as `parse_failure_rate`, never dropped silently; L2 and collision are over the
parsed predictions.
"""
from __future__ import annotations

import math

import numpy as np

from dataengine.waypoints import parse_waypoints
from eval.metrics.core import missing, scorer, value
from eval.prompting import extract_answer

STEPS = 6
HORIZONS = (1, 2, 3)
EGO_LENGTH, EGO_WIDTH, EGO_OFFSET = 4.084, 1.85, 0.5
PROTOCOLS = {
    "uniad": {"label": "UniAD (value at t; collision with vehicles)", "classes": ("vehicle.",), "grid": "uniad"},
    "stp3": {"label": "ST-P3 (mean over steps up to t; collision with vehicles and pedestrians)",
             "classes": ("vehicle.", "human.pedestrian."), "grid": "vad"},
}


def to_ego(xy: np.ndarray, frame: str) -> np.ndarray:
    """Points in the ego frame (x forward, y left) from the trajectory's frame."""
    if frame == "lidar_xright_yfwd":
        return np.stack([xy[:, 1], -xy[:, 0]], axis=1)
    return xy


def ego_corners(x: float, y: float) -> np.ndarray:
    hx, hy = EGO_LENGTH / 2, EGO_WIDTH / 2
    return np.array([[x - hx + EGO_OFFSET, y - hy], [x + hx + EGO_OFFSET, y - hy],
                     [x + hx + EGO_OFFSET, y + hy], [x - hx + EGO_OFFSET, y + hy]])


def box_corners(box: dict) -> np.ndarray:
    """BEV footprint of a 3D box {center, size_wlh, yaw}: length along the heading."""
    (cx, cy), (w, ln), yaw = box["center"][:2], box["size_wlh"][:2], box["yaw"]
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[ln / 2, w / 2], [-ln / 2, w / 2], [-ln / 2, -w / 2], [ln / 2, -w / 2]])
    return local @ np.array([[c, s], [-s, c]]) + np.array([cx, cy])


def overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Convex polygons overlap unless some edge normal separates them."""
    for poly in (a, b):
        for i in range(len(poly)):
            edge = poly[(i + 1) % len(poly)] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def collisions(traj: np.ndarray, obstacles: list[np.ndarray]) -> np.ndarray:
    """Per step: does the ego box at that waypoint overlap any obstacle footprint."""
    return np.array([any(overlap(ego_corners(x, y), o) for o in obstacles) for x, y in traj], dtype=bool)


GRID, CELL, START = 200, 0.5, -49.75            # 100 m x 100 m, cell centres from -49.75 m
# skimage.draw.polygon of the ego box in cell units: rows (length, 0.5 m ahead) 97..104, cols 98..101
_EGO_ROWS = np.arange(math.ceil((-EGO_LENGTH / 2 + EGO_OFFSET - START) / CELL),
                      math.floor((EGO_LENGTH / 2 + EGO_OFFSET - START) / CELL) + 1)
_EGO_COLS = np.arange(math.ceil((-EGO_WIDTH / 2 - START) / CELL), math.floor((EGO_WIDTH / 2 - START) / CELL) + 1)
EGO_RR, EGO_CC = (a.ravel() for a in np.meshgrid(_EGO_ROWS, _EGO_COLS, indexing="ij"))


def to_lidar(xy: np.ndarray) -> np.ndarray:
    """Ego frame (x forward, y left) -> the official scripts' LiDAR axes (x right, y forward)."""
    return np.stack([-xy[:, 1], xy[:, 0]], axis=1)


def occupancy(footprints: list[np.ndarray], grid: str) -> np.ndarray:
    """The obstacles' BEV grid: corners (ego frame) rounded to cells, filled by cv2.fillPoly.
    uniad: row = y forward, col = x right (occflow_label.py); vad: row = -y (metric_stp3.py)."""
    import cv2

    occ = np.zeros((GRID, GRID))
    for corners in footprints:
        lidar = to_lidar(corners)
        if grid == "vad":
            lidar = lidar * np.array([1.0, -1.0])
        pts = np.round((lidar - START + CELL / 2.0) / CELL).astype(np.int32)
        cv2.fillPoly(occ, [pts], 1.0)
    return occ


def grid_collisions(traj: np.ndarray, occ: np.ndarray, grid: str) -> np.ndarray:
    """Per step, `evaluate_single_coll`: any ego cell occupied (cells clipped to the grid first)."""
    lidar = to_lidar(traj).astype(np.float32) / np.float32(CELL)      # the official tensors are float32
    rows = lidar[:, 1:2] + EGO_RR
    if grid == "vad":
        rows = GRID - rows
    r = np.clip(rows.astype(np.int32), 0, GRID - 1)
    c = np.clip((lidar[:, 0:1] + EGO_CC).astype(np.int32), 0, GRID - 1)
    return np.array([occ[r[t], c[t]].any() for t in range(len(traj))], dtype=bool)


def obstacles(objects: list[dict], classes: tuple[str, ...]) -> list[np.ndarray]:
    return [box_corners(o["box_3d"]) for o in objects or []
            if "box_3d" in o and str(o.get("category", "")).startswith(classes)]


def horizon_value(per_step: np.ndarray, t: int, protocol: str) -> float:
    """per_step: (samples, 6). UniAD: mean over samples at step 2t; ST-P3: mean over steps 1..2t."""
    if protocol == "uniad":
        return float(per_step[:, 2 * t - 1].mean())
    return float(per_step[:, :2 * t].mean())


def parse_plan(row: dict) -> np.ndarray | None:
    """The first 6 waypoints of the (last) answer, or None when there are fewer."""
    last = row["prediction"][-1] if row["prediction"] else ""
    text = extract_answer(last, row.get("prompt", {}).get("answer_marker", ""))
    points = parse_waypoints(text)
    return np.array(points[:STEPS], dtype=float) if len(points) >= STEPS else None


def _gt(row: dict) -> tuple[np.ndarray, str] | None:
    traj = row["sample"].get("trajectory")
    if not traj or len(traj["xy"]) < STEPS or not all(traj["valid"][:STEPS]):
        return None
    return np.array(traj["xy"][:STEPS], dtype=float), traj.get("frame", "ego_xfwd_yleft")


@scorer("planning")
def score_planning(rows: list[dict], ctx) -> dict:
    rows = [r for r in rows if r["task"].startswith("planning")]
    preds, gts, objs = [], [], []
    failures = excluded = 0
    for row in rows:
        gt = _gt(row)
        if gt is None:
            excluded += 1
            continue
        pred = parse_plan(row)
        if pred is None:
            failures += 1
            continue
        preds.append(to_ego(pred, gt[1]))
        gts.append(to_ego(gt[0], gt[1]))
        objs.append(row["sample"].get("objects"))
    scored = failures + len(preds)
    rate = value(100.0 * failures / scored, scored, unit="%") if scored else missing("no samples")
    out = {"parse_failures": value(failures, scored, unit="samples"), "parse_failure_rate": rate,
           "excluded_incomplete_gt": value(excluded, len(rows), unit="samples")}
    if not preds:
        return {**out, **{f"{m}.{p}": missing("no parsable prediction", scored) for p in PROTOCOLS
                          for m in [f"l2_{t}s" for t in HORIZONS] + ["l2_avg"]}}
    errors = np.linalg.norm(np.stack(preds) - np.stack(gts), axis=2)
    for protocol, spec in PROTOCOLS.items():
        out.update(_protocol_entries(protocol, spec, errors, preds, gts, objs, failures))
    return out


def _protocol_entries(protocol, spec, errors, preds, gts, objs, failures) -> dict:
    n = len(preds)
    note = f"{spec['label']}; {failures} unparsable predictions excluded (see parse_failure_rate)"
    out = {}
    l2 = [horizon_value(errors, t, protocol) for t in HORIZONS]
    for t, v in zip(HORIZONS, l2):
        out[f"l2_{t}s.{protocol}"] = value(v, n, unit="m", note=note)
    out[f"l2_avg.{protocol}"] = value(sum(l2) / 3, n, unit="m", note=note)
    if not any(o for o in objs):
        for key in [f"collision_{t}s" for t in HORIZONS] + ["collision_avg"]:
            for k in (key, key.replace("collision", "collision_exact")):
                out[f"{k}.{protocol}"] = missing("the samples carry no 3D object boxes", n)
        return out
    grid, exact = np.zeros((n, STEPS)), np.zeros((n, STEPS))
    for i, (p, g, o) in enumerate(zip(preds, gts, objs)):
        obs = obstacles(o, spec["classes"])
        occ = occupancy(obs, spec["grid"])
        grid[i] = grid_collisions(p, occ, spec["grid"]) & ~grid_collisions(g, occ, spec["grid"])
        exact[i] = collisions(p, obs) & ~collisions(g, obs)
    static = "; static key-frame boxes (approximation, docs/evaluation.md)"
    for name, col, how in (("collision", grid, f"official BEV grid ({spec['grid']})"),
                           ("collision_exact", exact, "exact rectangle overlap, no grid (our variant)")):
        rates = [100.0 * horizon_value(col, t, protocol) for t in HORIZONS]
        cnote = f"{note}; {how}{static}"
        for t, v in zip(HORIZONS, rates):
            out[f"{name}_{t}s.{protocol}"] = value(v, n, unit="%", note=cnote)
        out[f"{name}_avg.{protocol}"] = value(sum(rates) / 3, n, unit="%", note=cnote)
    return out
