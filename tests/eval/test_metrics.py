"""Evaluation metrics against hand-computed cases (eval/metrics). CPU, no model, no shards."""
from __future__ import annotations

import math

import pytest
from eval_helpers import T1, drivelm_rows, row

from eval.metrics import ScoreContext
from eval.metrics.captions import parse_control, score_captions, score_control
from eval.metrics.drivelm import assign_tags, frame_qas, match_f1, score_drivelm
from eval.metrics.grounding import iou, score_grounding
from eval.metrics.nuinstruct import score_nuinstruct
from eval.metrics.omnidrive import classes, score_counterfactual
from eval.metrics.planning import score_planning
from eval.metrics.qa import choice_index, normalize_nuscenes_qa, score_maplm, score_nuscenes_qa
from eval.metrics.text import CocoText
from eval.prompting import extract_answer


def ctx(**args):
    return ScoreContext("b", args, text=CocoText(meteor=False))


def fmt(xy):
    return "[" + ", ".join(f"({x:.2f}, {y:.2f})" for x, y in xy) + "]"


STRAIGHT = [[2.0 * k, 0.0] for k in range(1, 7)]


def plan_row(pred_xy, gt_xy=STRAIGHT, objects=None, text=None, marker="", valid=None):
    return row(text if text is not None else fmt(pred_xy), [fmt(gt_xy)], task="planning.trajectory", marker=marker,
               trajectory={"frame": "ego_xfwd_yleft", "dt_s": 0.5, "xy": gt_xy, "valid": valid or [True] * 6},
               objects=objects or [])


def car(x, y, w=2.0, length=4.0, category="vehicle.car"):
    return {"category": category, "box_3d": {"center": [x, y, 0.8], "size_wlh": [w, length, 1.5], "yaw": 0.0}}


# ---------------------------------------------------------------- text (coco-caption)

def test_text_metrics_known_values():
    scores = CocoText(meteor=False).score({
        "same": (["The car is stopped at a red light."] * 2, [["the car is stopped at a red light"]] * 2),
        "short": (["the cat sat"], [["the cat sat on the mat"]]),
        "rouge": (["a b c d"], [["a c d e f"]]),
    })
    same = scores["same"]
    for n in range(1, 5):
        assert same[f"bleu_{n}"] == pytest.approx(1.0, abs=1e-6)  # identical after PTB tokenization
    assert same["rouge_l"] == pytest.approx(1.0)
    # BLEU-1: precision 3/3, brevity penalty exp(1 - 6/3) (closest reference length 6)
    assert scores["short"]["bleu_1"] == pytest.approx(math.exp(-1), rel=1e-6)
    # ROUGE-L: LCS "a c d" = 3, P = 3/4, R = 3/5, beta = 1.2
    p, r, b2 = 3 / 4, 3 / 5, 1.2 ** 2
    assert scores["rouge"]["rouge_l"] == pytest.approx((1 + b2) * p * r / (r + b2 * p))
    # CIDEr's IDF comes from the corpus itself: one sample scores 0 even when perfect (DriveLM#81)
    assert CocoText(meteor=False).score({"one": (["a red car"], [["a red car"]])})["one"]["cider"] == 0.0


def test_text_tokenization_is_ptb_and_alignment_survives_control_characters():
    scores = CocoText(meteor=False).score({
        "c": (["Yes, green.", "a b\u2028c d", "x y z w"], [["yes green"], ["a b c d"], ["x y z w"]])})["c"]
    # punctuation dropped and lower-cased: every pair is identical, so ROUGE-L is 1 for all three
    assert scores["rouge_l"] == pytest.approx(1.0)
    assert scores["bleu_2"] == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------- planning

def test_l2_uniad_at_t_vs_stp3_average():
    pred = [[x, 0.1 * (k + 1)] for k, (x, _) in enumerate(STRAIGHT)]  # error 0.1 .. 0.6 at steps 1..6
    s = score_planning([plan_row(pred)], ctx())
    assert [s[f"l2_{t}s.uniad"]["value"] for t in (1, 2, 3)] == pytest.approx([0.2, 0.4, 0.6])
    assert [s[f"l2_{t}s.stp3"]["value"] for t in (1, 2, 3)] == pytest.approx([0.15, 0.25, 0.35])
    assert s["l2_avg.uniad"]["value"] == pytest.approx(0.4)
    assert s["l2_avg.stp3"]["value"] == pytest.approx(0.25)


def test_l2_averages_over_samples_and_counts_unparsable_as_failures():
    rows = [plan_row([[x, 1.0] for x, _ in STRAIGHT]), plan_row([[x, 3.0] for x, _ in STRAIGHT]),
            plan_row(None, text="I would keep going straight."), plan_row(None, text=fmt(STRAIGHT[:5])),
            plan_row(STRAIGHT, valid=[True] * 5 + [False])]
    s = score_planning(rows, ctx())
    assert s["l2_1s.uniad"]["value"] == pytest.approx(2.0) and s["l2_1s.uniad"]["n"] == 2
    assert s["parse_failures"]["value"] == 2 and s["parse_failure_rate"]["value"] == pytest.approx(50.0)
    assert s["excluded_incomplete_gt"]["value"] == 1
    assert "2 unparsable" in s["l2_avg.stp3"]["note"]


def test_collision_per_protocol():
    # a car on the straight path at x = 8: the ego box (4.084 m, centred 0.5 m ahead) overlaps it
    # at steps 2, 3, 4 and 5 (x = 4 .. 10) but not at steps 1 and 6
    gt_left = [[x, 6.0] for x, _ in STRAIGHT]
    s = score_planning([plan_row(STRAIGHT, gt_xy=gt_left, objects=[car(8.0, 0.0)])], ctx())
    assert [s[f"collision_{t}s.uniad"]["value"] for t in (1, 2, 3)] == pytest.approx([100.0, 100.0, 0.0])
    assert [s[f"collision_{t}s.stp3"]["value"] for t in (1, 2, 3)] == pytest.approx([50.0, 75.0, 400 / 6])
    # a pedestrian counts for ST-P3 only
    s = score_planning([plan_row(STRAIGHT, gt_xy=gt_left, objects=[car(8.0, 0.0, 0.6, 0.6, "human.pedestrian.adult")])],
                       ctx())
    assert s["collision_avg.uniad"]["value"] == 0.0 and s["collision_avg.stp3"]["value"] > 0
    # steps where the ground truth itself collides do not count
    s = score_planning([plan_row(STRAIGHT, gt_xy=STRAIGHT, objects=[car(8.0, 0.0)])], ctx())
    assert s["collision_avg.uniad"]["value"] == 0.0 and s["collision_avg.stp3"]["value"] == 0.0
    # a rotated box beside the path: 45 degrees, its corner does not reach the ego box
    rotated = {"category": "vehicle.car", "box_3d": {"center": [8.0, 3.5, 0.8], "size_wlh": [2.0, 4.0, 1.5],
                                                     "yaw": math.pi / 4}}
    s = score_planning([plan_row(STRAIGHT, gt_xy=gt_left, objects=[rotated])], ctx())
    assert s["collision_avg.stp3"]["value"] == 0.0


def test_planning_without_boxes_reports_collision_not_computed():
    s = score_planning([plan_row(STRAIGHT)], ctx())
    assert s["collision_1s.uniad"]["value"] is None and s["collision_1s.uniad"]["status"] == "not computed"


def test_chain_of_thought_answer_is_read_after_the_marker():
    text = "Scene: a car at (5.00, 1.00) ahead.\nIntent: keep lane.\nTrajectory: " + fmt(STRAIGHT)
    assert extract_answer(text, "Trajectory:") == fmt(STRAIGHT)
    s = score_planning([plan_row(None, text=text, marker="Trajectory:")], ctx())
    assert s["l2_avg.stp3"]["value"] == pytest.approx(0.0)
    omni = "Here is the planning trajectory [PT, " + ", ".join(f"(+{x:.2f}, +{y:.2f})" for x, y in STRAIGHT) + "]."
    assert score_planning([plan_row(None, text=omni)], ctx())["l2_avg.uniad"]["value"] == pytest.approx(0.0)


# ---------------------------------------------------------------- nuScenes-QA and MAPLM

def qa_row(pred, ref, ttype, hop):
    return row(pred, [ref], meta={"template_type": ttype, "num_hop": hop})


def test_nuscenes_qa_accuracy_by_type_and_hop():
    rows = [qa_row("yes", "yes", "exist", 0), qa_row("Yes.", "yes", "exist", 1),
            qa_row("There are two cars.", "2", "count", 1), qa_row("3", "2", "count", 0),
            qa_row("The closest one is a traffic cone.", "traffic cone", "object", 0),
            qa_row("It is not standing.", "standing", "status", 1)]
    s = score_nuscenes_qa(rows, ctx())
    assert s["acc_normalized"]["value"] == pytest.approx(100 * 4 / 6)
    assert s["acc"]["value"] == pytest.approx(100 * 1 / 6)      # the official exact match
    assert s["acc.type.exist"]["value"] == 50.0 and s["acc.type.count"]["value"] == 0.0
    n = {k[len("acc_normalized."):]: v["value"] for k, v in s.items() if k.startswith("acc_normalized.")}
    assert n["type.exist"] == 100.0 and n["type.count"] == 50.0
    assert n["type.status"] == 0.0 and n["type.object"] == 100.0
    assert n["hop.H0"] == pytest.approx(100 * 2 / 3)
    assert n["hop.H1"] == pytest.approx(100 * 2 / 3)
    assert n["type_hop.count_1"] == 100.0 and n["type_hop.count_0"] == 0.0


def test_nuscenes_qa_normalization():
    assert normalize_nuscenes_qa("No, there are none.", "exist") == "no"
    assert normalize_nuscenes_qa("Five pedestrians", "count") == "5"
    assert normalize_nuscenes_qa("Two buses", "object") == "bus"
    assert normalize_nuscenes_qa("a bicycle without rider", "status") == "without rider"


def maplm_row(frame, qtype, options, answer_index, pred):
    return row(pred, [f"The answer is {options[answer_index]}."],
               meta={"maplm_frame": frame, "question_type": qtype, "options": options, "answer_index": answer_index,
                     "answer": options[answer_index], "qa_task": "closed choice"})


def test_maplm_qns_frm_and_per_question():
    lanes = ["1", "2", "3", "4"]
    scene = ["Normal city road", "Construction road", "Roundabout"]
    rows = [maplm_row("F1", "LAN", lanes, 1, "There are 2 lanes."), maplm_row("F1", "SCN", scene, 2, "A roundabout."),
            maplm_row("F2", "LAN", lanes, 2, "The answer is 4."), maplm_row("F2", "SCN", scene, 0, "normal city road")]
    s = score_maplm(rows, ctx())
    assert s["qns"]["value"] == 75.0 and s["frm"]["value"] == 50.0 and s["frm"]["n"] == 2
    assert s["lan"]["value"] == 50.0 and s["scn"]["value"] == 100.0


def test_maplm_parser_is_the_official_first_substring():
    opts = ["Not clear, road mark is worn", "Not clear, road mark is worn and occluded by vehicle"]
    assert choice_index("Not clear, road mark is worn and occluded by vehicle", opts) == 0
    assert choice_index("There are 12 lanes", ["1", "12"]) == 0
    assert choice_index("no idea", ["Yes", "Maybe"]) is None


# ---------------------------------------------------------------- DriveLM

def test_drivelm_match_f1():
    gt = "Objects <c1,CAM_FRONT,100.0,200.0> and <c2,CAM_BACK,300.0,400.0>."
    assert match_f1("<c1,CAM_FRONT,105.0,203.0>", gt)[1] == pytest.approx(2 * 1 * 0.5 / 1.5, abs=1e-6)
    assert match_f1(gt, gt)[1] == pytest.approx(1.0, abs=1e-6)
    assert match_f1("<c1,CAM_FRONT,100,200>", gt)[1] == pytest.approx(0.0)  # integers are not read
    assert match_f1("<c1,CAM_FRONT,120.0,200.0>", gt)[1] == pytest.approx(0.0)  # L1 20 >= 16 px
    assert match_f1("1.0 2.0 3.0", "1.0 2.0")[1] == pytest.approx(1.0, abs=1e-6)  # odd count: last dropped


def test_drivelm_tags_and_graph_filter():
    rows = drivelm_rows([f"A white sedan {T1}.", "Moving.", "x", "No.", f"Watch {T1}.", "Stop.", "going straight."])
    qas, objects = frame_qas(rows)["nuscenes:f1"]
    tagged = assign_tags(qas, objects)
    assert [(q.group, q.index, q.tag) for q in tagged] == [
        ("perception", 0, 2), ("perception", 1, 0), ("prediction", 1, 3), ("prediction", 0, 0), ("planning", 0, 1),
        ("behavior", 0, 0)]
    s = score_drivelm(rows, ctx())
    # the first answer matched only c1, so the prediction question about c2 is dropped (eval_graph)
    assert s["graph_filtered"]["value"] == 1 and s["untagged"]["value"] == 1
    assert s["accuracy"]["value"] == pytest.approx(0.5)  # "Moving." right, "going straight." != "Going straight."
    assert s["accuracy_normalized"]["value"] == pytest.approx(1.0)
    assert s["match_f1"]["value"] == pytest.approx(100 * 2 / 3, abs=1e-4)  # 1 of 2 objects named
    assert s["chatgpt"]["value"] is None and s["final"]["value"] is None  # no judge: not computed, not 0
    assert s["match"]["value"] is None


# ---------------------------------------------------------------- BDD-X, DRAMA, Talk2Car, NuInstruct, OmniDrive

def test_bddx_control_signal_rmse_and_tolerances():
    q = ["What is the action of ego car?", "Why?", "Predict the control signal for next frame."]

    def r(text, speed, course):
        return row(["a", "b", text], [["a"], ["b"], ["x"]], questions=q,
                   meta={"control_signal": {"speed": speed, "course": course}})

    s = score_control([r("Speed: 8.0 Course: 1.0", 7.5, 0.0), r("Speed: 5.0 Curvature: 0.2", 5.0, 0.0),
                       r("I cannot tell", 1.0, 1.0)], ctx())
    assert s["control.parse_failures"]["value"] == 1
    assert s["speed.rmse"]["value"] == pytest.approx(math.sqrt(0.125))
    assert s["course.rmse"]["value"] == pytest.approx(math.sqrt((1.0 + 0.04) / 2))
    assert [s[f"speed.a_{k}"]["value"] for k in ("0.1", "0.5", "1")] == [50.0, 50.0, 100.0]  # strict < sigma
    assert [s[f"course.a_{k}"]["value"] for k in ("0.1", "0.5", "1", "5")] == [0.0, 50.0, 50.0, 100.0]
    assert parse_control("speed: 3 course: -2.5") == (3.0, -2.5)


def test_captions_pick_questions_by_text_and_score_yes_no():
    q = ["Is there any risk to the ego vehicle in this scene?", "What is the most important object here?"]
    rows = [row(["Yes, there is.", "the white car"], [["Yes."], ["The white car."]], questions=q),
            row(["No.", "a bus"], [["Yes."], ["A red bus is braking."]], questions=q)]
    c = ctx(turns={"risk": "Is there any risk", "caption": "most important object"}, yes_no=["risk"])
    s = score_captions(rows, c)
    assert s["risk.accuracy"]["value"] == 50.0
    assert s["caption.rouge_l"]["n"] == 2 and 0 < s["caption.rouge_l"]["value"] < 1


def test_talk2car_iou_and_ap50():
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    rows = [row("[0, 0, 10, 10]", ["[0, 0, 10, 10]"]), row("It is [5, 0, 15, 10].", ["[0, 0, 10, 10]"]),
            row("the truck", ["[0, 0, 10, 10]"])]
    s = score_grounding(rows, ctx())
    assert s["ap50"]["value"] == pytest.approx(100 / 3) and s["parse_failures"]["value"] == 1
    assert s["mean_iou"]["value"] == pytest.approx((1 + 1 / 3 + 0) / 3)


def test_nuinstruct_subtask_metrics():
    def r(subtask, pred, ref):
        return row(pred, [ref], meta={"subtask": subtask})

    s = score_nuinstruct([r("perception-instance_count", "3", "2"), r("perception-instance_count", "5 cars", "2"),
                          r("perception-distance", "no idea", "12.5"), r("prediction-motion_ego", "move to (3.00,4.00)",
                                                                          "move to (0.00,0.00)"),
                          r("perception-closest", "Car", "car"), r("risk-braking", "car[c1, 1, 2, 3, 4]",
                                                                   "car[c1, 1, 2, 3, 4], bus[c2, 5, 6, 7, 8]")], ctx())
    assert s["perception-instance_count.mae"]["value"] == pytest.approx(2.0)
    assert s["perception-distance.mae"]["value"] is None and s["perception-distance.mae"]["failures"] == 1
    assert s["prediction-motion_ego.mae"]["value"] == pytest.approx(5.0)
    assert s["perception-closest.accuracy"]["value"] == 100.0
    assert s["risk-braking.f1"]["value"] == pytest.approx(100 * 2 / 3)


def test_omnidrive_counterfactual_classes():
    assert classes("This would collide with the truck ahead.") == {"collision"}
    assert classes("You would run a red light and leave the road.") == {"red_light", "drivable_area"}
    assert classes("The trajectory is safe.") == {"safe"}
    rows = [row("It will crash into the car.", ["A collision with the car."], task="vqa.counterfactual"),
            row("Safe.", ["It runs the red light."], task="vqa.counterfactual")]
    s = score_counterfactual(rows, ctx())
    assert s["counterfactual.collision.precision"]["value"] == 100.0
    assert s["counterfactual.red_light.recall"]["value"] == 0.0
    assert s["counterfactual.red_light.precision"]["value"] is None  # never predicted: not computed
