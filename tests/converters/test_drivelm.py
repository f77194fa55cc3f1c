"""DriveLM-nuScenes converter: fixture in the real layout, both modes, tags, bad input, real sample."""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
from conftest import convert

from converters.drivelm.converter import GROUPS, DriveLMConverter, DriveLMOptions
from converters.drivelm.fixture import make_drivelm_fixture
from converters.nuscenes.media import nuscenes_relative
from converters.nuscenes.tables import NUSCENES_ORDER, NuScenesTables
from dataengine.cli import main as cli
from dataengine.context import resolve
from dataengine.converter import Quarantined, Record, Unit
from dataengine.errors import UsageError
from dataengine.fixtures import fixture_jobs
from dataengine.manifest import read_quarantine
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.schema import validate_sample
from dataengine.validate import validate_root

MULTI_VIEW_PREFIX = ("1: <image> 2: <image> 3: <image> 4: <image> 5: <image> 6: <image>. These six images are the "
                     "front view, front left view, front right view, back view, back left view and back right view "
                     "of the ego vehicle. ")
TAG = re.compile(r"<c\d+,CAM_[A-Z_]+,[\d.]+,[\d.]+>")


def qa_count(data: dict) -> int:
    return sum(len(qs) for scene in data.values() for frame in scene["key_frames"].values()
               for qs in frame["QA"].values())


def samples(root: Path, split: str = "train") -> list[dict]:
    return [s.sample for s in DatasetReader(root, "drivelm", split)]


@pytest.fixture(scope="module")
def fixture_src(tmp_path_factory) -> tuple[Path, DriveLMOptions]:
    out = tmp_path_factory.mktemp("drivelm") / "data"
    return make_drivelm_fixture(out), DriveLMOptions(nuscenes_root=str(out / "nuscenes"))


@pytest.fixture(scope="module")
def per_qa(tmp_path_factory, fixture_src, ray_session) -> Path:
    out = tmp_path_factory.mktemp("drivelm_per_qa")
    convert("drivelm", fixture_src[0], out, fixture_src[1])
    return out


def test_fixture_is_in_the_real_layout(fixture_src):
    src, opts = fixture_src
    assert src.name == "v1_1_train_nus.json" and src.parent.name == "QA_dataset_nus"
    data = json.loads(src.read_text())
    tables = NuScenesTables(Path(opts.nuscenes_root), "v1.0-mini")
    for scene_token, scene in data.items():
        assert set(scene) == {"scene_description", "key_frames"}
        assert tables.get("scene", scene_token)
        for sample_token, frame in scene["key_frames"].items():
            assert tables.get("sample", sample_token)["scene_token"] == scene_token
            assert set(frame) == {"key_object_infos", "QA", "image_paths"}
            assert list(frame["QA"]) == list(GROUPS)
            assert list(frame["image_paths"]) == list(NUSCENES_ORDER)
            for channel, path in frame["image_paths"].items():
                assert path.startswith(f"../nuscenes/samples/{channel}/")
                assert (src.parent / path).is_file()  # relative to the JSON's folder, as DriveLM ships it
    assert qa_count(data) == 32


def test_per_qa_converts_validates_and_keeps_every_qa(per_qa, fixture_src):
    src, opts = fixture_src
    data = json.loads(src.read_text())
    assert validate_root(per_qa) == {"drivelm/train": qa_count(data)}
    assert read_quarantine(per_qa / "drivelm" / "train" / "quarantine.jsonl") == []
    by_key = {s["id"]: s for s in samples(per_qa)}
    for scene_token, scene in data.items():
        for sample_token, frame in scene["key_frames"].items():
            for group, qas in frame["QA"].items():
                for i, qa in enumerate(qas):
                    s = by_key.pop(f"drivelm-{sample_token}-{group}-{i}")
                    assert s["task"] == f"vqa.{group}" and s["layout"] == "multi_view"
                    assert (s["scene_id"], s["frame_id"]) == (f"nuscenes:{scene_token}", f"nuscenes:{sample_token}")
                    assert s["conversations"] == [{"role": "user", "content": qa["Q"]},
                                                  {"role": "assistant", "content": qa["A"]}]
                    assert [m["source_camera"] for m in s["media"]] == list(NUSCENES_ORDER)
                    sha = [hashlib.sha1((Path(opts.nuscenes_root) / nuscenes_relative(frame["image_paths"][c]))
                                        .read_bytes()).hexdigest() for c in NUSCENES_ORDER]
                    assert [m["sha1"] for m in s["media"]] == sha
                    assert s["meta"]["scene_description"] == scene["scene_description"]
    assert by_key == {}


def test_object_tags_are_kept_and_mapped(per_qa):
    tagged = [s for s in samples(per_qa) if TAG.search(s["conversations"][0]["content"])]
    assert tagged
    for s in tagged:
        text = s["conversations"][0]["content"] + s["conversations"][1]["content"]
        assert [t["tag"] for t in s["meta"]["object_tags"]] == list(dict.fromkeys(TAG.findall(text)))
        for t in s["meta"]["object_tags"]:
            channel = t["tag"].split(",")[1]
            assert t["source_camera"] == channel
            assert t["camera"] == channel[4:].lower()
            assert s["media"][t["media_index"]]["source_camera"] == channel
        by_tag = {o["tag"]: o for o in s["objects"]}
        for t in s["meta"]["object_tags"]:
            assert by_tag[t["tag"]]["box_2d"][0]["camera"] == t["camera"]
            assert by_tag[t["tag"]]["label"] == t["id"]


def test_prompt_renders_as_robotron_multi_view(per_qa):
    s = next(s for s in samples(per_qa) if s["task"] == "vqa.prediction")
    assert render(s).conversation[0]["content"] == MULTI_VIEW_PREFIX + s["conversations"][0]["content"]


def test_frame_ids_match_the_nuscenes_sample_tokens(per_qa, fixture_src):
    tables = NuScenesTables(Path(fixture_src[1].nuscenes_root), "v1.0-mini")
    tokens = {f"nuscenes:{s['token']}" for s in tables.t["sample"]}
    assert {s["frame_id"] for s in samples(per_qa)} <= tokens


def test_per_frame_mode_one_multi_turn_sample_per_key_frame(tmp_path, fixture_src, ray_session):
    src, opts = fixture_src
    data = json.loads(src.read_text())
    convert("drivelm", src, tmp_path, DriveLMOptions(nuscenes_root=opts.nuscenes_root, drivelm_mode="per_frame"))
    validate_root(tmp_path)
    out = {s["id"]: s for s in samples(tmp_path)}
    frames = {k: f for scene in data.values() for k, f in scene["key_frames"].items()}
    assert set(out) == {f"drivelm-{k}" for k in frames}
    for token, frame in frames.items():
        s = out[f"drivelm-{token}"]
        qas = [(g, i, qa) for g in GROUPS for i, qa in enumerate(frame["QA"][g])]
        assert s["task"] == "vqa.graph"
        assert [t["content"] for t in s["conversations"]] == [x for _, _, qa in qas for x in (qa["Q"], qa["A"])]
        assert [t["role"] for t in s["conversations"]] == ["user", "assistant"] * len(qas)
        assert [(t["qa_group"], t["qa_index"]) for t in s["meta"]["turns"]] == [(g, i) for g, i, _ in qas]
        assert render(s).conversation[0]["content"].startswith(MULTI_VIEW_PREFIX)
        assert not any("<image>" in t["content"] for t in render(s).conversation[1:])


# --- bad input ---------------------------------------------------------------------------------------
def _broken_copy(src: Path, tmp_path: Path) -> tuple[Path, dict]:
    """The fixture JSON with one problem per key frame; returns the path and expected reasons."""
    data = json.loads(src.read_text())
    scenes = list(data.values())
    (f0, f1), (f2, f3) = (list(s["key_frames"].values()) for s in scenes)
    good_copy = copy.deepcopy(f0)
    del f0["QA"]["perception"][1]["A"]                                              # 1 QA bad
    f0["QA"]["prediction"][0]["Q"] = "Is <c9,CAM_ROOF,1.0,2.0> moving?"             # 1 QA bad
    f1["image_paths"]["CAM_BACK"] = f1["image_paths"]["CAM_BACK"].replace(".jpg", "_gone.jpg")  # 8 QA bad
    f2["image_paths"]["CAM_FRONT"] = "../nuscenes/samples/CAM_FRONT/../../../outside.jpg"  # 8 QA bad
    del f3["image_paths"]["CAM_BACK_LEFT"]                                           # 8 QA bad
    data["0" * 32] = {"scene_description": "no key frames"}                          # 1 record
    data["scene 0061"] = {"scene_description": "a name, not a token", "key_frames": {}}  # 1 record
    data["f" * 32] = {"scene_description": "a key frame without QA", "key_frames": {
        "e" * 32: {"image_paths": f0["image_paths"]}, "d" * 32: good_copy}}
    path = tmp_path / "QA_dataset_nus" / "broken.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data, indent=4))
    return path, data


def test_bad_records_are_quarantined_with_reasons(tmp_path, fixture_src, ray_session):
    src, opts = fixture_src
    path, data = _broken_copy(src, tmp_path)
    out = tmp_path / "shards"
    convert("drivelm", path, out, opts)
    validate_root(out)
    reasons = {q["record_id"]: q["reason"] for q in read_quarantine(out / "drivelm" / "train" / "quarantine.jsonl")}
    written = samples(out)
    f0, f1, f2, f3 = (k for s in list(data.values())[:2] for k in s["key_frames"])
    assert reasons.pop(f"{f0}/perception/1") == "QA item has no A string"
    assert reasons.pop(f"{f0}/prediction/0") == "object tag <c9,CAM_ROOF,1.0,2.0> names unknown camera CAM_ROOF"
    assert reasons.pop("0" * 32) == "scene has no key_frames object"
    assert reasons.pop("scene 0061") == "scene key is not a nuScenes scene token (32 hex digits)"
    assert reasons.pop("e" * 32) == "key frame has no QA object"
    for token, expected in ((f1, "CAM_BACK: missing image samples/CAM_BACK/"),
                            (f2, "CAM_FRONT: path 'samples/CAM_FRONT/../../../outside.jpg' escapes the dataset root"),
                            (f3, "image_paths lacks CAM_BACK_LEFT")):
        mine = {k: reasons.pop(k) for k in [k for k in reasons if k.startswith(token + "/")]}
        assert len(mine) == 8 and all(r.startswith(expected) for r in mine.values()), mine
    assert reasons == {}
    # records in = written + quarantined: every QA is one or the other, plus 3 broken scenes/frames
    good_frames = {s["frame_id"] for s in written}
    assert good_frames == {f"nuscenes:{f0}", f"nuscenes:{'d' * 32}"}
    assert len(written) == (8 - 2) + 8
    card = json.loads((out / "drivelm" / "train" / "card.json").read_text())
    fixture_qa = qa_count({k: v for k, v in data.items() if k not in ("0" * 32, "f" * 32, "scene 0061")})
    assert card["counts"]["records_in"] == fixture_qa + 8 + 3 == 32 + 8 + 3


def test_bad_qa_items_in_per_frame_mode_leave_the_rest_of_the_frame(tmp_path, fixture_src):
    src, opts = fixture_src
    data = json.loads(src.read_text())
    scene_token = next(iter(data))
    frame_token, frame = next(iter(data[scene_token]["key_frames"].items()))
    frame["QA"]["planning"][0]["A"] = ""
    frame["QA"]["extra_group"] = [{"Q": "q", "A": "a"}]
    unit = Unit(scene_token, "train", {"scene_token": scene_token, "scene": {"key_frames": {frame_token: frame}}})
    converter = DriveLMConverter(src, DriveLMOptions(nuscenes_root=opts.nuscenes_root, drivelm_mode="per_frame"))
    items = list(converter.convert_unit(unit))
    assert [(q.record_id, q.reason) for q in items if isinstance(q, Quarantined)] == [
        (f"{frame_token}/planning/0", "empty answer in a train split"),
        (f"{frame_token}/extra_group/0", "unknown QA group (known: perception, prediction, planning, behavior)")]
    [record] = [r for r in items if isinstance(r, Record)]
    assert len(record.sample["conversations"]) == 2 * (8 - 1)
    # a question-only file (val) keeps empty answers
    val = DriveLMConverter(src, DriveLMOptions(nuscenes_root=opts.nuscenes_root, drivelm_split="val"))
    assert sum(isinstance(r, Record) for r in val.convert_unit(unit)) == 8


@pytest.mark.parametrize("what,expected", [
    ("dir", "is not a file"), ("table", "not a DriveLM-nuScenes QA file"), ("garbage", "is not valid JSON"),
    ("no_root", "needs --nuscenes-root"), ("bad_root", "is not a nuScenes dataroot"),
    ("mode", "--drivelm-mode 'per_scene'"), ("split", "--drivelm-split 'dev'")])
def test_not_a_drivelm_source_is_a_usage_error(tmp_path, fixture_src, what, expected):
    src, opts = fixture_src
    root = opts.nuscenes_root
    table = Path(root) / "v1.0-mini" / "scene.json"
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    cases = {"dir": (Path(root), opts), "table": (table, opts), "garbage": (garbage, opts),
             "no_root": (src, DriveLMOptions()), "bad_root": (src, DriveLMOptions(nuscenes_root=str(tmp_path))),
             "mode": (src, DriveLMOptions(nuscenes_root=root, drivelm_mode="per_scene")),
             "split": (src, DriveLMOptions(nuscenes_root=root, drivelm_split="dev"))}
    with pytest.raises(UsageError, match=re.escape(expected)):
        DriveLMConverter(*cases[what]).check_source()


def test_cli_without_nuscenes_root_exits_2_and_writes_nothing(tmp_path, fixture_src, capsys):
    out = tmp_path / "out"
    assert cli(["convert", "drivelm", "--src", str(fixture_src[0]), "--out", str(out)]) == 2
    assert "needs --nuscenes-root" in capsys.readouterr().err
    assert not out.exists()


# --- real sample: challenge/data/train_sample.json against realdata/nuscenes -------------------------
def test_real_train_sample_every_qa_accounted(real_samples, tmp_path, ray_session):
    src, root = real_samples / "drivelm" / "train_sample.json", real_samples / "nuscenes"
    data = json.loads(src.read_text())
    assert qa_count(data) == 790
    out = tmp_path / "shards"
    convert("drivelm", src, out, DriveLMOptions(nuscenes_root=str(root), drivelm_mode="per_frame"))
    assert validate_root(out) == {"drivelm/train": 9}
    assert read_quarantine(out / "drivelm" / "train" / "quarantine.jsonl") == []
    got = samples(out)
    assert sum(len(s["conversations"]) for s in got) == 2 * 790
    for s in got:
        paths = data[s["meta"]["scene_token"]]["key_frames"][s["meta"]["sample_token"]]["image_paths"]
        files = [(src.parent / paths[c]).resolve() for c in NUSCENES_ORDER]  # ../nuscenes/samples/...
        assert [f.relative_to(root.resolve()).as_posix() for f in files] == \
            [nuscenes_relative(paths[c]) for c in NUSCENES_ORDER]
        assert [m["sha1"] for m in s["media"]] == [hashlib.sha1(f.read_bytes()).hexdigest() for f in files]
        assert all((m["width"], m["height"]) == (1600, 900) for m in s["media"])


def test_real_train_sample_per_qa_records(real_samples):
    """Per-QA mode without writing (790 samples x 6 real images would be 0.5 GB of shards)."""
    opts = DriveLMOptions(nuscenes_root=str(real_samples / "nuscenes"))
    converter = DriveLMConverter(real_samples / "drivelm" / "train_sample.json", opts)
    converter.check_source()
    records = [r for unit in converter.units() for r in converter.convert_unit(unit)]
    assert len(records) == 790 and all(isinstance(r, Record) for r in records)
    assert len({r.sample["id"] for r in records}) == 790
    # the key frame's fields are each record's context, one object per frame, not per question
    assert len({id(r.context) for r in records}) == 9
    assert not any(set(r.sample) & {"media", "objects", "frame_id"} for r in records)
    tags = [t for r in records for t in r.sample["meta"]["object_tags"]]
    assert {t["camera"] for t in tags} == {"front", "back", "front_right", "front_left"}
    for r in records[:: 50]:
        whole = resolve(r.sample, r.context)
        whole["media"] = [{**m, "sha1": hashlib.sha1(b).hexdigest()} for m, b in zip(whole["media"], r.media)]
        validate_sample(whole)
    first = records[0].sample
    assert first["id"] == "drivelm-4a0798f849ca477ab18009c3a20b7df2-perception-0"
    assert first["conversations"][0]["content"] == "What are objects to the front right of the ego car?"


def test_fixture_ships_a_val_file_on_the_nuscenes_val_scenes(tmp_path, fixture_src, ray_session):
    """The demo converts both files; evaluation reads drivelm/val, whose scenes training never sees."""
    from converters.nuscenes.tables import official_splits

    conversions = fixture_jobs("drivelm", tmp_path / "raw")  # as the demo finds it
    assert [o.drivelm_split for _, o in conversions] == ["train", "val"]
    for job_src, options in conversions:
        convert("drivelm", job_src, tmp_path, options)
    tables = NuScenesTables(Path(conversions[0][1].nuscenes_root), "v1.0-mini")
    split_of = official_splits("v1.0-mini")
    for split in ("train", "val"):
        scenes = {s["scene_id"].split(":")[1] for s in samples(tmp_path, split)}
        assert scenes and {split_of[tables.get("scene", t)["name"]] for t in scenes} == {split}
