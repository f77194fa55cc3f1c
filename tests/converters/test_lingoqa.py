"""LingoQA converter: release layout, 5-frame front videos, references kept together, bad input,
and the real evaluation val.parquet (500 questions)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import convert

from converters.lingoqa.converter import FRAMES, LingoQAConverter, LingoQAOptions
from converters.lingoqa.fixture import make_lingoqa_root
from dataengine.cli import main as cli
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root

VIDEO_PREFIX = "<image>.\nThere is a video of traffic captured from the front view of the ego vehicle. "


def samples(root: Path, split: str) -> dict[str, dict]:
    return {s.key: s.sample for s in DatasetReader(root, "lingoqa", split)}


def quarantine(out: Path, split: str) -> dict[str, str]:
    return {q["record_id"]: q["reason"] for q in read_quarantine(out / "lingoqa" / split / "quarantine.jsonl")}


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return make_lingoqa_root(tmp_path_factory.mktemp("lingoqa") / "LingoQA")


@pytest.fixture(scope="module")
def shards(tmp_path_factory, src, ray_session) -> Path:
    out = tmp_path_factory.mktemp("lingoqa_shards")
    convert("lingoqa", src, out)
    return out


def test_fixture_is_in_the_release_layout(src):
    assert {p.relative_to(src).as_posix() for p in src.glob("*/*.parquet")} == {
        "scenery/train.parquet", "action/train.parquet", "evaluation/val.parquet"}
    val = rows(src / "evaluation" / "val.parquet")
    assert set(val[0]) == {"question_id", "segment_id", "images", "question", "answer", "__index_level_0__"}
    assert all(r["images"][i] == f"images/val/{r['segment_id']}/{i}.jpg" for r in val for i in range(FRAMES))
    assert all((src / "evaluation" / p).is_file() for r in val for p in r["images"])
    ids = [r["question_id"] for r in val]
    assert ids[::2] == ids[1::2] and len(set(ids)) == len(ids) // 2  # 2 adjacent reference rows


def test_one_sample_per_question_with_every_reference(shards, src):
    assert validate_root(shards) == {"lingoqa/train": 10, "lingoqa/val": 6}
    for subset, split in (("scenery", "train"), ("action", "train"), ("evaluation", "val")):
        got = samples(shards, split)
        by_q: dict[str, list[dict]] = {}
        for r in rows(src / subset / f"{split}.parquet"):
            by_q.setdefault(r["question_id"], []).append(r)
        for qid, refs in by_q.items():
            s = got[f"lingoqa-{subset}-{qid}"]
            assert s["meta"]["references"] == [r["answer"] for r in refs]
            assert s["meta"]["source_rows"] == [r["__index_level_0__"] for r in refs]
            assert s["conversations"] == [{"role": "user", "content": refs[0]["question"]},
                                          {"role": "assistant", "content": refs[0]["answer"]}]
            assert (s["scene_id"], s["meta"]["segment_id"]) == (f"lingoqa:{refs[0]['segment_id']}",
                                                                refs[0]["segment_id"])
            assert s["meta"]["question_id"] == qid and s["meta"]["subset"] == subset
    assert all(len(s["meta"]["references"]) == 2 for s in samples(shards, "val").values())
    assert quarantine(shards, "train") == {} and quarantine(shards, "val") == {}


def test_five_front_frames_in_time_order(shards, src):
    s = next(iter(samples(shards, "val").values()))
    assert s["layout"] == "video" and s["task"] == "vqa.driving_video"
    assert [m["camera"] for m in s["media"]] == ["front"] * FRAMES
    assert [m["time_offset_s"] for m in s["media"]] == [-4.0, -3.0, -2.0, -1.0, 0.0]
    assert [m["member"] for m in s["media"]] == [f"img{i}.jpg" for i in range(FRAMES)]
    files = [src / "evaluation" / p for p in s["meta"]["frame_paths"]]
    assert [m["sha1"] for m in s["media"]] == [hashlib.sha1(f.read_bytes()).hexdigest() for f in files]
    rendered = render(s)
    assert rendered.conversation[0]["content"] == VIDEO_PREFIX + s["conversations"][0]["content"]
    assert rendered.groups == [[0, 1, 2, 3, 4]]


def test_a_single_release_folder_and_an_image_root(tmp_path, src, ray_session):
    folder, frames = tmp_path / "eval", tmp_path / "frames"
    folder.mkdir()
    shutil.copy(src / "evaluation" / "val.parquet", folder / "val.parquet")
    shutil.copytree(src / "evaluation" / "images" / "val", frames)  # <segment>/<n>.jpg, as unzipped elsewhere
    out = tmp_path / "out"
    convert("lingoqa", folder, out, LingoQAOptions(lingoqa_image_root=str(frames)))
    assert validate_root(out) == {"lingoqa/val": 6}
    assert all(k.startswith("lingoqa-evaluation-") for k in samples(out, "val"))


def test_same_input_same_bytes(tmp_path, src, shards, ray_session):
    convert("lingoqa", src, tmp_path)
    for split in ("train", "val"):
        done = shards / "lingoqa" / split
        for path in sorted(done.glob("*.tar")) + [done / "manifest.parquet"]:
            assert (tmp_path / "lingoqa" / split / path.name).read_bytes() == path.read_bytes()


# --- bad input ---------------------------------------------------------------------------------------
def test_bad_questions_are_quarantined_with_reasons(tmp_path, src, ray_session):
    root = tmp_path / "evaluation"
    shutil.copytree(src / "evaluation", root)
    table = rows(root / "val.parquet")
    q = [table[i]["question_id"] for i in range(0, len(table), 2)]  # 6 questions, 2 per segment
    seg = table[10]["segment_id"]
    assert table[8]["segment_id"] == seg  # q4 and q5 share the segment whose frame goes missing
    table[1]["question"] = "A different question?"                                  # q0: refs disagree
    table[3]["answer"] = " "                                                        # q1: empty reference
    table[4]["images"] = table[5]["images"] = table[4]["images"][:4]                # q2: 4 frames
    table[6]["images"] = table[7]["images"] = ["../../../etc/passwd"] + table[6]["images"][1:]  # q3: escapes
    table += [dict(table[0], question_id=None), dict(table[2], question_id="Q-UPPER"),
              dict(table[0], question_id="feedc0de"), dict(table[0], question_id="feedc0de", answer="Second.")]
    (root / "images" / "val" / seg / "2.jpg").unlink()                              # q4 and q5
    pq.write_table(pa.Table.from_pylist(table), root / "val.parquet")
    out = tmp_path / "out"
    convert("lingoqa", root, out)
    validate_root(out)
    expected = {q[0]: "rows of this question_id disagree on question", q[1]: "empty answer",
                q[2]: "images is not a list of 5 frame paths",
                q[3]: "path '../../../etc/passwd' escapes the dataset root (frame 0)",
                q[4]: f"missing image images/val/{seg}/2.jpg (frame 2)",
                q[5]: f"missing image images/val/{seg}/2.jpg (frame 2)",
                "row-12": "question_id None is not [a-z0-9_-]+", "Q-UPPER": "question_id 'Q-UPPER' is not [a-z0-9_-]+"}
    assert quarantine(out, "val") == expected
    [good] = samples(out, "val").values()  # a good question beside the broken ones
    assert good["meta"]["references"] == [table[0]["answer"], "Second."]
    card = json.loads((out / "lingoqa" / "val" / "card.json").read_text())
    assert card["counts"]["records_in"] == len(q) + 3


@pytest.mark.parametrize("what,expected", [
    ("empty", "is not a LingoQA root: no train.parquet/val.parquet"), ("file", "is not a directory"),
    ("columns", "is not a LingoQA parquet: lacks ['images', 'segment_id']"),
    ("image_root", "--lingoqa-image-root"), ("garbage", "val.parquet is not a readable parquet")])
def test_not_a_lingoqa_source_is_a_usage_error(tmp_path, src, what, expected):
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.Table.from_pylist([{"question_id": "a", "question": "q", "answer": "a"}]), bad / "val.parquet")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "val.parquet").write_bytes(b"PAR1 not really")
    cases = {"empty": (tmp_path / "bad" / "..", LingoQAOptions()),
             "file": (src / "evaluation" / "val.parquet", LingoQAOptions()), "columns": (bad, LingoQAOptions()),
             "image_root": (src, LingoQAOptions(lingoqa_image_root=str(tmp_path / "nope"))),
             "garbage": (tmp_path / "garbage", LingoQAOptions())}
    with pytest.raises(UsageError, match=re.escape(expected)):
        LingoQAConverter(*cases[what]).check_source()


def test_cli_on_a_non_lingoqa_root_exits_2_and_writes_nothing(tmp_path, src, capsys):
    out = tmp_path / "out"
    assert cli(["convert", "lingoqa", "--src", str(src / "evaluation" / "images"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a LingoQA root" in err
    assert not out.exists()


# --- real file: the evaluation val.parquet, frames of 2 segments from the RoboTron-Drive demo ---------
def test_real_val_parquet_all_500_questions_accounted(real_samples, tmp_path, ray_session):
    parquet, frames = real_samples / "lingoqa" / "val.parquet", real_samples / "drivemm_demo" / "lingoqa"
    out = tmp_path / "out"
    convert("lingoqa", parquet.parent, out, LingoQAOptions(lingoqa_image_root=str(frames)))
    written, reasons = samples(out, "val"), quarantine(out, "val")
    assert len(written) + len(reasons) == 500
    present = {p.name for p in frames.iterdir() if p.is_dir()}
    table = rows(parquet)
    expected_written = {r["question_id"] for r in table if r["segment_id"] in present}
    assert {s["meta"]["question_id"] for s in written.values()} == expected_written and len(expected_written) == 10
    assert validate_root(out) == {"lingoqa/val": 10}
    assert all(re.fullmatch(r"missing image [0-9a-f]{32}/0\.jpg \(frame 0\)", r) for r in reasons.values())
    by_q: dict[str, list[str]] = {}
    for r in table:
        by_q.setdefault(r["question_id"], []).append(r["answer"])
    assert all(len(v) == 2 for v in by_q.values()) and len(by_q) == 500
    for s in written.values():
        assert s["meta"]["references"] == by_q[s["meta"]["question_id"]]
        assert s["conversations"][1]["content"] == by_q[s["meta"]["question_id"]][0]
        assert all((m["width"], m["height"]) == (2048, 1280) for m in s["media"])
        seg = s["meta"]["segment_id"]
        assert [m["sha1"] for m in s["media"]] == [
            hashlib.sha1((frames / seg / f"{i}.jpg").read_bytes()).hexdigest() for i in range(FRAMES)]
    card = json.loads((out / "lingoqa" / "val" / "card.json").read_text())
    assert card["counts"]["records_in"] == 500
    assert card["quarantine_reasons"] == {"missing image …": 490}


def test_a_repeated_train_row_is_quarantined_identical_val_references_are_kept(tmp_path, src, ray_session):
    """train.parquet: one answer per question, so a row identical to an earlier one is a repeated
    record (quarantined, named by its row); val.parquet: rows are references, and two annotators
    may agree word for word (the real file has 45 such questions), so identical rows stay."""
    root = tmp_path / "LingoQA"
    for sub in ("scenery", "evaluation"):
        shutil.copytree(src / sub, root / sub)
    train, val = rows(root / "scenery" / "train.parquet"), rows(root / "evaluation" / "val.parquet")
    n_train = len(train)
    train += [dict(train[0]), dict(train[1], answer="Another answer.")]
    val += [dict(val[0])]
    pq.write_table(pa.Table.from_pylist(train), root / "scenery" / "train.parquet")
    pq.write_table(pa.Table.from_pylist(val), root / "evaluation" / "val.parquet")
    out = tmp_path / "out"
    convert("lingoqa", root, out)
    qid = train[0]["question_id"]
    assert quarantine(out, "train") == {f"{qid}/row{n_train}": f"duplicate row: identical to row 0 of question_id {qid!r}"}
    written = {s["meta"]["question_id"]: s for s in samples(out, "train").values()}
    assert written[qid]["meta"]["references"] == [train[0]["answer"]]
    assert written[train[1]["question_id"]]["meta"]["references"] == [train[1]["answer"], "Another answer."]
    card = json.loads((out / "lingoqa" / "train" / "card.json").read_text())["counts"]
    assert card["records_in"] == len({r["question_id"] for r in train}) + 1 == card["samples"] + card["quarantined"]
    assert quarantine(out, "val") == {}
    references = {s["meta"]["question_id"]: s["meta"]["references"] for s in samples(out, "val").values()}
    assert references[val[0]["question_id"]] == [r["answer"] for r in val if r["question_id"] == val[0]["question_id"]]
    assert len(references[val[0]["question_id"]]) == 3
