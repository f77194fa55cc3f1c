"""Talk2Car grounding by hand: eval.py's IoU on odd boxes, the strict `> t` thresholds on its
float grid, and what is counted (talk2car/Talk2Car eval.py `evaluate`, `jaccard`)."""
from __future__ import annotations

import pytest
from eval_helpers import row

from eval.metrics.grounding import iou, parse_box, score_grounding


def test_iou_of_contained_disjoint_inverted_and_empty_boxes():
    assert iou([0, 0, 10, 10], [2, 2, 4, 4]) == pytest.approx(4 / 100)
    assert iou([2, 2, 4, 4], [0, 0, 10, 10]) == pytest.approx(4 / 100)
    assert iou([0, 0, 10, 10], [0, 0, 10, 5]) == pytest.approx(0.5)
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0          # touching: no intersection
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert iou([10, 10, 0, 0], [0, 0, 10, 10]) == 0.0          # inverted: areas unclipped, no intersection
    assert iou([1, 1, 1, 1], [1, 1, 1, 1]) == 0.0              # union 0: divided by 1e-7, not by zero
    assert iou([0, 0, 4, 2], [1, -1, 3, 5]) == pytest.approx(4 / (8 + 12 - 4))   # x and y overlaps differ
    assert iou([0, 0, 10, 10], [0, 9.5, 10, 20]) == pytest.approx(5 / 200)          # half a pixel of overlap
    assert iou([0, 0, 10, 10], [0, 20, 10, 30]) == 0.0                              # x overlaps, y does not
    assert iou([0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]) == pytest.approx(1.0)            # sub-pixel boxes


def test_parse_box_reads_signed_decimals_and_the_first_box():
    assert parse_box("at [ -1.5, 2,3.25 , 4] then [0, 0, 1, 1]") == [-1.5, 2.0, 3.25, 4.0]
    assert parse_box("[1, 2, 3]") is None and parse_box("no box") is None


def _score(pairs):
    return score_grounding([row(p, [r]) for p, r in pairs], None)


def test_thresholds_are_strict_on_eval_py_float_grid():
    s = _score([("[0, 0, 10, 5]", "[0, 0, 10, 10]")])             # IoU exactly 0.5: not above 0.5
    assert s["ap50"]["value"] == 0.0 and s["ap50_95"]["value"] == 0.0
    assert s["mean_iou"]["value"] == pytest.approx(0.5)
    s = _score([("[0, 0, 10, 6]", "[0, 0, 10, 10]")])             # 0.6: above 0.5 and 0.55 only
    assert s["ap50"]["value"] == 100.0                             # (the grid's 0.6 is 0.6000000000000001)
    assert s["ap50_95"]["value"] == pytest.approx(100.0 * 2 / 10)
    s = _score([("[0, 0, 10, 10]", "[0, 0, 10, 10]")])
    assert s["ap50_95"]["value"] == pytest.approx(100.0)


def test_counts_failures_and_skips_rows_without_a_reference_box():
    s = _score([("[0, 0, 10, 10]", "[0, 0, 10, 10]"), ("the truck", "[0, 0, 10, 10]"),
                ("[0, 0, 10, 10]", "no reference box"), ("[0, 0, 10, 4]", "[0, 0, 10, 10]")])
    assert s["ap50"]["n"] == s["mean_iou"]["n"] == s["parse_failures"]["n"] == 3
    assert s["ap50"]["value"] == pytest.approx(100 / 3) and s["ap50"]["unit"] == "%"
    assert s["mean_iou"]["value"] == pytest.approx((1 + 0 + 0.4) / 3)
    assert s["parse_failures"]["value"] == 1 and s["parse_failures"]["unit"] == "samples"
    assert s["ap50"]["note"] == "1 answers without a box scored as IoU 0" == s["ap50_95"]["note"]
    assert s["ap50"]["status"] == "computed"
    empty = _score([("[0, 0, 1, 1]", "none")])
    assert empty == {"ap50": {"value": None, "n": 0, "status": "not computed", "note": "no sample with a reference box"}}
