"""nuScenes-QA and MAPLM details by hand: the normalised answer's rules one at a time, what the
exact match compares, the per-type/hop keys and counts, and MAPLM's rows, options and frames."""
from __future__ import annotations

import pytest
from eval_helpers import row

from eval.metrics.qa import normalize_nuscenes_qa, score_maplm, score_nuscenes_qa


def qa(pred, answer, template_type="exist", hop=0, marker=""):
    return row(pred, [answer], marker=marker, meta={"template_type": template_type, "num_hop": hop})


@pytest.mark.parametrize("text, template_type, want", [
    ("Yes", "comparison", "yes"),
    ("ZERO cars", "count", "0"), ("ten", "count", "10"), ("There are 3 or 4", "count", "3"),
    ("two,three", "count", "2"),                        # punctuation splits words
    ("no, yes", "exist", "no"),                          # the earliest vocabulary answer in the text
    ("It is parked; moving later", "status", "parked"),
    ("the trucks and cars", "object", "truck"),          # plural "s"
    ("two buses", "object", "bus"),                      # plural "es"
    ("a construction vehicle", "object", "construction vehicle"),
    ("carpet", "object", "carpet"),                      # words, not substrings: no answer, the cleaned text
    ("  Hello,   World! ", "object", "hello world"),
    ("yes, a car", "object", "car"),                     # only the question type's kind of answer
    ("2 cars", "weird", "2"), ("a car, 2", "weird", "car"),   # unknown type: the whole vocabulary
    ("2 cars", "object", "car"),
])
def test_normalisation_rules(text, template_type, want):
    assert normalize_nuscenes_qa(text, template_type) == want


def test_exact_match_is_unstripped_and_reads_after_the_marker():
    rows = [qa("yes", "yes"), qa(" yes", "yes", hop=1), qa("Think... Answer: yes ", "yes", marker="Answer:"),
            qa("yes", "yes", marker="Answer:"), qa("2", 2, "count", 1)]     # a numeric reference is compared as text
    rows.append(qa("Answer: no", "yes", marker="Answer:"))
    empty = qa("", "yes")
    empty["prediction"] = []
    rows.append(empty)
    s = score_nuscenes_qa(rows, None)
    assert s["acc"] == {"value": pytest.approx(100 * 4 / 7), "n": 7, "status": "computed", "unit": "%",
                        "note": "exact match, as result_eval.py"}
    assert s["acc_normalized"]["value"] == pytest.approx(100 * 5 / 7)
    assert s["acc_normalized"]["note"] == "our variant: answer mapped onto the vocabulary"
    assert s["acc.hop.H1"] == {"value": pytest.approx(50.0), "n": 2, "status": "computed", "unit": "%"}
    assert s["acc.type.count"]["value"] == 100.0 and s["acc.type_hop.count_1"]["n"] == 1
    assert s["acc.type_hop.exist_0"]["n"] == 5 and s["acc.type_hop.exist_0"]["value"] == pytest.approx(60.0)
    assert sorted(k for k in s if k.startswith("acc.")) == [
        "acc.hop.H0", "acc.hop.H1", "acc.type.count", "acc.type.exist", "acc.type_hop.count_1", "acc.type_hop.exist_0",
        "acc.type_hop.exist_1"]
    assert score_nuscenes_qa([], None) == {"acc": {"value": None, "n": 0, "status": "not computed", "note": "no samples"},
                                           "acc_normalized": {"value": None, "n": 0, "status": "not computed",
                                                              "note": "no samples"}}


def maplm(frame, qtype, pred, options=None, answer_index=None, answer="", task="closed choice"):
    meta = {"maplm_frame": frame, "question_type": qtype, "answer": answer}
    if options is not None:
        meta.update(options=options, answer_index=answer_index)
    if task is not None:
        meta["qa_task"] = task
    return row(pred, ["ref"], meta=meta)


def test_maplm_rows_options_and_frames():
    lanes = ["1", "2", "3"]
    rows = [maplm("F1", "LAN", "Two, so 2.", lanes, 1),
            maplm("F1", "INT", "It is a Y-junction.", answer="y-JUNCTION", task=None),   # no options: answer text
            maplm("F2", "LAN", "3 lanes", lanes, 0),                                      # F2 is wrong
            maplm("F2", "QLT", "clear", ["Clear", "Worn"], None, answer="worn"),          # no answer index: text
            maplm("F3", "LAN", "1", lanes, 0),
            maplm("F3", "LAN", "It has 9 lanes.", lanes, 2, task="open"),                 # open questions: not scored
            maplm("F4", "SCN", "", answer="")]                                            # empty answer text: in any text
    s = score_maplm(rows, None)
    assert s["qns"] == {"value": pytest.approx(100 * 4 / 6), "n": 6, "status": "computed", "unit": "%"}
    assert s["frm"] == {"value": pytest.approx(100 * 3 / 4), "n": 4, "status": "computed", "unit": "%",
                        "note": "frames whose closed-choice questions are all right"}
    assert s["lan"]["value"] == pytest.approx(100 * 2 / 3) and s["lan"]["n"] == 3
    assert s["int"]["value"] == 100.0 and s["qlt"]["value"] == 0.0 and s["scn"]["value"] == 100.0
    assert set(s) == {"qns", "frm", "lan", "int", "qlt", "scn"}
    only_open = score_maplm([maplm("F1", "LAN", "1", lanes, 0, task="open")], None)
    assert only_open == {"qns": {"value": None, "n": 0, "status": "not computed", "note": "no closed-choice questions"}}


def test_the_exact_answer_is_after_the_last_marker_and_a_row_may_have_no_prompt():
    two = qa("Answer: no. Answer:  yes  now", "yes  now", marker="Answer:")     # after the LAST marker, stripped
    spaced = qa("Answer: two words", "two words", "count", marker="Answer:")      # not just the last word
    bare = qa("yes", "yes")
    del bare["prompt"]
    s = score_nuscenes_qa([two, spaced, bare], None)
    assert s["acc"]["value"] == 100.0


def test_maplm_options_without_an_index_or_an_index_without_options_use_the_answer_text():
    rows = [maplm("F1", "LAN", "nothing", ["A", "B"], None, answer="c"),       # no option matches, no index: wrong
            maplm("F2", "LAN", "it is c", None, None, answer="c")]
    rows[1]["sample"]["meta"]["answer_index"] = 0                             # an index but no options: the text
    s = score_maplm(rows, None)
    assert s["qns"]["value"] == 50.0 and s["frm"]["value"] == 50.0


def test_the_normalised_answer_is_read_after_the_marker_too():
    rows = [qa("No idea at first. Answer: yes", "yes", marker="Answer:"),       # "no" before the marker
            qa("Two or three? Answer: 3", "3", "count", marker="Answer:")]
    bare = qa("Yes.", "yes")
    del bare["prompt"]
    s = score_nuscenes_qa([*rows, bare], None)
    assert s["acc_normalized"]["value"] == 100.0
