"""BDD-X converters: raw CSV + videos (frames sampled with PyAV) and the processed RAG-Driver /
DriveMM test format. Fixture round trips, frame placement, determinism, bad input, real files."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import convert
from PIL import Image

from converters.bddx import fixture as fx
from converters.bddx.converter import BddxConverter, BddxOptions, sample_key
from converters.bddx.processed import BddxProcessedConverter, BddxProcessedOptions, control_history
from converters.bddx.table import CSV_NAME, Segment, assign_splits, parse_segment, read_rows, read_splits
from converters.bddx.video import VideoError, frames_at, past_end, sample_times
from dataengine.cli import main as cli
from dataengine.converter import Quarantined
from dataengine.errors import UsageError
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.validate import validate_root

SPLITS = ("train", "val", "test")


def category(reason: str) -> str:
    return reason.split(":")[0]


def quarantine(out: Path, dataset: str = "bddx") -> dict[str, str]:
    """record id -> reason over every split."""
    return {q["record_id"]: q["reason"] for s in SPLITS
            for q in read_quarantine(out / dataset / s / "quarantine.jsonl")}


def cards(out: Path, dataset: str = "bddx") -> dict[str, dict]:
    return {s: json.loads((out / dataset / s / "card.json").read_text()) for s in SPLITS
            if (out / dataset / s / "card.json").exists()}


def samples(out: Path, dataset: str = "bddx") -> dict[str, object]:
    return {s.key: s for split in SPLITS if (out / dataset / split).exists()
            for s in DatasetReader(out, dataset, split)}


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    return fx.make_raw_root(tmp_path_factory.mktemp("bddx") / "raw")


@pytest.fixture(scope="module")
def raw_out(raw_root, tmp_path_factory, ray_session) -> Path:
    out = tmp_path_factory.mktemp("bddx_out")
    convert("bddx", raw_root, out, BddxOptions())
    return out


# ---- parsing layer -------------------------------------------------------------------------

@pytest.mark.parametrize("fields,expected", [
    (("0", "11", "The car accelerates", "because the light has turned green."), Segment(1, 0, 11, "The car accelerates",
                                                                                        "because the light has turned green.")),
    (("28", "", "a", "b"), "missing fields: end"),
    (("", "", "a", ""), "missing fields: start, end, justification"),
    (("X", "3", "a", "b"), "bad time: start 'X' is not whole seconds"),
    (("24", "22", "a", "b"), "end before start: 24 s to 22 s"),
    (("10", "10", "X", "X"), "placeholder text: action 'X', justification 'X'"),
    (("5", "5", "a", "b"), Segment(1, 5, 5, "a", "b")),
])
def test_parse_segment(fields, expected):
    assert parse_segment(1, fields) == expected


def test_sample_times_and_end_rule():
    assert sample_times(0, 2, 5) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert sample_times(3, 4, 1) == [4.0]
    assert past_end(0, 40, 40.0) is None and past_end(39, 40, 39.5) is None  # whole seconds round up
    assert "ends at 41 s" in past_end(0, 41, 40.0)
    assert "starts at 40 s" in past_end(40, 40, 40.0)


def test_fixture_csv_is_the_real_layout(raw_root):
    raw = (raw_root / CSV_NAME).read_bytes()
    header = raw.split(b"\r\n", 1)[0].decode().split(",")
    assert len(header) == 61 and header[0] == "Input.Video" and header[-1] == "Answer.15justification"
    assert b"\r\n" + b"," * 60 + b"\r\n" in raw  # an all-empty separator record, as in the real CSV
    rows = read_rows(raw_root / CSV_NAME)
    assigned = assign_splits(rows, read_splits(raw_root), raw_root)
    assert len(rows) == len(fx.ROWS) and len(assigned) == sum(1 for r in fx.ROWS if r[2])


def test_split_files_that_do_not_match_the_csv_are_a_usage_error(raw_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(raw_root, root, ignore=shutil.ignore_patterns("videos"))
    (root / "val.txt").write_text(f"2_{fx.V['v3']}\n")  # index 2 annotates v2
    with pytest.raises(UsageError, match="split files and CSV do not match"):
        BddxConverter(root).units()


def test_duplicate_and_videoless_rows_are_quarantined_whole(raw_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(raw_root, root)
    lines = (root / CSV_NAME).read_bytes().decode().split("\r\n")
    tail = lines[1].split(",", 1)[1]  # row 1's annotations
    lines.insert(-1, lines[1])  # the same URL again, after every indexed row
    lines.insert(-1, "https://s3-us-west-2.amazonaws.com/sq8geewpqu/train/," + tail)
    (root / CSV_NAME).write_bytes("\r\n".join(lines).encode())
    converter = BddxConverter(root)
    units = {u.payload["row"]: u for u in converter.units()}
    out = {row: [(q.record_id, category(q.reason)) for q in converter.convert_unit(units[row])] for row in (11, 12)}
    assert out == {11: [(f"row11/seg{i}", "duplicate row") for i in (1, 2, 3)],
                   12: [(f"row12/seg{i}", "malformed row") for i in (1, 2, 3)]}
    assert units[11].id == "row11" and units[12].split == "train"


def test_a_segment_repeated_within_a_row_is_quarantined(raw_root, tmp_path):
    """One row is one worker's segments of one video: the same four fields in a second slot
    are one annotation entered twice, not a second segment (the real CSV has none)."""
    import csv

    root = tmp_path / "root"
    shutil.copytree(raw_root, root)
    with open(root / CSV_NAME, newline="", encoding="utf-8-sig") as f:
        table = list(csv.reader(f))
    header, row = table[0], table[1]
    fields = ("start", "end", "action", "justification")
    free = next(i for i in range(1, 16) if not any(row[header.index(f"Answer.{i}{x}")] for x in fields))
    for x in fields:
        row[header.index(f"Answer.{free}{x}")] = row[header.index(f"Answer.1{x}")]
    with open(root / CSV_NAME, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(table)
    converter = BddxConverter(root)
    [unit] = [u for u in converter.units() if u.payload["row"] == 1]
    out = list(converter.convert_unit(unit))
    assert [(q.record_id, q.reason) for q in out if isinstance(q, Quarantined)] == [
        (f"row1/seg{free}", "duplicate segment: identical to slot 1 of this row")]
    assert len(out) == len(unit.payload["slots"])  # records in = written + quarantined


# ---- raw conversion ------------------------------------------------------------------------

def test_fixture_converts_validates_and_accounts_for_every_record(raw_out):
    counts = validate_root(raw_out)
    assert counts == {"bddx/train": 7, "bddx/val": 2, "bddx/test": 2}
    c = {s: card["counts"] for s, card in cards(raw_out).items()}
    assert {s: (x["samples"], x["quarantined"]) for s, x in c.items()} == {
        "train": (7, 9), "val": (2, 0), "test": (2, 1)}
    slots = sum(len(slots) for *_, slots in fx.ROWS)
    empty_rows = sum(1 for *_, slots in fx.ROWS if not slots)
    assert sum(x["records_in"] for x in c.values()) == slots + empty_rows
    keys = set(samples(raw_out))
    # the same video annotated under samples-1k/ and train/ gives distinct keys
    assert {sample_key("samples-1k", fx.V["v1"], 1), sample_key("train", fx.V["v1"], 1)} <= keys


def test_frame_count_and_time_placement(raw_out):
    found = samples(raw_out)
    assert len(found) == 11
    for stored in found.values():
        s = stored.sample
        assert s["layout"] == "video" and s["task"] == "caption.action_justification"
        assert s["scene_id"] == f"bddx:{s['meta']['video']}"
        start, end = s["meta"]["start_s"], s["meta"]["end_s"]
        last = end if end > start else start + 1  # a zero-length segment covers its second
        expected = [start + i * (last - start) / 4 for i in range(5)]
        assert s["meta"]["frame_times_s"] == pytest.approx(expected)
        assert [m["time_offset_s"] for m in s["media"]] == pytest.approx([t - last for t in expected])
        assert [m["camera"] for m in s["media"]] == ["front"] * 5
        for i, t in enumerate(expected):
            img = np.asarray(Image.open(io.BytesIO(stored.media_bytes(i))).convert("L"))
            shown = fx.level_to_frame(img[8:-8, 4: fx.SIZE[0] // 2 - 4].mean())
            assert shown == min(int(t * fx.FPS + 1e-6), fx.FPS * fx.SECONDS - 1), (s["id"], t)
        assert [c["role"] for c in s["conversations"]] == ["user", "assistant", "user", "assistant"]
        assert s["conversations"][1]["content"] == s["meta"]["action"]
        assert s["conversations"][3]["content"] == s["meta"]["justification"]
    zero = found[sample_key("train", fx.V["v3"], 7)].sample
    assert (zero["meta"]["start_s"], zero["meta"]["end_s"]) == (3, 3)
    prompt = render(zero).conversation[0]["content"]
    assert prompt.startswith("<image>.\nThere is a video of traffic captured from the front view of the ego vehicle.")


def test_bad_rows_and_corrupt_video_are_quarantined_with_reasons(raw_out):
    q = quarantine(raw_out)
    by_row = {int(rid.split("/")[0][3:]): rid for rid in q}
    assert {rid: category(reason) for rid, reason in q.items()} == {
        "row3": "empty row",
        "row6/seg2": "missing fields", "row6/seg3": "end before start", "row6/seg4": "placeholder text",
        "row6/seg5": "past video end", "row6/seg6": "bad time",
        "row7/seg1": "unreadable video", "row7/seg2": "unreadable video",
        "row8/seg1": "missing video",
        "row10/seg1": "not in a split",
    }, by_row
    assert "Invalid data" in q["row7/seg1"] and "/tmp" not in q["row7/seg1"]  # portable: no absolute path
    reasons = Counter()
    for card in cards(raw_out).values():
        reasons.update(card["quarantine_reasons"])
    assert reasons["unreadable video"] == 2 and sum(reasons.values()) == len(q) == 10


def test_conversion_is_deterministic(raw_root, raw_out, tmp_path, ray_session):
    again = tmp_path / "again"
    convert("bddx", raw_root, again, BddxOptions())
    for split in SPLITS:
        first = sorted((raw_out / "bddx" / split).glob("shard-*.tar"))
        second = sorted((again / "bddx" / split).glob("shard-*.tar"))
        assert [p.name for p in first] == [p.name for p in second] and first
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))
        assert ((raw_out / "bddx" / split / "quarantine.jsonl").read_bytes()
                == (again / "bddx" / split / "quarantine.jsonl").read_bytes())


def test_frames_option(raw_root, tmp_path, ray_session):
    out = tmp_path / "one"
    convert("bddx", raw_root, out, BddxOptions(bddx_frames=1), splits=("val",))
    for stored in samples(out).values():
        s = stored.sample
        assert [m["time_offset_s"] for m in s["media"]] == [0.0]
        assert s["meta"]["frame_times_s"] == [float(s["meta"]["end_s"])]


def test_stream_ending_before_the_asked_time_is_an_error(tmp_path):
    short = fx.write_video(tmp_path / "short.mp4", seconds=2)
    assert len(frames_at(short, [0.0, 2.9])) == 2  # within the one-second slack of whole-second times
    with pytest.raises(VideoError, match="ends before 4 s"):
        frames_at(short, [0.0, 4.0])


@pytest.mark.parametrize("make,match", [
    (lambda root: None, "not a BDD-X root"),
    (lambda root: (root / "train.txt").write_text(""), "not a BDD-X root"),
    (lambda root: [(root / n).write_text("scene,token\r\n") for n in (CSV_NAME, "train.txt", "val.txt", "test.txt")],
     "not the BDD-X annotation CSV"),
])
def test_not_a_bddx_root_is_a_usage_error(tmp_path, make, match, ray_session):
    root = tmp_path / "src"
    root.mkdir()
    make(root)
    with pytest.raises(UsageError, match=match):
        convert("bddx", root, tmp_path / "out", BddxOptions())
    assert not (tmp_path / "out" / "bddx").exists()


def test_bad_frames_option_is_a_usage_error(raw_root, tmp_path):
    with pytest.raises(UsageError, match="--bddx-frames"):
        BddxConverter(raw_root, BddxOptions(bddx_frames=0)).check_source()
    assert cli(["convert", "bddx", "--src", str(raw_root), "--out", str(tmp_path), "--bddx-frames", "x"]) == 2


def test_cli_fixtures(tmp_path):
    assert cli(["fixtures", "bddx", "--out", str(tmp_path / "a")]) == 0
    assert cli(["fixtures", "bddx_processed", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / CSV_NAME).read_bytes() == (tmp_path / "b" / CSV_NAME).read_bytes()
    again = fx.make_raw_root(tmp_path / "c")
    for path in sorted((tmp_path / "a" / "videos").iterdir()):  # the generator repeats itself byte for byte
        assert path.read_bytes() == (again / "videos" / path.name).read_bytes()


# ---- processed (RAG-Driver / DriveMM) --------------------------------------------------------

@pytest.fixture(scope="module")
def processed_out(tmp_path_factory, ray_session) -> tuple[Path, Path]:
    root = fx.make_processed_root(tmp_path_factory.mktemp("bddx_proc") / "root")
    out = tmp_path_factory.mktemp("bddx_proc_out")
    convert("bddx_processed", root, out, BddxProcessedOptions())
    return root, out


def test_processed_fixture_converts(processed_out):
    root, out = processed_out
    assert validate_root(out) == {"bddx_processed/test": 2}
    q = quarantine(out, "bddx_processed")
    assert {rid: category(r) for rid, r in q.items()} == {
        "item2": "malformed item", "item3": "no raw segment", "item4": "missing frames",
        "item5": "malformed raw segment", "item6": "duplicate clip"}
    assert "missing key 'video'" in q["item2"]
    assert q["item5"].endswith("slot 3: end before start: 5 s to 4 s")
    found = samples(out, "bddx_processed")
    first = found[f"bddx_processed-{fx.V['v6']}-23662"].sample
    assert first["frame_id"] == f"bddx:{fx.V['v6']}@0-2"  # the raw converter's id for that segment
    step = 2 / 16
    assert [m["time_offset_s"] for m in first["media"]] == pytest.approx([(k - 15) * step for k in fx.DEMO_FRAMES])
    assert [m["member"] for m in first["media"]] == [f"img{i}.png" for i in range(5)]
    stored = found[first["id"]]
    for i, k in enumerate(fx.DEMO_FRAMES):  # PNG bytes copied as they are
        src = root / "processed" / "frames" / "1" / f"testing_{fx.V['v6']}_23662_{k}.png"
        assert stored.media_bytes(i) == src.read_bytes()
    turns = first["conversations"]
    assert [t["role"] for t in turns] == ["user", "assistant"] * 3
    assert turns[0]["content"].startswith("This is a video recording driving scenario.")
    assert first["meta"]["references"] == {"action": ["The car is stopped"],
                                           "justification": ["because traffic ahead is stopped."]}
    assert first["meta"]["control_signal"] == {"speed": 7.5, "course": 0.0}
    assert first["meta"]["control_history"]["speed"] == [5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0]


def test_processed_frames_from_another_folder_every_clip_accounted(processed_out, tmp_path, ray_session):
    """Fixture twin of test_real_processed_test_set_converts: the frames in a folder of their own
    (--bddx-frames-dir, as the demo ships them), the PNGs stored byte for byte from there, and
    every item of the conversation file written or quarantined."""
    root, default = processed_out
    src, frames = tmp_path / "src", tmp_path / "demo_frames"
    shutil.copytree(root, src, ignore=shutil.ignore_patterns("frames"))
    shutil.copytree(root / "processed" / "frames", frames)
    with pytest.raises(UsageError, match="no frames folder"):
        BddxProcessedConverter(src).check_source()
    out = tmp_path / "out"
    convert("bddx_processed", src, out, BddxProcessedOptions(bddx_frames_dir=str(frames)))
    items = json.loads((src / "processed" / "conversation_bddx_eval_v1.json").read_text())
    counts = cards(out, "bddx_processed")["test"]["counts"]
    assert counts["records_in"] == counts["samples"] + counts["quarantined"] == len(items) == 7
    assert validate_root(out) == {"bddx_processed/test": 2}
    assert quarantine(out, "bddx_processed") == quarantine(default, "bddx_processed")
    stored = samples(out, "bddx_processed")[f"bddx_processed-{fx.V['v6']}-23662"]
    for i, k in enumerate(fx.DEMO_FRAMES):
        assert stored.media_bytes(i) == (frames / "1" / f"testing_{fx.V['v6']}_23662_{k}.png").read_bytes()


def test_control_history_ignores_what_is_not_numbers():
    text = "Speed: [1.0, -2.5]\n Curvature: [nan, 1]\n Course: []"
    assert control_history(text) == {"speed": [1.0, -2.5]}


@pytest.mark.parametrize("options,match", [
    (BddxProcessedOptions(bddx_frame_indices="0,7,3"), "--bddx-frame-indices"),
    (BddxProcessedOptions(bddx_frame_indices="0,16"), "--bddx-frame-indices"),
    (BddxProcessedOptions(bddx_frames_dir="/nonexistent"), "no frames folder"),
])
def test_processed_bad_options(processed_out, options, match):
    with pytest.raises(UsageError, match=match):
        BddxProcessedConverter(processed_out[0], options).check_source()


def test_processed_needs_its_files(raw_root):
    with pytest.raises(UsageError, match="not a processed BDD-X root"):
        BddxProcessedConverter(raw_root).check_source()


# ---- real files ------------------------------------------------------------------------------

REAL_ROWS, REAL_SLOTS, REAL_EMPTY_ROWS = 6999, 26545, 1


def test_real_csv_parses_whole_against_the_split_files(real_samples):
    root = real_samples / "bddx"
    rows = read_rows(root / CSV_NAME)
    assigned = assign_splits(rows, read_splits(root), root)
    assert len(rows) == REAL_ROWS and sum(r.indexed for r in rows) == 6996
    assert Counter(split for split, _ in assigned.values()) == {"train": 5588, "val": 698, "test": 698}
    assert Counter(r.folder for r in rows) == {"train": 5999, "samples-1k": 1000}
    assert sum(n == 2 for n in Counter(r.video for r in rows).values()) == 1000
    outcome = Counter()
    for row in rows:
        for slot, fields in row.slots:
            seg = parse_segment(slot, fields)
            outcome["ok" if isinstance(seg, Segment) else category(seg)] += 1
    assert sum(outcome.values()) == REAL_SLOTS
    assert outcome == {"ok": 26506, "missing fields": 24, "end before start": 9, "placeholder text": 6}
    assert sum(1 for r in rows if not r.slots) == REAL_EMPTY_ROWS


def test_real_csv_without_videos_quarantines_every_record(real_samples, tmp_path, ray_session):
    root = real_samples / "bddx"
    assert not (root / "videos").exists()
    convert("bddx", root, tmp_path, BddxOptions())
    c = cards(tmp_path)
    assert sum(card["counts"]["samples"] for card in c.values()) == 0
    assert sum(card["counts"]["records_in"] for card in c.values()) == REAL_SLOTS + REAL_EMPTY_ROWS
    reasons = Counter()
    for card in c.values():
        reasons.update(card["quarantine_reasons"])
    rows = read_rows(root / CSV_NAME)
    listed = assign_splits(rows, read_splits(root), root)
    ok_listed = sum(isinstance(parse_segment(s, f), Segment) for r in rows if r.row in listed for s, f in r.slots)
    assert reasons["missing video"] == ok_listed
    assert reasons["empty row"] == REAL_EMPTY_ROWS
    assert reasons["not in a split"] == sum(len(r.slots) for r in rows if r.row not in listed and r.slots)


def test_real_processed_test_set_converts(real_samples, tmp_path, ray_session):
    demo = real_samples / "drivemm_demo" / "bddx"
    convert("bddx_processed", real_samples / "bddx", tmp_path, BddxProcessedOptions(bddx_frames_dir=str(demo)))
    card = cards(tmp_path, "bddx_processed")["test"]
    assert card["counts"]["records_in"] == 2123 and card["counts"]["samples"] == 2
    # every clip matches a raw segment; two match slots whose end is before their start
    assert card["quarantine_reasons"] == {"missing frames": 2119, "malformed raw segment": 2}
    found = samples(tmp_path, "bddx_processed")
    first = found["bddx_processed-1f0fff77-a50aae97-23664"]
    s = first.sample
    assert s["frame_id"] == "bddx:1f0fff77-a50aae97@22-40"
    assert s["meta"]["action"] == "The car stops" and s["meta"]["clip_id"] == "2"
    assert s["meta"]["references"]["justification"] == ["since the light is red and there are people crossing "
                                                         "the road."]
    assert s["meta"]["control_signal"] == {"speed": 0.0, "course": 0.0}
    for i, k in enumerate((0, 3, 7, 11, 15)):
        path = demo / "1" / f"testing_1f0fff77-a50aae97_23664_{k}.png"
        assert hashlib.sha1(first.media_bytes(i)).hexdigest() == hashlib.sha1(path.read_bytes()).hexdigest()
        assert (s["media"][i]["width"], s["media"][i]["height"]) == (455, 256)
    assert validate_root(tmp_path) == {"bddx_processed/test": 2}
