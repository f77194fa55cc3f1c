"""NuInstruct per-subtask metrics by hand: which metric each subtask gets, what a failure is,
MAE and point distance, word accuracy, the object F1, and the entries' units and counts."""
from __future__ import annotations

import pytest
from eval_helpers import row
from test_metrics import ctx

from eval.metrics.nuinstruct import kind_of, score_nuinstruct


def r(subtask, pred, ref):
    return row(pred, [ref], meta={"subtask": subtask})


@pytest.mark.parametrize("subtask, kind", [
    ("perception-distance", "mae"), ("perception-speed", "mae"), ("perception-instance_count", "mae"),
    ("prediction-motion_ego", "point"), ("prediction-motion_other", "point"), ("perception-closest", "accuracy"),
    ("perception-status", "accuracy"), ("perception-in_the_same_road", "accuracy"),
    ("planning-status_ego", "accuracy"), ("planning-status_others", "accuracy"), ("reasoning-reasoning", "text"),
    ("risk-overtaking", "objects"), ("risk-anything", "objects"), ("perception-unknown", "text"), ("risk", "objects"),
])
def test_each_subtask_gets_its_metric(subtask, kind):
    assert kind_of(subtask) == kind


def test_mae_point_accuracy_and_f1_by_hand():
    s = score_nuinstruct([
        r("perception-speed", "about -1.5 m/s then 9", "2.5"),            # first numbers: |-1.5 - 2.5| = 4
        r("perception-speed", "3", "2.5 or 7"),                            # 0.5
        r("perception-speed", "fast", "2"),                                # failure
        r("prediction-motion_other", "(1.0, 1.0)", "(4.0, 5.0)"),          # 5
        r("prediction-motion_other", "(1.0)", "(4.0, 5.0)"),               # one number: failure
        r("prediction-motion_other", "(1.0, 2.0)", "(4.0)"),               # reference without a point: failure
        r("perception-closest", "The  CAR!", "the car"),                   # words only: right
        r("perception-closest", "the car ahead", "the car"),               # wrong
        r("risk-braking", "Car [CAM_FRONT, 1, 2, 3, 4] and bus[c2,0,0,1,1]", "car[cam_front, 0, 0, 1, 1]"),
        r("risk-cutin", "none", "none"),                                   # both empty: F1 1
        r("risk-merge", "car[c1, 1, 2, 3, 4]", "none"),                    # F1 0
    ], ctx())
    speed = s["perception-speed.mae"]
    assert speed == {"value": pytest.approx(2.25), "n": 2, "status": "computed", "unit": "", "failures": 1}
    motion = s["prediction-motion_other.mae"]
    assert motion == {"value": pytest.approx(5.0), "n": 1, "status": "computed", "unit": "m", "failures": 2}
    closest = s["perception-closest.accuracy"]
    assert closest == {"value": pytest.approx(50.0), "n": 2, "status": "computed", "unit": "%", "failures": 0}
    assert s["risk-braking.f1"]["value"] == pytest.approx(100 * 2 * 1 / 3) and s["risk-braking.f1"]["unit"] == "%"
    assert s["risk-cutin.f1"]["value"] == 100.0 and s["risk-merge.f1"]["value"] == 0.0
    assert s["parse_failures"] == {"value": 3.0, "n": 11, "status": "computed", "unit": "samples"}


def test_a_subtask_without_any_number_is_not_computed_and_text_gives_bleu_4_only():
    s = score_nuinstruct([r("perception-distance", "far", "12.5"), r("perception-distance", "near", "3"),
                          r("reasoning-reasoning", "The car stops for the light.", "The car stops at the red light."),
                          r("reasoning-reasoning", "It turns left.", "It turns left here.")], ctx())
    assert s["perception-distance.mae"] == {"value": None, "n": 2, "status": "not computed",
                                            "note": "2 answers without the needed numbers", "failures": 2}
    assert s["parse_failures"]["value"] == 2 and s["parse_failures"]["n"] == 2
    text = [k for k in s if k.startswith("reasoning")]
    assert text == ["reasoning-reasoning.bleu_4"]
    assert s["reasoning-reasoning.bleu_4"]["n"] == 2 and 0 < s["reasoning-reasoning.bleu_4"]["value"] < 1
