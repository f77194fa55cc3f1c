"""OmniDrive counterfactual classes: each class's words, and precision/recall counted by hand."""
from __future__ import annotations

import pytest
from eval_helpers import row

from eval.metrics.omnidrive import classes, score_counterfactual


@pytest.mark.parametrize("text, found", [
    ("It collides with the bus.", {"collision"}), ("A COLLISION follows.", {"collision"}),
    ("It would crash.", {"collision"}), ("The car gets hit.", {"collision"}),
    ("We run into the wall.", {"collision"}), ("It rear-ends the van.", {"collision"}),
    ("It passes a red traffic light.", {"red_light"}), ("It runs the red signal.", {"red_light"}),
    ("It ignores the traffic signal.", {"red_light"}), ("Running a red is bad.", {"red_light"}),
    ("It leaves the drivable area.", {"drivable_area"}), ("It goes off the road.", {"drivable_area"}),
    ("It is leaving the road.", {"drivable_area"}), ("Out of the road.", {"drivable_area"}),
    ("It mounts the curb.", {"drivable_area"}), ("Onto the sidewalk.", {"drivable_area"}),
    ("It crosses the lane boundary.", {"drivable_area"}),
    ("It would hit the curb at a red light.", {"collision", "drivable_area", "red_light"}),
    ("Nothing happens.", {"safe"}), ("A shitty road.", {"safe"}),      # words, not substrings
])
def test_each_class_by_its_words(text, found):
    assert classes(text) == found


def test_precision_and_recall_per_class_by_hand():
    def r(pred, ref, task="vqa.counterfactual"):
        return row(pred, [ref], task=task)

    rows = [r("It will crash.", "A collision."),                 # collision tp
            r("It will crash.", "Safe."),                        # collision fp, safe fn
            r("Safe.", "It runs the red light."),                # red_light fn, safe fp
            r("Safe.", "Safe."),                                 # safe tp
            r("It runs a red light.", "Safe.", task="vqa.other")]   # not a counterfactual: ignored
    s = score_counterfactual(rows, None)
    assert s["counterfactual.collision.precision"] == {"value": 50.0, "n": 2, "status": "computed", "unit": "%"}
    assert s["counterfactual.collision.recall"] == {"value": 100.0, "n": 1, "status": "computed", "unit": "%"}
    assert s["counterfactual.safe.precision"]["value"] == 50.0 and s["counterfactual.safe.precision"]["n"] == 2
    assert s["counterfactual.safe.recall"]["value"] == 50.0 and s["counterfactual.safe.recall"]["n"] == 2
    assert s["counterfactual.red_light.recall"]["value"] == 0.0 and s["counterfactual.red_light.recall"]["n"] == 1
    assert s["counterfactual.red_light.precision"] == {"value": None, "n": 0, "status": "not computed",
                                                       "note": "never predicted"}
    assert s["counterfactual.drivable_area.recall"] == {"value": None, "n": 0, "status": "not computed",
                                                        "note": "not in the references"}
    assert len(s) == 8
    assert score_counterfactual([r("x", "y", task="vqa.other")], None) == {
        "counterfactual.collision.recall": {"value": None, "n": 0, "status": "not computed",
                                            "note": "no counterfactual questions"}}
