"""The media store: each image once per shard root, whoever references it; commits that
neither lose nor double an entry under concurrency; validation down to the bytes."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import tarfile
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import convert
from synthetic_shards import jpeg, record

from dataengine.errors import ValidationError
from dataengine.manifest import dataset_splits, read_manifest
from dataengine.mediastore import INDEX, PACKS, MediaStore, StagedMedia, commit, media_dir, read_index
from dataengine.reader import DatasetReader, iter_shard
from dataengine.shards import TarShardWriter
from dataengine.validate import validate_root


def referenced(root: Path) -> dict[str, set[str]]:
    """sha1s referenced per dataset, from the manifests."""
    out: dict[str, set[str]] = {}
    for dataset, split in dataset_splits(root):
        for sha1s in read_manifest(root / dataset / split / "manifest.parquet").column("media_sha1").to_pylist():
            out.setdefault(dataset, set()).update(sha1s)
    return out


def pack_members(root: Path, images: bool = True) -> list[str]:
    """sha1s of the packs' images (or, `images=False`, of their sample contexts, `<sha1>.json`)."""
    names = []
    for pack in sorted((media_dir(root) / PACKS).glob("*.tar")):
        with tarfile.open(pack) as tar:
            names += [m.name.partition(".")[0] for m in tar if m.name.endswith(".json") != images]
    return names


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory, ray_session) -> Path:
    """nuScenes, DriveLM, nuScenes-QA and Talk2Car fixtures over ONE generated nuScenes root,
    converted into one shard root (nuScenes first, as `dataengine build` orders them)."""
    from converters.drivelm.converter import DriveLMOptions
    from converters.drivelm.fixture import JSON_PATH, VERSION, _write_split
    from converters.nuscenes.tables import NuScenesTables, official_scene_names
    from converters.nuscenes_qa.converter import NuScenesQAOptions
    from converters.nuscenes_qa.fixture import make_nuscenes_qa
    from converters.talk2car.converter import Talk2CarOptions
    from converters.talk2car.fixture import make_talk2car

    raw = tmp_path_factory.mktemp("one_nuscenes")
    make_nuscenes_qa(raw)
    make_talk2car(raw)  # the same generated root (same seed and sizes), written over it
    train = set(official_scene_names(VERSION)[0])
    drivelm_json = _write_split(raw / JSON_PATH, NuScenesTables(raw / "nuscenes", VERSION), train, 320, 180)
    out = tmp_path_factory.mktemp("shared_shards")
    nus = str(raw / "nuscenes")
    added = {}
    for dataset, src, options in (("nuscenes", raw / "nuscenes", None),
                                  ("drivelm", drivelm_json, DriveLMOptions(nuscenes_root=nus)),
                                  ("nuscenes_qa", raw, NuScenesQAOptions(nuscenes_root=nus)),
                                  ("talk2car", raw, Talk2CarOptions(nuscenes_root=nus))):
        cards = convert(dataset, src, out, options).cards
        added[dataset] = sum(c["counts"]["media_added"] for c in cards.values())
    (out / "added.json").write_text(json.dumps(added))
    return out


def test_one_nuscenes_root_stores_each_image_once(shared_root):
    refs = referenced(shared_root)
    assert set(refs) == {"nuscenes", "drivelm", "nuscenes_qa", "talk2car"}
    everything = set().union(*refs.values())
    members = pack_members(shared_root)
    assert len(members) == len(set(members)) == len(everything)  # each image once, every one there
    index = read_index(shared_root)
    assert sorted(r["sha1"] for r in index.rows() if r["width"]) == sorted(everything)
    # beside them, DriveLM's per-QA samples and nuScenes-QA's questions share one context per key frame each
    frames = [{(d, r["frame_id"]) for r in read_manifest(m).to_pylist()}
              for d in ("drivelm", "nuscenes_qa") for m in sorted((shared_root / d).glob("*/manifest.parquet"))]
    contexts = pack_members(shared_root, images=False)
    assert len(contexts) == len(set(contexts)) == len(set().union(*frames)) == sum(not r["width"] for r in index.rows())
    # the derived datasets only reference nuScenes' camera frames: they add nothing
    assert json.loads((shared_root / "added.json").read_text()) == {
        "nuscenes": len(everything), "drivelm": 0, "nuscenes_qa": 0, "talk2car": 0}
    for dataset in ("drivelm", "nuscenes_qa", "talk2car"):
        assert refs[dataset] <= refs["nuscenes"]
    packs = list((media_dir(shared_root) / PACKS).glob("*.tar"))
    distinct = sum(r["size"] for r in index.rows())
    # beyond the images: a 512-byte header and < 512 bytes of padding each, a 10 KB tar end per pack
    assert distinct < sum(p.stat().st_size for p in packs) <= distinct + 1024 * len(index) + 10240 * len(packs)


def test_shared_root_validates_and_reads_through_the_index(shared_root):
    checked = validate_root(shared_root)
    assert checked["drivelm/train"] > 0 and checked["nuscenes/train"] == 60  # planning + agent-motion samples
    reader = DatasetReader(shared_root, "drivelm", "train")
    stored = reader.get(reader.keys()[3])
    assert [hashlib.sha1(stored.media_bytes(i)).hexdigest() for i in range(len(stored.sample["media"]))] == [
        m["sha1"] for m in stored.sample["media"]]
    assert stored.sample["schema"] == "sample/3"


def test_validate_names_a_corrupt_pack(shared_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(shared_root, root)
    row = [r for r in read_index(root).rows() if r["width"]][5]  # an image (contexts are .json)
    pack = media_dir(root) / PACKS / row["pack"]
    data = bytearray(pack.read_bytes())
    data[row["offset"] + row["size"] // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    with pytest.raises(ValidationError, match=f"{row['pack']}: bytes of {row['sha1']}.jpg do not match"):
        validate_root(root)


def test_validate_reports_an_unresolved_reference(shared_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(shared_root, root)
    table = pq.read_table(media_dir(root) / INDEX)
    pack = next(p for p, w in zip(table.column("pack").to_pylist(), table.column("width").to_pylist()) if w)
    gone = {h for h, p in zip(table.column("sha1").to_pylist(), table.column("pack").to_pylist()) if p == pack}
    keep = [i for i, p in enumerate(table.column("pack").to_pylist()) if p != pack]
    pq.write_table(table.take(keep), media_dir(root) / INDEX)
    (media_dir(root) / PACKS / pack).unlink()
    with pytest.raises(ValidationError, match=r"\(sha1 [0-9a-f]{40}\) is not in the media store") as err:
        validate_root(root)
    assert re.search(r"sha1 ([0-9a-f]{40})", str(err.value)).group(1) in gone


def test_v1_shard_with_inline_members_still_reads(tmp_path):
    """A sample/1 shard carried its images as members: the reader returns them as before."""
    blob = jpeg(3)
    sample = record("old", "train", "a", "x:s", "x:f", [blob]).sample
    sample["media"][0]["sha1"] = hashlib.sha1(blob).hexdigest()
    writer = TarShardWriter(tmp_path, "v1")
    writer.write_members([("old-a.json", json.dumps(sample).encode()), ("old-a.img0.jpg", blob)])
    writer.close()
    (stored,) = iter_shard(writer.parts[0], MediaStore(tmp_path))
    assert stored.media_bytes(0) == blob


def stage(tmp: Path, root: Path, name: str, blobs: list[bytes], context: bytes | None = None) -> dict:
    """A unit's ledger summary with its media (and a sample context) staged against `root`'s index."""
    staged = StagedMedia(root, tmp, name, 1 << 30)
    for i, blob in enumerate(blobs):
        rec = record("c", "train", f"{name}{i}", "x:s", "x:f", [blob])
        rec.sample["media"][0]["sha1"] = hashlib.sha1(blob).hexdigest()
        staged.add(rec.sample, rec.media)
    if context is not None:
        staged.add_blob(hashlib.sha1(context).hexdigest(), "json", context)
    staged.close()
    return {"media": staged.entries, "media_parts": [p.name for p in staged.parts]}


def _commit_worker(root: str, tmp: str, seeds: list[int], barrier) -> None:
    summary = stage(Path(tmp), Path(root), "u", [jpeg(s) for s in seeds])
    barrier.wait()
    commit(Path(root), Path(tmp), [summary])


def test_concurrent_commits_neither_lose_nor_double(tmp_path):
    """Four processes stage overlapping images against an empty store and commit at once: the
    index holds each image once, every pack member is indexed, and the bytes check out."""
    root = tmp_path / "root"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    sets = [list(range(0, 30)), list(range(20, 50)), list(range(10, 40)), list(range(45, 60))]
    procs = [ctx.Process(target=_commit_worker, args=(str(root), str(tmp_path / f"w{i}"), s, barrier))
             for i, s in enumerate(sets)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    expected = {hashlib.sha1(jpeg(s)).hexdigest() for s in range(60)}
    members = pack_members(root)
    assert sorted(members) == sorted(expected)
    store = MediaStore(root)
    assert all(hashlib.sha1(store.read(h)).hexdigest() == h for h in expected)


def test_commit_within_one_job_keeps_the_first_unit_and_is_rerunnable(tmp_path):
    root = tmp_path / "root"
    a = stage(tmp_path / "s", root, "a", [jpeg(1), jpeg(2)], context=b'{"frame_id":"x:f"}')
    b = stage(tmp_path / "s", root, "b", [jpeg(2), jpeg(3)], context=b'{"frame_id":"x:f"}')  # both stage jpeg(2)
    assert commit(root, tmp_path / "s", [a, b]) == {
        "media_added": 3, "media_bytes_added": sum(len(jpeg(i)) for i in (1, 2, 3)),
        "contexts_added": 1, "context_bytes_added": len(b'{"frame_id":"x:f"}')}
    first = {p.name: p.read_bytes() for p in (media_dir(root) / PACKS).iterdir()}
    assert len(first) == 2 and len(pack_members(root)) == 3 and len(pack_members(root, images=False)) == 1
    assert set(commit(root, tmp_path / "s", [a, b]).values()) == {0}  # a rerun
    assert {p.name: p.read_bytes() for p in (media_dir(root) / PACKS).iterdir()} == first


def test_two_conversion_jobs_at_once_into_one_root(tmp_path, ray_session):
    """nuScenes and nuScenes-QA over the same frames, converted at the same time into one root."""
    from converters.nuscenes_qa.converter import NuScenesQAOptions
    from converters.nuscenes_qa.fixture import make_nuscenes_qa

    raw = make_nuscenes_qa(tmp_path / "raw")
    out = tmp_path / "shards"
    errors = []

    def run(dataset, src, options):
        try:
            convert(dataset, src, out, options)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    jobs = [threading.Thread(target=run, args=("nuscenes", raw / "nuscenes", None)),
            threading.Thread(target=run, args=("nuscenes_qa", raw,
                                               NuScenesQAOptions(nuscenes_root=str(raw / "nuscenes"))))]
    for t in jobs:
        t.start()
    for t in jobs:
        t.join(300)
    assert not errors
    everything = set().union(*referenced(out).values())
    members = pack_members(out)
    assert len(members) == len(set(members)) and set(members) == everything
    validate_root(out)


def test_storage_figures_per_dataset_and_root(shared_root):
    from dataengine.storage import ROOT, storage_figures

    figures = storage_figures(shared_root)
    sizes = {r["sha1"]: r["size"] for r in read_index(shared_root).rows()}
    rows = read_manifest(shared_root / "drivelm" / "train" / "manifest.parquet").column("media_sha1").to_pylist()
    drivelm = figures["drivelm"]
    assert drivelm["referenced_bytes"] == sum(sizes[h] for row in rows for h in row)
    assert drivelm["distinct_bytes"] == sum(sizes[h] for h in {h for row in rows for h in row})
    assert drivelm["sharing"] == pytest.approx(6 * len(rows) / drivelm["images"], rel=0.05)  # 6 cameras per QA
    assert figures["nuscenes"]["sharing"] == 2.0  # a planning and an agent-motion sample per key frame
    images = {r["sha1"]: r["size"] for r in read_index(shared_root).rows() if r["width"]}
    assert figures[ROOT]["distinct_bytes"] == figures[ROOT]["store_bytes"] == sum(images.values())
    assert figures[ROOT]["context_bytes"] == sum(sizes.values()) - sum(images.values()) > 0
