"""The exact-overlap collision variant and the frame conversion of eval/metrics/planning.py,
against an independent oracle (matplotlib's path intersection on boxes built here from the
documented sizes) and values worked by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from test_metrics import STRAIGHT, car, ctx, plan_row

from eval.metrics.planning import box_corners, collisions, ego_corners, grid_collisions, overlap, score_planning, to_ego

# eval.md / UniAD: the ego box is 4.084 m x 1.85 m, its centre 0.5 m ahead of the waypoint
HALF_L, HALF_W, AHEAD = 4.084 / 2, 1.85 / 2, 0.5


def test_lidar_frame_points_turn_into_the_ego_frame():
    lidar = np.array([[1.0, 2.0], [-3.0, 5.0]])          # x right, y forward
    assert to_ego(lidar, "lidar_xright_yfwd").tolist() == [[2.0, -1.0], [5.0, 3.0]]   # x forward, y left
    assert to_ego(lidar, "ego_xfwd_yleft") is lidar


def test_ego_box_by_hand():
    assert ego_corners(1.0, 2.0) == pytest.approx(np.array(
        [[1 - HALF_L + AHEAD, 2 - HALF_W], [1 + HALF_L + AHEAD, 2 - HALF_W],
         [1 + HALF_L + AHEAD, 2 + HALF_W], [1 - HALF_L + AHEAD, 2 + HALF_W]]))


UNIT = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def diamond(cx, cy, r):
    return np.array([[cx + r, cy], [cx, cy + r], [cx - r, cy], [cx, cy - r]])


def test_overlap_touching_separated_and_only_diagonally_separated():
    right = UNIT + [1.0, 0.0]                              # shares the edge x = 1: touching counts
    assert overlap(UNIT, right) and overlap(right, UNIT)
    far = UNIT + [1.5, 0.0]
    assert not overlap(UNIT, far) and not overlap(far, UNIT)
    # x and y projections overlap, only the diamond's own edge normal (1, 1) separates:
    # its nearest edge lies on x + y = 2.2, the square's corner on x + y = 2
    gap = diamond(1.25, 1.25, 0.3)
    assert not overlap(UNIT, gap) and not overlap(gap, UNIT)
    assert overlap(UNIT, diamond(1.1, 1.1, 0.3))           # edge on x + y = 1.9: the corner is inside
    assert overlap(UNIT, diamond(0.5, 0.5, 0.1)) and overlap(diamond(0.5, 0.5, 0.1), UNIT)   # inside


def _oracle_box(cx, cy, w, length, yaw):
    c, s = math.cos(yaw), math.sin(yaw)
    local = [(length / 2, w / 2), (-length / 2, w / 2), (-length / 2, -w / 2), (length / 2, -w / 2)]
    return [(cx + c * x - s * y, cy + s * x + c * y) for x, y in local]


def _oracle_ego(x, y):
    x0, x1 = x - HALF_L + AHEAD, x + HALF_L + AHEAD
    return [(x0, y - HALF_W), (x1, y - HALF_W), (x1, y + HALF_W), (x0, y + HALF_W)]


def _closed(corners):
    return MplPath(corners + corners[:1], closed=True)


def test_exact_collisions_equal_a_polygon_intersection_oracle():
    rng = np.random.default_rng(7)
    hits = misses = 0
    for _ in range(120):
        cx, cy = rng.uniform(-2, 14), rng.uniform(-4, 4)
        w, length, yaw = rng.uniform(0.5, 2.5), rng.uniform(0.5, 5.0), rng.uniform(-math.pi, math.pi)
        traj = np.cumsum(rng.uniform([0.5, -0.6], [2.5, 0.6], size=(6, 2)), axis=0)
        box = {"center": [cx, cy, 0.0], "size_wlh": [w, length, 1.5], "yaw": yaw}
        assert box_corners(box) == pytest.approx(np.array(_oracle_box(cx, cy, w, length, yaw)))
        got = collisions(traj, [box_corners(box)])
        obstacle = _closed(_oracle_box(cx, cy, w, length, yaw))
        want = [_closed(_oracle_ego(x, y)).intersects_path(obstacle, filled=True) for x, y in traj]
        assert got.dtype == bool and got.tolist() == want
        hits, misses = hits + sum(want), misses + len(want) - sum(want)
    assert hits > 50 and misses > 50                       # both outcomes are exercised
    assert collisions(np.array([[0.0, 0.0]]), []).tolist() == [False]


def test_exact_collision_rates_by_hand():
    # the car spans x 6..10, y -1..1; the ego box at waypoint x spans x - 1.542 .. x + 2.542:
    # steps 2..5 (x = 4..10) overlap it, steps 1 and 6 do not; the ground truth (y = 6) never does
    gt_left = [[x, 6.0] for x, _ in STRAIGHT]
    s = score_planning([plan_row(STRAIGHT, gt_xy=gt_left, objects=[car(8.0, 0.0)])], ctx())
    assert [s[f"collision_exact_{t}s.uniad"]["value"] for t in (1, 2, 3)] == pytest.approx([100.0, 100.0, 0.0])
    assert [s[f"collision_exact_{t}s.stp3"]["value"] for t in (1, 2, 3)] == pytest.approx([50.0, 75.0, 400 / 6])
    assert s["collision_exact_avg.stp3"]["value"] == pytest.approx((50 + 75 + 400 / 6) / 3)
    assert "exact rectangle overlap" in s["collision_exact_1s.uniad"]["note"]
    # 5 cm beside the path the exact variant sees no collision
    s = score_planning([plan_row(STRAIGHT, gt_xy=gt_left, objects=[car(8.0, 1.0 + HALF_W + 0.05)])], ctx())
    assert s["collision_exact_avg.uniad"]["value"] == 0.0 and s["collision_exact_avg.stp3"]["value"] == 0.0


def test_a_lidar_frame_plan_collides_where_its_ego_frame_twin_does():
    """The same plan and ground truth written in the LiDAR frame score as in the ego frame."""
    gt_left = [[x, 6.0] for x, _ in STRAIGHT]
    ego = score_planning([plan_row(STRAIGHT, gt_xy=gt_left, objects=[car(8.0, 0.0)])], ctx())
    as_lidar = [[-y, x] for x, y in STRAIGHT]
    r = plan_row(as_lidar, gt_xy=[[-y, x] for x, y in gt_left], objects=[car(8.0, 0.0)])
    r["sample"]["trajectory"]["frame"] = "lidar_xright_yfwd"
    lidar = score_planning([r], ctx())
    keys = [k for k in ego if k.startswith(("collision", "l2"))]
    assert [lidar[k]["value"] for k in keys] == pytest.approx([ego[k]["value"] for k in keys])
    assert lidar["collision_exact_1s.uniad"]["value"] == 100.0


def test_rows_without_prediction_prompt_or_frame_and_short_ground_truth():
    gt_left = [[x, 6.0] for x, _ in STRAIGHT]
    bare = plan_row(STRAIGHT, gt_xy=gt_left, objects=[car(8.0, 0.0)])
    del bare["prompt"], bare["sample"]["trajectory"]["frame"]     # no marker, frame defaults to ego
    empty = plan_row(STRAIGHT)
    empty["prediction"] = []                                       # no reply at all: a parse failure
    short = plan_row(STRAIGHT, gt_xy=STRAIGHT[:5], valid=[True] * 5)   # 5 ground-truth points: excluded
    s = score_planning([bare, empty, short], ctx())
    assert s["parse_failures"]["value"] == 1 and s["parse_failures"]["n"] == 2
    assert s["excluded_incomplete_gt"]["value"] == 1 and s["excluded_incomplete_gt"]["n"] == 3
    assert s["collision_exact_1s.uniad"]["value"] == 100.0 and s["collision_1s.uniad"]["value"] == 100.0


def test_a_step_where_the_ground_truth_collides_too_is_no_exact_collision():
    s = score_planning([plan_row(STRAIGHT, gt_xy=STRAIGHT, objects=[car(8.0, 0.0)])], ctx())
    assert s["collision_exact_avg.uniad"]["value"] == 0.0 and s["collision_exact_avg.stp3"]["value"] == 0.0


def test_entries_carry_units_and_notes():
    gt_left = [[x, 6.0] for x, _ in STRAIGHT]
    s = score_planning([plan_row(STRAIGHT, gt_xy=gt_left, objects=[car(8.0, 0.0)]), plan_row(None, text="?")], ctx())
    label = "UniAD (value at t; collision with vehicles)"
    note = f"{label}; 1 unparsable predictions excluded (see parse_failure_rate)"
    static = "; static key-frame boxes (approximation, docs/evaluation.md)"
    for key in ("l2_1s.uniad", "l2_3s.uniad", "l2_avg.uniad"):
        assert (s[key]["unit"], s[key]["note"], s[key]["n"]) == ("m", note, 1)
    assert s["collision_2s.uniad"]["note"] == f"{note}; official BEV grid (uniad){static}"
    assert s["collision_exact_avg.uniad"]["note"] == f"{note}; exact rectangle overlap, no grid (our variant){static}"
    assert s["collision_avg.uniad"]["unit"] == "%" == s["collision_exact_2s.uniad"]["unit"]
    assert "official BEV grid (vad)" in s["collision_1s.stp3"]["note"]
    no_boxes = score_planning([plan_row(STRAIGHT)], ctx())
    for key in ("collision_1s", "collision_3s", "collision_avg", "collision_exact_2s", "collision_exact_avg"):
        for protocol in ("uniad", "stp3"):
            assert no_boxes[f"{key}.{protocol}"] == {"value": None, "n": 1, "status": "not computed",
                                                     "note": "the samples carry no 3D object boxes"}


def _occupied(row, col):
    occ = np.zeros((200, 200))
    occ[row, col] = 1.0
    return occ


def test_grid_cells_beyond_the_grid_are_clipped_onto_its_edges():
    """evaluate_single_coll clips the ego cells to the 200 x 200 grid. UniAD grid: row = x / 0.5
    + 97..104 (x forward), col = -y / 0.5 + 98..101 (y left): 500 m out lands on an edge."""
    def hits(x, y, row, col):
        return grid_collisions(np.array([[x, y]] * 6), _occupied(row, col), "uniad").tolist() == [True] * 6

    assert hits(500.0, 0.0, 199, 100) and not hits(500.0, 0.0, 198, 100)
    assert hits(-500.0, 0.0, 0, 100) and not hits(-500.0, 0.0, 1, 100)
    assert hits(0.0, -500.0, 100, 199) and not hits(0.0, -500.0, 100, 198)
    assert hits(0.0, 500.0, 100, 0) and not hits(0.0, 500.0, 100, 1)


def test_grid_cells_come_from_float32_waypoints_as_in_the_official_tensors():
    """25 - 1e-9 m is 25.0 in float32: rows 147..154; in float64 it would truncate to 146..153."""
    occ = _occupied(154, 100)
    assert grid_collisions(np.array([[25.0 - 1e-9, 0.0]] * 6), occ, "uniad").all()
    assert not grid_collisions(np.array([[24.9, 0.0]] * 6), occ, "uniad").any()
