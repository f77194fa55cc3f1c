"""The scorer registry and the two kinds of entries every metric returns."""
from __future__ import annotations

import pytest

from eval.metrics import SCORERS
from eval.metrics.core import COMPUTED, NOT_COMPUTED, ScoreContext, missing, scorer, value


def test_entries_are_plain_dicts_with_float_value_int_n_and_status():
    v = value(3, 2.0, unit="%", note="n")
    assert v == {"value": 3.0, "n": 2, "status": "computed", "unit": "%", "note": "n"}
    assert type(v["value"]) is float and type(v["n"]) is int and COMPUTED == "computed"
    assert missing("no judge") == {"value": None, "n": 0, "status": "not computed", "note": "no judge"}
    m = missing("why", 4.0, failures=4)
    assert m == {"value": None, "n": 4, "status": NOT_COMPUTED, "note": "why", "failures": 4}
    assert type(m["n"]) is int and NOT_COMPUTED == "not computed"


def test_a_scorer_registers_once_under_its_name():
    name = "test_core_mutants_scorer"

    @scorer(name)
    def fn(rows, ctx):
        return {}

    try:
        assert SCORERS[name] is fn
        with pytest.raises(ValueError, match=f"scorer '{name}' registered twice"):
            scorer(name)(lambda rows, ctx: {})
        assert SCORERS[name] is fn
    finally:
        del SCORERS[name]
    for known in ("planning", "nuscenes_qa", "maplm", "drivelm", "grounding", "nuinstruct", "counterfactual", "text"):
        assert known in SCORERS


def test_score_context_defaults():
    c = ScoreContext("b")
    assert (c.benchmark, c.args, c.judge, c.lingo_judge, c.text, c.cache) == ("b", {}, None, None, None, None)
    assert ScoreContext("b").args is not c.args
