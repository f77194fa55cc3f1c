"""DriveLM helpers by hand: coordinate reading, the greedy 16 px match and its F1, the graph
test, the judge's 0-100 reply parser and the answer the exact match sees."""
from __future__ import annotations

import pytest

from eval.metrics.drivelm import coordinates, in_graph, match_f1, rating_100, raw_answer


def test_coordinates_are_decimal_pairs_and_an_odd_one_is_dropped():
    assert coordinates("<c1,CAM_FRONT,100.5,200.0> and 3.0, 4.0 then 7.5").tolist() == [[100.5, 200.0], [3.0, 4.0]]
    assert coordinates("(10, 10)").shape == (0, 2)                 # integers are not coordinates


@pytest.mark.parametrize("pred, ref, f1", [
    ("(10.0, 10.0)", "(10.0, 25.9)", 1.0),                       # L1 15.9: a hit
    ("(10.0, 10.0)", "(10.0, 26.0)", 0.0),                       # L1 16: a miss (below 16 px only)
    ("(10.0, 10.0)", "(18.0, 17.9)", 1.0),                       # L1, not Euclidean: 8 + 7.9
    ("(10.0, 10.0)", "(18.0, 18.0)", 0.0),
    ("no points", "(1.0, 1.0)", 0.0),
    ("(1.0, 1.0)", "no points", 0.0),
])
def test_match_threshold_is_l1_below_16_px(pred, ref, f1):
    assert match_f1(pred, ref)[1] == pytest.approx(f1, abs=1e-6)


def test_match_is_greedy_nearest_and_each_reference_point_is_used_once():
    matched, f1 = match_f1("(0.0, 0.0) (1.0, 0.0) (100.0, 100.0)", "(1.0, 0.0) (20.0, 0.0) (101.0, 100.0) (5.0, 5.0)")
    # (0, 0) takes (1, 0); (1, 0) finds (5, 5) at L1 9; (100, 100) takes (101, 100): tp 3, fp 0, 4 references
    assert matched == [[1.0, 0.0], [5.0, 5.0], [101.0, 100.0]]
    assert f1 == pytest.approx(2 * 1.0 * 0.75 / 1.75, abs=1e-6)
    matched, f1 = match_f1("(0.0, 0.0) (0.5, 0.0)", "(1.0, 0.0)")
    assert matched == [[1.0, 0.0]] and f1 == pytest.approx(2 * 0.5 * 1.0 / 1.5, abs=1e-6)   # second is a false positive


def test_in_graph():
    graph = [[1.0, 2.0], [3.0, 4.0]]
    assert in_graph("Is <c1,CAM_FRONT,1.0,2.0> moving?", graph)
    assert not in_graph("Is <c1,CAM_FRONT,1.0,2.0> near <c2,CAM_BACK,5.0,6.0>?", graph)
    assert in_graph("No coordinates here.", graph)


@pytest.mark.parametrize("reply, want", [("62", 62.0), (" 78\n", 78.0), ("100", 100.0), ("7.5", 7.5),
                                         ("100.5", None), ("101", None), ("62 points", None), ("", None)])
def test_rating_100(reply, want):
    assert rating_100(reply) == want


def test_raw_answer_is_unstripped_unless_after_a_marker():
    assert raw_answer(" D\n", "") == " D\n"
    assert raw_answer("Reasoning. Answer: D \n", "Answer:") == "D"
    assert raw_answer("a: b: c", ":") == "c" and raw_answer("no marker", "Answer:") == "no marker"
