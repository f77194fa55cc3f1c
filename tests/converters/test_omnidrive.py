"""OmniDrive-nuScenes: the four per-token files become captions, QA, counterfactual and planning
samples on 6-camera key frames; planning answers keep their 6 ego-frame points."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import check_frame_contexts, convert

from converters.nuscenes.tables import NUSCENES_ORDER, NuScenesTables
from converters.nuscenes.units import UNRESOLVED
from converters.omnidrive.converter import FRAME_META, OmniDriveConverter, OmniDriveOptions, pt_points, qa_task
from converters.omnidrive.fixture import make_omnidrive
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root

KINDS = ("keywords", "desc", "conv", "vqa")


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    # 2 train scenes (straight, left turn), 1 val scene, 8 key frames: small and fast
    out = tmp_path_factory.mktemp("omnidrive") / "raw"
    make_omnidrive(out, scenes_per_split=(2, 1), keyframes=8, width=160, height=90)
    return out


@pytest.fixture(scope="module")
def converted(fixture_root, tmp_path_factory, ray_session) -> Path:
    out = tmp_path_factory.mktemp("omnidrive_out")
    convert("omnidrive", fixture_root / "nuscenes", out, OmniDriveOptions(nuscenes_root=str(fixture_root / "nuscenes")))
    return out


def _records_in(src: Path, split: str) -> int:
    """Records of a split as the source counts them: a keywords or desc file is one, a QA pair is one."""
    n = 0
    for kind in KINDS:
        for path in (src / kind / split).glob("*.json"):
            n += len(json.loads(path.read_text())) if kind in ("conv", "vqa") else 1
    return n


def _samples(out: Path, split: str) -> list[dict]:
    return [s.sample for s in DatasetReader(out, "omnidrive", split)]


def test_every_file_record_is_a_valid_sample(fixture_root, converted):
    src = fixture_root / "nuscenes"
    assert validate_root(converted) == {"omnidrive/train": _records_in(src, "train"),
                                        "omnidrive/val": _records_in(src, "val")}
    tables = NuScenesTables(src, "v1.0-mini")
    for s in _samples(converted, "val"):
        token = s["meta"]["sample_token"]
        scene = tables.get("scene", tables.get("sample", token)["scene_token"])
        location = tables.get("log", scene["log_token"])["location"]
        assert (s["frame_id"], s["scene_id"]) == (f"nuscenes:{token}", f"nuscenes:{scene['token']}")
        assert [m["source_camera"] for m in s["media"]] == list(NUSCENES_ORDER) and s["layout"] == "multi_view"
        assert s["conversations"][0]["content"].startswith(f"You are driving in {location}. ")
        kind = s["meta"]["source_file"]
        content = json.loads((src / kind / "val" / f"{token}.json").read_text())
        expected = (content if kind == "keywords" else content["description"] if kind == "desc"
                    else content[s["meta"]["qa_index"]]["answer"])
        assert s["conversations"][1]["content"] == expected


def test_a_key_frames_records_share_one_stored_context(converted):
    """The frame's cameras, ids, scene name and location are stored once per key frame (its
    context), not in each record's JSON; the reader merges them back (test above)."""
    samples, frames = check_frame_contexts(converted, "omnidrive", FRAME_META)
    assert samples > frames


def test_tasks_follow_the_file_and_the_answer(converted):
    by_task: dict[str, list[dict]] = {}
    for s in _samples(converted, "train"):
        by_task.setdefault(s["task"], []).append(s)
    assert set(by_task) == {"caption.action", "caption.scene", "vqa.conversation", "vqa.reasoning",
                            "vqa.counterfactual", "planning.trajectory"}
    assert {s["meta"]["source_file"] for s in by_task["caption.action"]} == {"keywords"}
    assert all("action" in s["meta"] for s in by_task["caption.scene"])  # desc's second key is kept
    for s in by_task["vqa.counterfactual"]:
        assert s["meta"]["question_trajectory"] == [[2.0 * i, round(0.6 * i, 2)] for i in range(1, 7)]


def test_planning_answers_keep_their_six_ego_frame_points(fixture_root, converted):
    """The points are OmniDrive's (x forward, y left): the left-turn scene ends left of the ego car,
    the straight one near its axis, and both always move forward."""
    tables = NuScenesTables(fixture_root / "nuscenes", "v1.0-mini")
    plans = [s for s in _samples(converted, "train") if s["task"] == "planning.trajectory"]
    assert plans
    for s in plans:
        traj = s["trajectory"]
        assert traj["frame"] == "ego_xfwd_yleft" and traj["dt_s"] == 0.5 and traj["valid"] == [True] * 6
        assert [[round(x, 2), round(y, 2)] for x, y in traj["xy"]] == pt_points(s["conversations"][1]["content"])
        xs = [x for x, _ in traj["xy"]]
        assert xs == sorted(xs) and xs[0] > 0
        manoeuvre = tables.get("scene", tables.get("sample", s["meta"]["sample_token"])["scene_token"])["description"]
        last_y = traj["xy"][-1][1]
        assert last_y > 2.0 if manoeuvre.endswith("manoeuvre 1") else abs(last_y) < 0.5


def test_trajectory_text_as_omnidrive_prints_it():
    assert pt_points("Here is the planning trajectory [PT, (+1.50, 0.0), (+3.02, -0.25)].") == [[1.5, 0.0],
                                                                                            [3.02, -0.25]]
    assert pt_points("no trajectory here") is None
    six = "[PT, " + ", ".join(f"(+{i}.00, -0.{i}0)" for i in range(1, 7)) + "]"
    assert qa_task("vqa", "Please provide the planning trajectory for the ego car without reasons.",
                   f"Here is the planning trajectory {six}.")[0] == "planning.trajectory"
    assert qa_task("vqa", "Where to?", "Here is the planning trajectory [PT, (+1.00, 0.0)].")[2] == \
        "planning answer has 1 [PT, ...] points, OmniDrive plans 6"
    assert qa_task("conv", f"If you follow the trajectory {six}, what would happen?", "A crash.")[0] == \
        "vqa.counterfactual"
    assert qa_task("conv", "What is ahead?", "A bus.") == ("vqa.conversation", {}, None)


def test_bad_files_and_unknown_tokens_are_quarantined_and_counted(fixture_root, tmp_path, ray_session):
    src = tmp_path / "nuscenes"
    shutil.copytree(fixture_root / "nuscenes", src, ignore=shutil.ignore_patterns("samples", "sweeps", "maps"))
    val = src / "vqa" / "val"
    tokens = sorted(p.stem for p in val.glob("*.json"))
    stranger = "0" * 32
    for kind in ("keywords", "vqa"):  # a token the nuScenes root lacks: each of its records is quarantined
        shutil.copy(src / kind / "val" / f"{tokens[0]}.json", src / kind / "val" / f"{stranger}.json")
    (src / "desc" / "val" / f"{tokens[1]}.json").write_text("{broken")
    (src / "keywords" / "val" / f"{tokens[2]}.json").write_text(json.dumps({"not": "a string"}))
    pairs = json.loads((val / f"{tokens[3]}.json").read_text())
    pairs += [{"question": "Where now?"}, {"question": "Please provide the planning trajectory for the ego car "
                                                      "without reasons.", "answer": "[PT, (+1.00, 0.0)]"}]
    (val / f"{tokens[3]}.json").write_text(json.dumps(pairs))
    # a desc field named like a meta key the converter writes (the frame's, in its context) is ambiguous
    (src / "desc" / "val" / f"{tokens[4]}.json").write_text(json.dumps({"description": "Sunny.", "location": "x"}))
    expected_in = _records_in(src, "val")  # a broken file is one record, a QA pair one
    out = tmp_path / "out"
    result = convert("omnidrive", src, out, OmniDriveOptions(nuscenes_root=str(fixture_root / "nuscenes")),
                     splits=("val",))
    counts = result.cards["val"]["counts"]
    assert counts["records_in"] == expected_in
    reasons = {q["record_id"]: q["reason"] for q in read_quarantine(out / "omnidrive" / "val" / "quarantine.jsonl")}
    n_stranger = 1 + len(json.loads((src / "vqa" / "val" / f"{stranger}.json").read_text()))
    assert {k: v for k, v in reasons.items() if k.startswith(stranger)} == \
        {f"{stranger}/keywords": UNRESOLVED, **{f"{stranger}/vqa/{i}": UNRESOLVED for i in range(n_stranger - 1)}}
    assert reasons[f"{tokens[1]}/desc"].startswith("desc file is not valid JSON")
    assert reasons[f"{tokens[2]}/keywords"] == "keywords file is not a non-empty JSON string"
    assert reasons[f"{tokens[3]}/vqa/{len(pairs) - 2}"] == "QA pair has no question and answer strings"
    assert reasons[f"{tokens[3]}/vqa/{len(pairs) - 1}"] == "planning answer has 1 [PT, ...] points, OmniDrive plans 6"
    assert reasons[f"{tokens[4]}/desc"] == "desc file field 'location' is a meta key the converter writes"
    assert len(reasons) == n_stranger + 5 and counts["samples"] == expected_in - len(reasons)


def test_roots_that_are_not_the_datasets_are_refused_in_one_line(fixture_root, tmp_path):
    nus = str(fixture_root / "nuscenes")
    cases = [(fixture_root / "nuscenes", OmniDriveOptions(), "omnidrive needs --nuscenes-root PATH"),
             (fixture_root / "nuscenes", OmniDriveOptions(nuscenes_root=str(tmp_path)), "--nuscenes-root: "),
             (tmp_path, OmniDriveOptions(nuscenes_root=nus), "is not an OmniDrive-nuScenes root")]
    for src, options, message in cases:
        with pytest.raises(UsageError) as err:
            OmniDriveConverter(src, options).check_source()
        assert message in str(err.value) and "\n" not in str(err.value)
