"""DriveLM helpers by hand: coordinate reading, the greedy 16 px match and its F1, the graph
test, the judge's 0-100 reply parser and the answer the exact match sees."""
from __future__ import annotations

import pytest
from eval_helpers import T1, T2, ScriptedJudge, drivelm_rows, row

from eval.judge import template_record
from eval.metrics.core import ScoreContext
from eval.metrics.drivelm import (
    GPT_SYSTEM,
    GPT_USER,
    QA,
    assign_tags,
    coordinates,
    frame_qas,
    in_graph,
    match_f1,
    rating_100,
    raw_answer,
    score_drivelm,
)


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
    assert raw_answer("Answer: turn left ", "Answer:") == "turn left"


def test_every_false_positive_counts():
    # tp 1, fp 2, one reference point: precision 1/3, recall 1
    _, f1 = match_f1("(0.0, 0.0) (100.0, 100.0) (200.0, 200.0)", "(0.0, 0.0)")
    assert f1 == pytest.approx(2 * (1 / 3) / (4 / 3), abs=1e-6)


# ---------------------------------------------------------------- which QAs count, and the scores
# extract_data.py and evaluation.py of OpenDriveLab/DriveLM (challenge/, commit 046920057779):
# the picks per frame, the graph filter and
# final = 0.4 chatgpt/100 + 0.2 language + 0.2 match/100 + 0.2 accuracy, with
# language = sum(BLEU-1..4)/4/3 + ROUGE-L/3 + CIDEr/10/3 (the order CocoEvaluator returns them).

class FixedText:
    """CocoText's interface with fixed corpus scores (the COCO metrics are tested in test_text_mutants.py)."""

    SCORES = {"bleu_1": 0.6, "bleu_2": 0.48, "bleu_3": 0.36, "bleu_4": 0.24, "rouge_l": 0.6, "cider": 1.5,
              "meteor": 0.3}

    def __init__(self):
        self.calls = []

    def score(self, corpora):
        self.calls.append(corpora)
        return {name: dict(self.SCORES) for name, (hyps, _) in corpora.items() if hyps}


def qa(group, index, question="q", answer="a", prediction="p", tags=(), order=None):
    return QA(group, index, question, answer, prediction, tags, order)


def picks(qas, objects):
    return [(q.group, q.index, q.tag) for q in assign_tags(qas, objects)]


def test_qa_tag_is_the_last_one():
    assert qa("behavior", 0, tags=(3, 0)).tag == 0 and qa("behavior", 0).tag is None


def test_perception_picks_first_answer_naming_every_class_and_the_moving_status_question():
    objects = [{"description": "Black Car. Parked on the left.", "tag": "<c1,CAM_FRONT,1.0,2.0>"},
               {"tag": "<c2,CAM_BACK,3.0,4.0>"}]               # no description: class "" is in every answer
    qas = [qa("perception", 0, answer="A black car. parked"),      # "black car" yes; second sentence not needed
           qa("perception", 1, answer="A BLACK CAR."),
           qa("perception", 2, "WHAT IS THE MOVING STATUS OF OBJECT <c1>?")]
    assert picks(qas, objects)[:2] == [("perception", 0, 2), ("perception", 2, 0)]
    qas[0] = qa("perception", 0, answer="A car.")
    assert picks(qas, objects)[:2] == [("perception", 1, 2), ("perception", 2, 0)]
    assert picks([qa("perception", 0, answer="nothing")], []) == [("perception", 0, 2)]   # no objects: all() holds


def test_prediction_picks_first_answer_with_every_tag_and_first_yes_or_no_substring():
    objects = [{"description": "Car.", "tag": "<c1,CAM_FRONT,1.0,2.0>"}, {"description": "Bus."}]   # no tag: ""
    qas = [qa("prediction", 0, answer="Watch <c1,CAM_FRONT,1.0,2.0>."),
           qa("prediction", 1, answer="It is unKNOWn."),            # "no" inside "unknown" counts
           qa("prediction", 2, answer="YES")]
    assert picks(qas, objects) == [("prediction", 0, 3), ("prediction", 1, 0)]
    qas = [qa("prediction", 0, answer="<C1,cam_front,1.0,2.0>"), qa("prediction", 1, answer="Yes.")]
    assert picks(qas, objects) == [("prediction", 0, 3), ("prediction", 1, 0)]   # case-insensitive tag test


def test_a_qa_picked_twice_is_listed_twice_with_the_last_tag():
    qas = [qa("prediction", 0, answer="No, not <c1,CAM_FRONT,1.0,2.0>.")]
    assert picks(qas, [{"description": "Car.", "tag": "<c1,CAM_FRONT,1.0,2.0>"}]) == [("prediction", 0, 0)] * 2


def test_planning_picks_each_key_once_then_stops_and_behavior_keeps_all():
    qas = [qa("planning", 0, "What is safe?"),
           qa("planning", 1, "WHAT ACTIONS COULD THE EGO VEHICLE TAKE? Which would LEAD TO A COLLISION?"),
           qa("planning", 2, "What actions could the ego vehicle take now?"),      # key already taken
           qa("planning", 3, "What are the safe actions?"),
           qa("planning", 4, "Which safe actions lead to a collision?"),           # after all three: not read
           qa("behavior", 0), qa("behavior", 1)]
    assert picks(qas, []) == [("planning", 1, 1), ("planning", 1, 1), ("planning", 3, 1), ("behavior", 0, 0),
                              ("behavior", 1, 0)]


def test_official_test_file_entries_keep_their_order_and_tags():
    qas = [qa("behavior", 0, tags=(0,), order=0), qa("perception", 0, tags=(2, 3), order=1)]
    assert assign_tags(qas, [{"description": "Truck."}]) == qas
    assert picks([qa("behavior", 0, tags=(0,)), qa("behavior", 1)], []) == [("behavior", 0, 0), ("behavior", 1, 0)]


def frame_row(frame, group, index, question, answer, prediction, marker="", objects=None, **meta):
    return row(prediction, [answer], questions=[question], marker=marker, frame_id=frame, objects=objects,
               meta={"qa_group": group, "qa_index": index, **meta})


def test_frame_qas_groups_by_frame_in_challenge_order_with_raw_answers():
    rows = [frame_row("f1", "behavior", 0, "b?", "B.", " Going. \n"),
            frame_row("f2", "planning", 0, "p?", "P.", "x"),
            frame_row("f1", "perception", 1, "q1", "A1", "Why. ANSWER: Left.", marker="ANSWER:"),
            frame_row("f1", "perception", 0, "q0", "A0", "p0", objects=[{"tag": "t"}]),
            frame_row("f1", "prediction", 3, "q3", "A3", "p3")]
    frames = frame_qas(rows)
    assert list(frames) == ["f1", "f2"]
    qas, objects = frames["f1"]
    assert [(q.group, q.index, q.question, q.answer, q.prediction) for q in qas] == [
        ("perception", 0, "q0", "A0", "p0"), ("perception", 1, "q1", "A1", "Left."),
        ("prediction", 3, "q3", "A3", "p3"), ("behavior", 0, "b?", "B.", " Going. \n")]
    assert objects == [] and frames["f2"][1] == []      # the frame's first row brings its objects (none here)
    assert all(q.tags == () and q.order is None for q in qas)


def test_frame_qas_reads_turns_and_official_order_and_tags():
    turns = [{"qa_group": "behavior", "qa_index": 0, "tag": [0], "order": 1},
             {"qa_group": "perception", "qa_index": 0, "tag": [2, 3], "order": 0},
             {"qa_group": "planning", "qa_index": 0, "tag": [1], "order": 2}]
    r = row(["pb", "pp"], [["B"], ["P"], ["L"]], questions=["qb", "qp", "ql"], frame_id="f",
            objects=[{"tag": "t"}], meta={"turns": turns})
    qas, objects = frame_qas([r])["f"]
    assert [(q.group, q.question, q.answer, q.prediction, q.tags, q.order) for q in qas] == [
        ("perception", "qp", "P", "pp", (2, 3), 0), ("behavior", "qb", "B", "pb", (0,), 1),
        ("planning", "ql", "L", "", (1,), 2)]          # no third prediction: an empty answer
    assert objects == [{"tag": "t"}]


def scored_rows(**preds):
    default = {"p0": f"A white sedan {T1} and a red suv {T2}.", "p1": "Moving.", "p2": "x", "r0": "Yes.",
               "r1": f"Watch {T1}.", "l0": "Keep going.", "b0": "Going straight."}
    return drivelm_rows([{**default, **preds}[k] for k in ("p0", "p1", "p2", "r0", "r1", "l0", "b0")])


def test_score_drivelm_combines_the_parts_as_the_challenge_does():
    text, judge = FixedText(), ScriptedJudge(lambda user: "80" if "Keep going" in user else "50")
    s = score_drivelm(scored_rows(), ScoreContext("b", {}, judge=judge, text=text))
    assert text.calls == [{"language": ([f"A white sedan {T1} and a red suv {T2}."],
                                        [[f"A white sedan {T1} and a red suv {T2}."]])}]
    assert s["untagged"] == {"value": 1.0, "n": 1, "status": "computed", "unit": "questions",
                             "note": "not in the challenge's scored subset"}
    assert s["graph_filtered"] == {"value": 0.0, "n": 0, "status": "computed", "unit": "questions",
                                   "note": "dropped by eval_graph"}
    # tag 0: "Moving." right, "Yes." for "No." wrong, "Going straight." right
    assert s["accuracy"]["value"] == pytest.approx(2 / 3) and s["accuracy"]["n"] == 3
    assert s["language.bleu_3"]["value"] == 0.36 and "language.meteor" not in s
    assert s["language"] == {"value": pytest.approx(1.68 / 12 + 0.6 / 3 + 1.5 / 30), "n": 1, "status": "computed"}
    record = template_record(judge.cfg, GPT_SYSTEM, GPT_USER)
    assert s["chatgpt"]["value"] == 80.0 and s["chatgpt"]["judge"] == record
    # tag 3: one of two objects named: F1 = 2 * 1 * 0.5 / 1.5; judge 50
    f1 = 100 * 2 * 0.5 / 1.5
    assert s["match_f1"] == {"value": pytest.approx(f1, abs=1e-4), "n": 1, "status": "computed", "unit": "0-100"}
    assert s["match_judge"]["value"] == 50.0 and s["match_judge"]["unit"] == "0-100"
    assert s["match"] == {"value": pytest.approx((f1 + 50) / 2, abs=1e-4), "n": 1, "status": "computed",
                          "unit": "0-100", "judge": record}
    final = 0.4 * 0.8 + 0.2 * (1.68 / 12 + 0.2 + 0.05) + 0.2 * (f1 + 50) / 200 + 0.2 * 2 / 3
    assert s["final"] == {"value": pytest.approx(final, abs=1e-6), "n": 3, "status": "computed", "judge": record}
    users = [m[1]["content"] for m in judge.asked]
    assert GPT_USER.format(reference="Keep going.", prediction="Keep going.") in users
    assert GPT_USER.format(reference=f"Watch {T1} and {T2}.", prediction=f"Watch {T1}.") in users
    assert all(m[0] == {"role": "system", "content": GPT_SYSTEM} for m in judge.asked)


def test_graph_filter_drops_later_questions_about_unmatched_objects():
    # the first answer names c1 only: the yes/no question about c2 is dropped, the rest stay
    s = score_drivelm(scored_rows(p0=f"A white sedan {T1}."), ScoreContext("b", {}, text=FixedText()))
    assert s["graph_filtered"]["value"] == 1 and s["graph_filtered"]["n"] == 1
    assert s["accuracy"]["value"] == 1.0 and s["accuracy"]["n"] == 2


def test_without_judge_or_questions_parts_are_not_computed():
    s = score_drivelm(scored_rows(), ScoreContext("b", {}, text=FixedText()))
    assert s["chatgpt"]["value"] is None and s["match_judge"]["value"] is None
    assert s["match"] == {"value": None, "n": 1, "status": "not computed",
                          "note": "match needs the judge's half: no judge (pass --judge-url and --judge-model)"}
    assert s["final"] == {"value": None, "n": 0, "status": "not computed", "note": "needs chatgpt, match"}
    assert s["match_f1"]["value"] == pytest.approx(100 * 2 / 3, abs=1e-4)
    # one perception QA, no key objects: picked for tag 2, then tag 0; both copies carry tag 0
    only = [frame_row("f", "perception", 0, "What is the moving status of object x?", "Moving.", "Moving.")]
    s = score_drivelm(only, ScoreContext("b", {}, text=FixedText()))
    assert s["accuracy"]["value"] == 1.0 and s["accuracy"]["n"] == 2 and s["language"]["value"] is None
    none = score_drivelm([], ScoreContext("b", {}, text=FixedText()))
    for key, why in (("accuracy", "no tag-0 questions"), ("accuracy_normalized", "no tag-0 questions"),
                     ("language", "no tag-2 (language) questions scored"), ("match_f1", "no tag-3 questions"),
                     ("match", "no tag-3 questions")):
        assert none[key] == {"value": None, "n": 0, "status": "not computed", "note": why}
    assert none["final"]["note"] == "needs chatgpt, language, match, accuracy"


def test_match_without_usable_judge_replies_says_so():
    judge = ScriptedJudge(lambda user: "80" if "Keep going" in user else "no idea")
    s = score_drivelm(scored_rows(), ScoreContext("b", {}, judge=judge, text=FixedText()))
    assert s["match"]["value"] is None and s["match"]["n"] == 1
    assert s["match"]["note"].startswith("match needs the judge's half: no usable judge reply (1 failed; first: no idea)")
    assert s["final"]["note"] == "needs match"


@pytest.mark.parametrize("moving, straight, exact, normalised", [
    ("Moving.", "Going straight.", 1.0, 1.0),
    ("Moving", "Going straight.", 0.5, 1.0),             # only the final period differs
    ("moving.", "Going straight.", 0.5, 1.0),            # only the case differs
    ("Moving.", " Going  straight. ", 0.5, 1.0),         # only the spacing differs
    ("Moving.", "Going. straight", 0.5, 0.5),            # an inner period is kept
    ("Stopped.", "Turning left.", 0.0, 0.0),
    ("Mov\u0131ng.", "Going straight.", 0.5, 0.5),       # dotless i: lower-casing keeps it apart from "i"
])
def test_exact_and_normalised_accuracy(moving, straight, exact, normalised):
    # p0 names c1 only, so the yes/no question about c2 is filtered: tag 0 is "Moving." and "Going straight."
    s = score_drivelm(scored_rows(p0=f"A white sedan {T1}.", p1=moving, b0=straight),
                      ScoreContext("b", {}, text=FixedText()))
    assert (s["accuracy"]["value"], s["accuracy_normalized"]["value"]) == (exact, normalised)
    assert s["accuracy"]["n"] == s["accuracy_normalized"]["n"] == 2


def test_counts_add_up_over_frames_and_rows_without_prompt_keep_the_whole_answer():
    rows = scored_rows(p0=f"A white sedan {T1}.")                  # untagged 1, filtered 1 in frame f1
    second = scored_rows(p0=f"A white sedan {T1}.")
    for r in second:
        r["sample"]["frame_id"] = "nuscenes:f2"
        del r["prompt"]                                            # no prompt: no answer marker
    second[6]["prediction"] = ["XXXXGoing straight."]
    s = score_drivelm(rows + second, ScoreContext("b", {}, text=FixedText()))
    assert s["untagged"]["value"] == 2 and s["graph_filtered"]["value"] == 2
    assert s["accuracy"]["value"] == 0.75 and s["accuracy"]["n"] == 4      # the raw "XXXXGoing straight." misses
