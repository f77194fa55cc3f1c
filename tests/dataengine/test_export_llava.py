"""LLaVA-NeXT export: round trip to the shards (text, image bytes, order) and the loader's conventions."""
import hashlib
import json
import os
from pathlib import Path

import pytest
from PIL import Image
from synthetic_shards import jpeg, png, record, write_split

from dataengine.cli import main
from dataengine.export_llava import ExportConfig, export
from dataengine.reader import DatasetReader


def load_records(out: Path, dataset: str, split: str) -> list[dict]:
    return json.loads((out / f"{dataset}_{split}.json").read_text())


def image_list(rec: dict) -> list[str]:
    """LLaVA-NeXT's reading of `image`: a string is one image, a list is several."""
    image = rec.get("image", [])
    return [image] if isinstance(image, str) else image


def check_round_trip(root: Path, out: Path, dataset: str, split: str) -> list[dict]:
    """Every record matches its stored sample: text modulo placeholders, image bytes and order."""
    reader = DatasetReader(root, dataset, split)
    records = load_records(out, dataset, split)
    assert [r["id"] for r in records] == reader.keys()
    for rec in records:
        sample = reader.get(rec["id"]).sample
        turns = rec["conversations"]
        assert [t["from"] for t in turns] == [{"user": "human", "assistant": "gpt"}[c["role"]]
                                              for c in sample["conversations"]]
        assert turns[0]["value"].endswith(sample["conversations"][0]["content"])
        assert [t["value"] for t in turns[1:]] == [c["content"] for c in sample["conversations"][1:]]
        paths = image_list(rec)
        placeholders = sum(t["value"].count("<image>") for t in turns)
        assert placeholders == len(paths) == len(sample["media"])  # LLaVA-NeXT: one <image> per image
        shas = [hashlib.sha1((out / p).read_bytes()).hexdigest() for p in paths]
        assert sorted(shas) == sorted(m["sha1"] for m in sample["media"])
        for p, sha in zip(paths, shas):
            assert Path(p).name.partition(".")[0] == sha and not os.path.isabs(p)  # named by content
            Image.open(out / p).verify()
    return records


def test_round_trip_converted_nuscenes(nuscenes_shards, tmp_path):
    export(ExportConfig(nuscenes_shards, tmp_path))
    for split in ("train", "val"):
        records = check_round_trip(nuscenes_shards, tmp_path, "nuscenes", split)
        reader = DatasetReader(nuscenes_shards, "nuscenes", split)
        for rec in records:
            sample = reader.get(rec["id"]).sample
            assert isinstance(rec["image"], list) and len(rec["image"]) == 6
            assert [Path(p).name for p in rec["image"]] == [f"{m['sha1']}.jpg" for m in sample["media"]]
            assert rec["cameras"] == ["front", "front_left", "front_right", "back", "back_left", "back_right"]
            assert rec["conversations"][0]["value"].startswith(
                "1: <image> 2: <image> 3: <image> 4: <image> 5: <image> 6: <image>. These six images are the "
                "front view, front left view, front right view, back view, back left view and back right view")
    manifest = json.loads((tmp_path / "export.json").read_text())
    assert [(f["file"], f["records"], f["images"]) for f in manifest["files"]] == [
        ("nuscenes_train.json", 60, 360), ("nuscenes_val.json", 20, 120)]  # planning + agent-motion samples


def video_root(root: Path) -> Path:
    """Single image (PNG), a 4-frame video stored out of time order, a 2-camera video, text only."""
    write_split(root, "mixed", "train", [
        record("mixed", "train", "single", "x:s", "x:f1", [png(1)]),
        record("mixed", "train", "video", "x:s", "x:f2", [jpeg(i) for i in range(4)], layout="video",
               offsets=[0.0, -1.5, -0.5, -1.0]),
        record("mixed", "train", "mvv", "x:s", "x:f3", [jpeg(10 + i) for i in range(4)],
               layout="multi_view_video", cameras=["front", "back", "front", "back"], offsets=[0.0, 0.0, -0.5, -0.5]),
        record("mixed", "train", "text", "x:s", "x:f4", [], turns=["Define a roundabout.", "A circular junction.",
                                                                      "And a chicane?", "An S-bend."]),
    ])
    return root


def test_round_trip_video_layouts_frames_in_time_order(tmp_path):
    root = video_root(tmp_path / "shards")
    export(ExportConfig(root, tmp_path / "out"))
    records = {r["id"]: r for r in check_round_trip(root, tmp_path / "out", "mixed", "train")}
    single = records["mixed-single"]
    sha = hashlib.sha1(png(1)).hexdigest()
    assert single["image"] == f"images/{sha[:2]}/{sha}.png"  # one image: a string, as LLaVA-NeXT
    assert single["conversations"][0]["value"].startswith("<image>\nThere is an image of traffic captured from")
    video = records["mixed-video"]
    by_frame = [hashlib.sha1(jpeg(i)).hexdigest() for i in range(4)]
    got = [hashlib.sha1((tmp_path / "out" / p).read_bytes()).hexdigest() for p in video["image"]]
    assert got == [by_frame[1], by_frame[3], by_frame[2], by_frame[0]]  # offsets -1.5, -1.0, -0.5, 0.0
    assert video["frame_groups"] == [[0, 1, 2, 3]]
    assert video["conversations"][0]["value"].startswith("<image><image><image><image>.\nThere is a video of")
    mvv = records["mixed-mvv"]
    assert mvv["cameras"] == ["front", "front", "back", "back"] and mvv["frame_groups"] == [[0, 1], [2, 3]]
    assert mvv["conversations"][0]["value"].startswith("1: <image><image> 2: <image><image>. These two videos")
    text = records["mixed-text"]
    assert "image" not in text and len(text["conversations"]) == 4


def test_style_changes_the_prompt_and_export_is_deterministic(tmp_path):
    root = video_root(tmp_path / "shards")
    snapshots = []
    for _ in range(2):
        export(ExportConfig(root, tmp_path / "a", style="camera_tags"))
        snapshots.append({p: p.read_bytes() for p in sorted((tmp_path / "a").rglob("*")) if p.is_file()})
    assert snapshots[0] == snapshots[1] and len(snapshots[0]) == 1 + 1 + 9  # json, export.json, images
    rec = load_records(tmp_path / "a", "mixed", "train")[0]
    assert rec["conversations"][0]["value"].startswith("[front image] <image>\n")


def test_cli_export(tmp_path, capsys):
    root = video_root(tmp_path / "shards")
    assert main(["export-llava", str(root), "--out", str(tmp_path / "out")]) == 0
    assert "mixed/train: 4 records, 9 images (9 new image files)" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "images").rglob("*.*"))) == 9


@pytest.mark.parametrize("args", [["{root}", "--out", "{out}", "--style", "nope"],
                                  ["/nonexistent/shards", "--out", "{out}"],
                                  ["{root}", "--out", "{root}"]])
def test_bad_arguments_exit_2_writing_nothing(tmp_path, capsys, args):
    root = video_root(tmp_path / "shards")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    argv = ["export-llava"] + [a.format(root=root, out=tmp_path / "out") for a in args]
    assert main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_an_image_shown_by_several_samples_is_exported_once(tmp_path):
    """Two datasets and three samples show one picture: one file, named in all three records."""
    root = tmp_path / "shards"
    shared, other = jpeg(7), jpeg(8)
    write_split(root, "a", "train", [record("a", "train", "one", "x:s", "x:f", [shared]),
                                     record("a", "train", "two", "x:s", "x:f", [shared, other],
                                            layout="multi_view", cameras=["front", "back"])])
    write_split(root, "b", "val", [record("b", "val", "three", "x:s", "x:f", [shared])])
    files = export(ExportConfig(root, tmp_path / "out"))
    assert [(f["images"], f["files_written"]) for f in files] == [(3, 2), (1, 0)]
    assert len(list((tmp_path / "out" / "images").rglob("*.jpg"))) == 2
    for dataset, split in (("a", "train"), ("b", "val")):
        check_round_trip(root, tmp_path / "out", dataset, split)
