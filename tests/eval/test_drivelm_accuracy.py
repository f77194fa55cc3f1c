"""DriveLM accuracy: exact equality, and the normalised variant that forgives case, spacing
and a final period, each difference on its own so dropping one rule turns a case red."""
from __future__ import annotations

import pytest
from eval_helpers import T1, drivelm_rows

from eval.metrics import ScoreContext
from eval.metrics.drivelm import score_drivelm
from eval.metrics.text import CocoText

# the two tag-0 (accuracy) questions of drivelm_rows are "Moving." and "Going straight."
OTHERS = (f"A white sedan {T1}.", "x", "No.", f"Watch {T1}.", "Stop.")


def accuracies(moving: str, straight: str) -> tuple[float, float]:
    preds = [OTHERS[0], moving, OTHERS[1], OTHERS[2], OTHERS[3], OTHERS[4], straight]
    s = score_drivelm(drivelm_rows(preds), ScoreContext("b", {}, text=CocoText(meteor=False)))
    return s["accuracy"]["value"], s["accuracy_normalized"]["value"]


@pytest.mark.parametrize("moving, straight, exact, normalised", [
    ("Moving.", "Going straight.", 1.0, 1.0),
    ("Moving", "Going straight.", 0.5, 1.0),             # only the final period differs
    ("Moving.", "Going straight", 0.5, 1.0),
    ("moving.", "Going straight.", 0.5, 1.0),            # only the case differs
    ("Moving.", "Going  straight.", 0.5, 1.0),           # only the spacing differs
    ("Moving.", "Going. straight", 0.5, 0.5),            # an inner period is kept
    ("Stopped.", "Turning left.", 0.0, 0.0),
])
def test_exact_and_normalised_accuracy(moving, straight, exact, normalised):
    assert accuracies(moving, straight) == (pytest.approx(exact), pytest.approx(normalised))
