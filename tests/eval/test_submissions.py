"""`python -m eval score`: other models' predictions in the official formats -> scores.json + report."""
from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval.cli import main
from eval.submissions import READERS, read_lingoqa


def lingo_parquet(path, n=4):
    rows = [{"question_id": f"q{i}", "segment_id": f"s{i % 2}", "images": [f"s{i % 2}/{k}.jpg" for k in range(5)],
             "question": f"Question {i}?", "answer": ans} for i in range(n) for ans in (f"Yes, car {i}.", f"car {i}")]
    pq.write_table(pa.Table.from_pylist(rows), path)


def lingo_csv(path, rows, cols=("question_id", "segment_id", "answer")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows(rows)


def test_lingoqa_join_on_question_and_segment(tmp_path):
    lingo_parquet(tmp_path / "val.parquet")
    lingo_csv(tmp_path / "p.csv", [("q0", "s0", "Yes."), ("q1", "s0", "wrong segment"), ("q2", "s0", "car 2"),
                                   ("q9", "s1", "nothing")])
    sub = read_lingoqa(tmp_path / "p.csv", tmp_path / "val.parquet")
    assert (sub.matched, sub.unanswered, sub.unmatched) == (2, 2, 2)
    assert sub.warnings and "2 of 4" in sub.warnings[0]
    assert [r["references"][0] for r in sub.rows] == [["Yes, car 0.", "car 0"], ["Yes, car 2.", "car 2"]]


def test_score_command_writes_scores_and_report(tmp_path, capsys):
    lingo_parquet(tmp_path / "val.parquet")
    lingo_csv(tmp_path / "p.csv", [(f"q{i}", f"s{i % 2}", f"car {i}") for i in range(3)])
    rc = main(["score", "lingoqa", "--predictions", str(tmp_path / "p.csv"), "--references",
               str(tmp_path / "val.parquet"), "--out", str(tmp_path / "D"), "--skip-meteor"])
    assert rc == 0
    scores = json.loads((tmp_path / "D" / "scores.json").read_text())
    b = scores["benchmarks"]["lingoqa"]
    assert b["submission"]["matched"] == 3 and b["submission"]["unanswered"] == 1 and b["samples"] == 3
    assert b["metrics"]["cider"]["value"] > 0 and b["metrics"]["lingo_judge"]["value"] is None
    assert "1 references unanswered" in (tmp_path / "D" / "report.md").read_text()


@pytest.mark.parametrize("bad", ["nothing matches", "no answer column", "not csv"])
def test_bad_predictions_are_one_line_exit_2(tmp_path, capsys, bad):
    lingo_parquet(tmp_path / "val.parquet")
    p = tmp_path / "p.csv"
    if bad == "nothing matches":
        lingo_csv(p, [("zz", "s0", "x")])
    elif bad == "no answer column":
        lingo_csv(p, [("q0", "s0")], cols=("question_id", "segment_id"))
    else:
        p.write_bytes(b"\xff\xfe\x00garbage")
    rc = main(["score", "lingoqa", "--predictions", str(p), "--references", str(tmp_path / "val.parquet"),
               "--out", str(tmp_path / "D"), "--skip-meteor"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_reader_and_bad_reference_exit_2(tmp_path, capsys):
    (tmp_path / "out.json").write_text("[]")
    assert main(["score", "drama", "--predictions", str(tmp_path / "out.json"), "--references",
                 str(tmp_path / "out.json"), "--out", str(tmp_path / "D")]) == 2
    (tmp_path / "test.json").write_text('{"s": {"nope": 1}}')
    assert main(["score", "drivelm", "--predictions", str(tmp_path / "out.json"), "--references",
                 str(tmp_path / "test.json"), "--out", str(tmp_path / "D")]) == 2
    assert set(READERS) >= {"lingoqa", "drivelm", "nuscenes_qa", "maplm", "bddx", "talk2car"}


def test_lingoqa_first_references_as_predictions_match_every_question(tmp_path):
    """Fixture twin of the real-file test below: each question answered with its first reference
    (rows in file order, two per question) matches every question with no warning, and BLEU-4 is
    1: a hypothesis equal to one reference has every n-gram precision 1 and, its length equal to
    that reference's, no brevity penalty (Papineni et al. 2002)."""
    refs = {f"q{i}": (f"s{i % 2}", [f"The ego car slows down for the {w} ahead.", f"It brakes for the {w}."])
            for i, w in enumerate(("bus", "cyclist", "red light", "queue"))}
    pq.write_table(pa.Table.from_pylist([
        {"question_id": q, "segment_id": s, "images": [f"{s}/{k}.jpg" for k in range(5)], "question": "Why?",
         "answer": a} for q, (s, answers) in refs.items() for a in answers]), tmp_path / "val.parquet")
    lingo_csv(tmp_path / "p.csv", [(q, s, answers[0]) for q, (s, answers) in refs.items()])
    sub = read_lingoqa(tmp_path / "p.csv", tmp_path / "val.parquet")
    assert (sub.matched, sub.unanswered, sub.unmatched, sub.warnings) == (4, 0, 0, [])
    assert [r["references"][0] for r in sub.rows] == [answers for _, answers in refs.values()]
    assert main(["score", "lingoqa", "--predictions", str(tmp_path / "p.csv"), "--references",
                 str(tmp_path / "val.parquet"), "--out", str(tmp_path / "D"), "--skip-meteor"]) == 0
    scores = json.loads((tmp_path / "D" / "scores.json").read_text())["benchmarks"]["lingoqa"]
    assert scores["samples"] == 4 and scores["metrics"]["bleu_4"]["value"] == pytest.approx(1.0, abs=1e-6)


def test_real_lingoqa_val(tmp_path, real_samples):
    val = real_samples / "lingoqa" / "val.parquet"
    table = pq.read_table(val).to_pylist()
    firsts = {r["question_id"]: r for r in reversed(table)}   # the first reference of each question
    lingo_csv(tmp_path / "p.csv", [(q, r["segment_id"], r["answer"]) for q, r in firsts.items()])
    sub = read_lingoqa(tmp_path / "p.csv", val)
    assert (sub.matched, sub.unanswered, sub.unmatched, sub.warnings) == (500, 0, 0, [])
    assert main(["score", "lingoqa", "--predictions", str(tmp_path / "p.csv"), "--references", str(val),
                 "--out", str(tmp_path / "D"), "--skip-meteor"]) == 0
    scores = json.loads((tmp_path / "D" / "scores.json").read_text())["benchmarks"]["lingoqa"]
    assert scores["metrics"]["bleu_4"]["value"] > 0.5    # each answer is one of its own references
