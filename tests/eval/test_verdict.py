"""Zero-shot vs fine-tuned, said plainly: direction by the metric's own sense, a metric only one
variant computes, one verdict per benchmark, and the report's section listing them."""
from __future__ import annotations

from eval import report as report_mod
from eval.verdict import direction, summary, verdict


def test_direction_follows_the_metrics_sense():
    assert direction(0.0, 0.3, True) == "better" and direction(0.3, 0.0, True) == "worse"
    assert direction(2.0, 1.0, False) == "better" and direction(1.0, 2.0, False) == "worse"
    assert direction(0.5, 0.5, True) == "same"
    assert direction(0.0, 2.6e-13, True) == "same" and direction(2.0, 2.0005, False) == "same"  # dust
    assert direction(0.0, 2e-4, True) == "better" and direction(2.0, 2.003, False) == "worse"
    assert direction(None, 1.7, False) == "only {b} computed"
    assert direction(1.7, None, False) == "only {a} computed"
    assert direction(None, None, True) == "not computed"


def test_verdict_per_benchmark():
    assert verdict(["better", "not computed"]) == "improved"
    assert verdict(["only {b} computed", "not computed"]) == "improved"
    assert verdict(["better", "worse"]) == "mixed"
    assert verdict(["worse", "same"]) == "worse"
    assert verdict(["only {a} computed"]) == "worse"
    assert verdict(["same", "not computed"]) == "unchanged"
    assert verdict(["not computed"]) == "not comparable"


def _scores(values: dict[str, tuple]) -> dict:
    """scores.json of one variant: benchmark -> (L2 value, cider value)."""
    out = {}
    for name, (l2, cider) in values.items():
        out[name] = {"dataset": name, "split": "val", "samples": 4, "failures": 0,
                     "headline": [{"metric": "l2", "higher_is_better": False},
                                  {"metric": "cider", "higher_is_better": True}],
                     "metrics": {"l2": {"value": l2}, "cider": {"value": cider}}}
    return {"benchmarks": out}


def test_report_carries_the_comparison_and_says_which_improved():
    scores = {"zero_shot": _scores({"plan": (None, 0.0), "qa": (3.0, 0.5), "far": (2.0, 0.1)}),
              "fine_tuned": _scores({"plan": (1.25, 0.0), "qa": (3.5, 0.5), "far": (1.0, 0.4)})}
    groups = {"plan": "seen", "qa": "seen", "far": "unseen"}
    report = report_mod.build(scores, groups, {"benchmarks": {}}, ["plan", "qa", "far"])
    by = {b["benchmark"]: b["comparison"] for b in report["benchmarks"]}
    assert by["plan"]["verdict"] == "improved"
    assert by["plan"]["headline"][0] == {"metric": "l2", "higher_is_better": False, "zero_shot": None,
                                         "fine_tuned": 1.25, "difference": None,
                                         "direction": "only fine_tuned computed"}
    assert by["qa"]["verdict"] == "worse" and by["qa"]["headline"][0]["difference"] == 0.5
    assert by["far"]["verdict"] == "improved" and by["far"]["headline"][1]["difference"] == 0.30000000000000004
    lines = summary(report)
    assert lines[0].startswith("seen: fine_tuned improved on 1 of 2 benchmarks over zero_shot")
    assert "improved: plan" in lines[0] and "worse: qa" in lines[0]
    assert lines[1].startswith("unseen: fine_tuned improved on 1 of 1")
    md = report_mod.markdown(report, [])
    assert "## zero_shot vs fine_tuned" in md
    assert "| seen | qa | l2 (lower is better) | 3 | 3.5 | +0.5 | worse | WORSE |" in md


def test_one_variant_has_no_comparison():
    report = report_mod.build({"model": _scores({"qa": (1.0, 0.2)})}, {"qa": "seen"}, {"benchmarks": {}}, ["qa"])
    assert "comparison" not in report["benchmarks"][0]
    assert "vs" not in report_mod.markdown(report, []).split("## qa")[0].split("## Seen vs unseen")[1]


def test_comparison_plot_draws_dust_as_no_change():
    assert report_mod.symmetric_change(0.0, 2.6e-13) == 0.0 and report_mod.symmetric_change(1.0, 1.0) == 0.0
    assert report_mod.symmetric_change(0.0, 0.5) == 200.0 and report_mod.symmetric_change(2.0, 1.0) == -200.0 / 3
