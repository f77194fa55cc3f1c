"""Shard writer and reader: deterministic bytes, zeroed tar metadata, WebDataset compatibility.
Shards hold each sample's JSON (sample/3); the images are in the media store (test_mediastore.py)."""
import hashlib
import io
import json
import tarfile

import pytest
from PIL import Image

from dataengine import SCHEMA_VERSION
from dataengine.converter import Record
from dataengine.reader import DatasetReader, iter_shard, parse_members
from dataengine.shards import TarShardWriter, seal


def jpeg(color, size=(32, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def record(i: int) -> Record:
    blobs = [jpeg((i * 20 % 255, 0, 0)), jpeg((0, i * 30 % 255, 0))]
    sample = {
        "schema": "sample/1", "id": f"unit-{i:03d}", "dataset": "unit", "split": "train", "task": "vqa.test",
        "scene_id": "unit:s", "frame_id": f"unit:s:{i}", "layout": "multi_view",
        "media": [{"member": f"img{j}.jpg", "camera": cam, "source_camera": cam, "time_offset_s": 0.0,
                   "width": 32, "height": 16} for j, cam in enumerate(["front", "back"])],
        "conversations": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}],
        "meta": {"i": i},
    }
    return Record(sample, blobs)


def write(directory, n=5, shard_bytes=1 << 30):
    writer = TarShardWriter(directory, "u", shard_bytes)
    where = [writer.write(f"unit-{i:03d}", seal(record(i))) for i in range(n)]
    writer.close()
    return writer.parts, where


def test_same_input_same_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    parts_a, _ = write(tmp_path / "a")
    parts_b, _ = write(tmp_path / "b")
    assert [p.read_bytes() for p in parts_a] == [p.read_bytes() for p in parts_b]


def test_tar_metadata_zeroed_and_member_order(tmp_path):
    parts, _ = write(tmp_path, n=2)
    with tarfile.open(parts[0]) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == ["unit-000.json", "unit-001.json"]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {(0, 0, 0, "", "", 0o644)}


def test_sealed_sample_names_its_media_by_sha1(tmp_path):
    parts, _ = write(tmp_path, n=3)
    stored = list(iter_shard(parts[0]))
    assert stored[2].sample["schema"] == SCHEMA_VERSION == "sample/3" and not stored[2].media
    assert stored[2].sample["media"][1]["sha1"] == hashlib.sha1(record(2).media[1]).hexdigest()


def test_byte_ranges_allow_random_access(tmp_path):
    parts, where = write(tmp_path, n=4)
    blob = parts[0].read_bytes()
    members = parse_members(blob[where[3].offset: where[3].offset + where[3].size])
    assert [name for name, _ in members] == ["unit-003.json"]


def test_rollover_at_target_size(tmp_path):
    parts, where = write(tmp_path, n=6, shard_bytes=4000)
    assert len(parts) > 1
    assert all(p.stat().st_size <= 4000 + 10240 for p in parts)
    assert [w.part for w in where] == sorted(w.part for w in where)


def test_webdataset_reads_our_shards(tmp_path):
    import webdataset as wds

    parts, _ = write(tmp_path, n=3)
    samples = list(wds.WebDataset(str(parts[0]), shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == ["unit-000", "unit-001", "unit-002"]
    assert json.loads(samples[1]["json"])["id"] == "unit-001"


def test_media_count_mismatch_is_an_error():
    bad = record(1)
    bad.media.pop()
    with pytest.raises(ValueError, match="2 media items but 1 byte blobs"):
        seal(bad)


def test_dataset_reader_get_and_iter(nuscenes_shards):
    reader = DatasetReader(nuscenes_shards, "nuscenes", "train")
    keys = reader.keys()
    assert len(reader) == len(keys) == 60  # 30 key frames: planning + agent-motion samples
    streamed = list(reader)
    assert [s.key for s in streamed] == keys
    one = reader.get(keys[7])
    assert one.sample == streamed[7].sample and one.media == streamed[7].media
    assert [hashlib.sha1(one.media_bytes(i)).hexdigest() for i in range(6)] == [
        m["sha1"] for m in one.sample["media"]]
    img = one.image(0, size=(80, 45))
    assert img.size == (80, 45) and img.mode == "RGB"
    with pytest.raises(KeyError, match="not in"):
        reader.get("nuscenes-nope")


@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 123_456, 8 ** 11 - 1, 8 ** 11])
def test_template_header_equals_tarfile(size):
    """The filled-in template is byte for byte tarfile's GNU header, for short and long names
    (over 100 bytes: tarfile's long-name members), non-ASCII names and base-256 sizes."""
    from dataengine.shards import _header, _tarinfo

    for name in ["a.json", "nuscenes-" + "f" * 32 + ".img5.jpg", "x" * 100, "y" * 101, "vidéo-ü.img0.jpg"]:
        assert _header(name, size) == _tarinfo(name, size).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def test_short_writes_are_completed(tmp_path, monkeypatch):
    """`writev` may write less than asked (signals, huge samples): the rest still lands, in order."""
    import os

    from dataengine import shards

    real = os.writev
    monkeypatch.setattr(shards.os, "writev", lambda fd, bufs: real(fd, [bytes(bufs[0])[:7]]))
    chunks = [b"header" * 3, b"", b"data" * 1000, b"\0" * 5]
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    assert shards._write_all(fd, chunks) == sum(map(len, chunks))
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(chunks)


def test_non_finite_number_is_an_error_not_null():
    """orjson would write NaN as null: a sample carrying one is refused, naming the field."""
    from dataengine.shards import sample_json

    sample = seal(record(1))
    assert b'"i":1' in sample_json(sample)
    sample["meta"]["speed"] = [1.0, float("nan")]
    with pytest.raises(ValueError, match=r"unit-001: meta.speed\[1\] is nan"):
        sample_json(sample)
    sample["meta"]["speed"] = None  # a real null is fine
    assert b'"speed":null' in sample_json(sample)


def test_writer_output_is_synced_and_complete(tmp_path, monkeypatch):
    """Early writeback is asked for as a part grows, and a closed part is fdatasync'ed before
    its ledger entry can name it."""
    import os

    from dataengine import shards

    calls = []
    monkeypatch.setattr(shards, "FLUSH_AFTER", 512)  # parts hold sample JSON only (media go to the store)
    monkeypatch.setattr(shards, "_START_WRITEBACK", lambda fd, off, n, advice: calls.append(("fadvise", off, n)))
    monkeypatch.setattr(shards, "_SYNC", lambda fd: (calls.append(("sync",)), os.fsync(fd)))
    parts, _ = write(tmp_path, n=3)
    assert calls[-1] == ("sync",) and sum(c[0] == "fadvise" for c in calls) >= 2
    flushed = [c for c in calls if c[0] == "fadvise"]
    assert all(a[1] + a[2] == b[1] for a, b in zip(flushed, flushed[1:]))  # contiguous ranges
    assert len(tarfile.open(parts[0]).getmembers()) == 3  # one JSON member per sample
