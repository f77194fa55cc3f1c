"""What `make demo` prints at its end and puts on its page: the training loss from first to last
step (metrics.jsonl), and the evaluation's zero-shot vs fine-tuned verdicts (report.json)."""
from __future__ import annotations

import json

from demo.report import loss_summary, verdict_lines
from eval import report as report_mod


def test_loss_summary_from_metrics_jsonl(tmp_path):
    rows = [{"stage": 0, "global_step": 1, "train/loss": 5.5}, {"stage": 0, "global_step": 1, "val/loss": 5.4}]
    rows += [{"stage": 1, "global_step": s, "train/loss": loss} for s, loss in
             zip(range(2, 9), (5.0, 4.0, 3.0, 2.0, 2.5, 1.5, 1.0))]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = loss_summary(tmp_path)
    # last five: 3.0 2.0 2.5 1.5 1.0 -> 2.0, 36% of 5.5; validation rows are not training steps
    assert text == ("training loss over the run (8 optimizer steps): 5.5 at the first step, 1 at the last, "
                    "2 over the last 5: 36% of the start")
    assert loss_summary(tmp_path / "nowhere") == ""


def test_verdict_lines_from_report_json(tmp_path):
    def scores(value):
        return {"benchmarks": {"maplm": {"samples": 4, "failures": 0, "headline": [{"metric": "qns",
                                                                                   "higher_is_better": True}],
                                         "metrics": {"qns": {"value": value}}}}}

    report = report_mod.build({"zero_shot": scores(0.0), "fine_tuned": scores(75.0)}, {"maplm": "seen"},
                              {"benchmarks": {}}, ["maplm"])
    (tmp_path / "report.json").write_text(json.dumps(report))
    lines = verdict_lines(tmp_path)
    assert lines[0] == "seen: fine_tuned improved on 1 of 1 benchmarks over zero_shot (improved: maplm)."
    assert lines[1].split() == ["group", "benchmark", "headline", "metric", "zero_shot", "fine_tuned", "difference",
                                "direction", "verdict"]
    assert lines[2].split() == ["seen", "maplm", "qns", "(higher", "is", "better)", "0", "75", "+75", "better",
                                "IMPROVED"]
    assert verdict_lines(tmp_path / "nowhere") == []
