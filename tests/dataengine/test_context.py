"""Sample contexts: a key frame's shared fields stored once, merged back by every reader; the
DriveLM per-QA storage bound (issue 19) on the real sample file and on its fixture twin."""
from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import convert

from converters.drivelm.converter import DriveLMOptions
from converters.drivelm.fixture import make_drivelm_fixture
from dataengine.context import resolve
from dataengine.errors import ValidationError
from dataengine.manifest import dataset_splits, read_manifest
from dataengine.mediastore import PACKS, media_dir, read_index
from dataengine.reader import DatasetReader
from dataengine.storage import ROOT, storage_figures
from dataengine.validate import validate_root

FRAME = ("scene_id", "frame_id", "layout", "media", "objects")  # DriveLM's context fields


# --- the merge rule ----------------------------------------------------------------------------------
def test_resolve_merges_fields_and_meta_keys():
    context = {"frame_id": "x:f", "media": [{"sha1": "a"}], "meta": {"scene": "s"}}
    sample = {"id": "k", "task": "vqa.x", "context": "0" * 40, "meta": {"qa": 1}}
    whole = resolve(sample, context)
    assert whole == {"id": "k", "task": "vqa.x", "frame_id": "x:f", "media": [{"sha1": "a"}],
                     "meta": {"scene": "s", "qa": 1}}
    assert whole["media"] is context["media"]  # the writer fills sha1s into the context's items
    plain = {"id": "k", "meta": {}}
    assert resolve(plain, None) is plain


@pytest.mark.parametrize("sample,context,message", [
    ({"id": "k", "task": "a"}, {"task": "b"}, r"fields \['task'\] are both in the sample and in its context"),
    ({"id": "k", "meta": {"q": 1}}, {"meta": {"q": 2}}, r"meta keys \['q'\] are both"),
    ({"id": "k"}, {"id": "other"}, r"its context holds \['id'\], which only the sample may hold"),
    ({"id": "k"}, {"schema": "sample/3"}, r"its context holds \['schema'\]"),
    ({"id": "k", "meta": {}}, {"meta": []}, "meta must be an object"),
    ({"id": "k"}, ["not", "an", "object"], "its context is a list, not an object"),
])
def test_resolve_refuses_ambiguous_or_bad_contexts(sample, context, message):
    with pytest.raises(ValueError, match=f"sample k: {message}"):
        resolve(sample, context)


# --- DriveLM per QA: how many bytes a root holds ------------------------------------------------------
def storage(root: Path) -> dict:
    """Bytes on disk, distinct image bytes the samples reference, and their conversation text."""
    text = sum(len(turn["content"].encode()) for d, s in dataset_splits(root) for st in DatasetReader(root, d, s)
               for turn in st.sample["conversations"])
    return {"on_disk": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
            "images": storage_figures(root)[ROOT]["distinct_bytes"], "text": text}


def stored_json(root: Path, dataset: str = "drivelm", split: str = "train") -> list[dict]:
    """Each sample's JSON as its shard holds it (before its context is merged back)."""
    out = []
    for shard in sorted((root / dataset / split).glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            out += [json.loads(tar.extractfile(m).read()) for m in tar]
    return out


def contexts(root: Path) -> list[dict]:
    out = []
    for pack in sorted((media_dir(root) / PACKS).glob("*.tar")):
        with tarfile.open(pack) as tar:
            out += [json.loads(tar.extractfile(m).read()) for m in tar if m.name.endswith(".json")]
    return out


def check_bound_and_layout(root: Path) -> dict:
    figures = storage(root)
    assert figures["images"] > 0 and figures["text"] > 0
    assert figures["on_disk"] <= 1.2 * (figures["images"] + figures["text"]), figures
    frames = {r["frame_id"] for r in read_manifest(root / "drivelm" / "train" / "manifest.parquet").to_pylist()}
    stored = stored_json(root)
    assert all(len(s["context"]) == 40 and not set(FRAME) & set(s) for s in stored)  # nothing of the frame
    assert len({s["context"] for s in stored}) == len(frames) == len(contexts(root))  # one context a frame
    assert {c["frame_id"] for c in contexts(root)} == frames
    return figures


def test_real_drivelm_per_qa_writes_at_most_1_2x_its_images_and_text(real_samples, tmp_path, ray_session):
    """The real DriveLM sample per QA (790 questions on 9 key frames): at most 1.2x the distinct
    images it references plus its conversation text. sample/2 wrote 9.58 MB for 6.11 MB of
    images and 0.10 MB of text (1.54x), repeating each key frame's cameras and objects in every
    question; sample/3 stores them once per frame."""
    out = tmp_path / "shards"
    convert("drivelm", real_samples / "drivelm" / "train_sample.json", out,
            DriveLMOptions(nuscenes_root=str(real_samples / "nuscenes"), drivelm_mode="per_qa"))
    assert validate_root(out) == {"drivelm/train": 790}
    figures = check_bound_and_layout(out)
    assert figures["images"] == sum(r["size"] for r in read_index(out).rows() if r["width"])  # 54 JPEGs


@pytest.fixture(scope="module")
def dense_drivelm(tmp_path_factory) -> tuple[Path, DriveLMOptions]:
    """The DriveLM fixture at nuScenes' camera size (1600x900) with one train key frame, its QA
    repeated to the real file's density (790 QA on 9 key frames: 88 a frame, here 8 x 11)."""
    raw = tmp_path_factory.mktemp("dense_drivelm")
    src = make_drivelm_fixture(raw, scenes=1, keyframes=2, width=1600, height=900)
    data = json.loads(src.read_text())
    for scene in data.values():
        for frame in scene["key_frames"].values():
            frame["QA"] = {group: qas * 11 for group, qas in frame["QA"].items()}
    src.write_text(json.dumps(data, indent=4))
    return src, DriveLMOptions(nuscenes_root=str(raw / "nuscenes"))


@pytest.fixture(scope="module")
def dense_root(tmp_path_factory, dense_drivelm, ray_session) -> Path:
    out = tmp_path_factory.mktemp("dense_shards")
    src, options = dense_drivelm
    convert("drivelm", src, out, options)
    return out


def test_fixture_twin_per_qa_writes_at_most_1_2x_its_images_and_text(dense_root):
    assert validate_root(dense_root) == {"drivelm/train": 88}
    check_bound_and_layout(dense_root)


def test_readers_see_the_whole_sample(dense_root, dense_drivelm):
    """What a reader returns is the converter's whole sample: the context merged back."""
    from converters.drivelm.converter import DriveLMConverter

    converter = DriveLMConverter(*dense_drivelm)
    records = [r for unit in converter.units() for r in converter.convert_unit(unit)]
    reader = DatasetReader(dense_root, "drivelm", "train")
    for record in records[::10]:
        got = reader.get(record.sample["id"]).sample
        want = resolve(record.sample, record.context)
        for item in want["media"]:
            item.pop("sha1", None)
        assert {**got, "media": [{k: v for k, v in m.items() if k != "sha1"} for m in got["media"]],
                "schema": "sample/1"} == want
        assert "context" not in got and got["objects"] and got["meta"]["image_paths"]


def test_context_bytes_are_deterministic(dense_drivelm, tmp_path, ray_session):
    """Two conversions (one and two workers) write the same bytes, contexts included."""
    src, options = dense_drivelm
    for workers in (1, 2):
        convert("drivelm", src, tmp_path / f"w{workers}", options, workers=workers)
    files = sorted(p.relative_to(tmp_path / "w1") for p in (tmp_path / "w1").rglob("*") if p.is_file())
    assert any(str(f).startswith("media/packs/") for f in files)
    for f in files:
        if f.name != "card.json":  # the card names the command, whose --workers differs
            assert (tmp_path / "w1" / f).read_bytes() == (tmp_path / "w2" / f).read_bytes(), f


def test_validate_names_a_sample_whose_context_is_missing(dense_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(dense_root, root)
    shard = root / "drivelm" / "train" / "shard-000000.tar"
    sha1 = stored_json(root)[0]["context"]
    shard.write_bytes(shard.read_bytes().replace(sha1.encode(), b"f" * 40))  # same length: ranges hold
    with pytest.raises(ValidationError, match=f"{shard}: sample drivelm-.*: context 'f{{40}}' is not in the media"):
        validate_root(root)


def test_exports_and_hf_rows_are_self_contained(dense_root):
    """export-webdataset and the HF rows carry the whole sample, never a context reference."""
    from dataengine.export_webdataset import sample_members
    from dataengine.hf import _rows, shard_files

    reader = DatasetReader(dense_root, "drivelm", "train")
    whole = {s.key: s.sample for s in reader}
    assert len(whole) == 88 and all(set(FRAME) <= set(s) and "context" not in s for s in whole.values())
    rows = list(_rows(str(dense_root), shard_files(dense_root, ["drivelm"])))
    assert {r["key"]: json.loads(r["sample"]) for r in rows} == whole
    assert all(r["frame_id"] == whole[r["key"]]["frame_id"] and len(r["images"]) == 6 for r in rows)
    key = reader.keys()[-1]
    members = sample_members(reader.get(key))
    assert json.loads(members[0][1]) == whole[key] and len(members) == 7


# --- the other nuScenes-derived converters ---------------------------------------------------------
def test_nuscenes_qa_and_omnidrive_store_one_context_for_a_key_frame(tmp_path):
    """Both write the same frame fields (cameras, ids, scene name, location), so in a shared
    root a key frame's context is one entry for both datasets (the demo root: OmniDrive adds
    none). The converters run in-process: what is compared is the context JSON they hand over."""
    from converters.nuscenes_qa.converter import NuScenesQAConverter, NuScenesQAOptions
    from converters.omnidrive.converter import OmniDriveConverter, OmniDriveOptions
    from converters.omnidrive.fixture import make_omnidrive
    from dataengine.shards import sample_json

    root = make_omnidrive(tmp_path / "raw", scenes_per_split=(1, 1), keyframes=2, width=160, height=90)
    token = sorted(p.stem for p in (root / "keywords" / "val").glob("*.json"))[0]
    questions = tmp_path / "qa" / "questions"
    questions.mkdir(parents=True)
    question = {"sample_token": token, "question": "Are there any cars?", "answer": "yes", "num_hop": 0,
                "template_type": "exist"}
    (questions / "NuScenes_val_questions.json").write_text(json.dumps({"questions": [question, question]}))

    def contexts_of(converter) -> dict[str, set[bytes]]:
        converter.check_source()
        records = [r for unit in converter.units() for r in converter.convert_unit(unit)]
        out: dict[str, set[bytes]] = {}
        for r in records:
            out.setdefault(r.context["frame_id"], set()).add(sample_json(r.context))
        return out

    qa = contexts_of(NuScenesQAConverter(questions.parent, NuScenesQAOptions(nuscenes_root=str(root))))
    omni = contexts_of(OmniDriveConverter(root, OmniDriveOptions(nuscenes_root=str(root))))
    assert list(qa) == [f"nuscenes:{token}"] and len(qa[f"nuscenes:{token}"]) == 1  # two questions, one context
    assert qa[f"nuscenes:{token}"] == omni[f"nuscenes:{token}"]
    assert all(len(c) == 1 for c in omni.values()) and len(omni) == 4  # 2 scenes x 2 key frames
