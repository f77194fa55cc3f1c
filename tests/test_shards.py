"""Shard writer and reader: deterministic bytes, zeroed tar metadata, WebDataset compatibility."""
import hashlib
import io
import tarfile

import pytest
from PIL import Image

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
    where = [writer.write(f"unit-{i:03d}", seal(record(i)), record(i).media) for i in range(n)]
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
    assert [i.name for i in infos] == ["unit-000.json", "unit-000.img0.jpg", "unit-000.img1.jpg",
                                       "unit-001.json", "unit-001.img0.jpg", "unit-001.img1.jpg"]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {(0, 0, 0, "", "", 0o644)}


def test_image_bytes_copied_not_reencoded(tmp_path):
    parts, _ = write(tmp_path, n=3)
    stored = list(iter_shard(parts[0]))
    assert stored[2].media["img1.jpg"] == record(2).media[1]
    assert stored[2].sample["media"][1]["sha1"] == hashlib.sha1(record(2).media[1]).hexdigest()


def test_byte_ranges_allow_random_access(tmp_path):
    parts, where = write(tmp_path, n=4)
    blob = parts[0].read_bytes()
    members = parse_members(blob[where[3].offset: where[3].offset + where[3].size])
    assert [name for name, _ in members] == ["unit-003.json", "unit-003.img0.jpg", "unit-003.img1.jpg"]


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
    assert samples[1]["img0.jpg"] == record(1).media[0]


def test_media_count_mismatch_is_an_error():
    bad = record(1)
    bad.media.pop()
    with pytest.raises(ValueError, match="2 media items but 1 byte blobs"):
        seal(bad)


def test_dataset_reader_get_and_iter(nuscenes_shards):
    reader = DatasetReader(nuscenes_shards, "nuscenes", "train")
    keys = reader.keys()
    assert len(reader) == len(keys) == 30
    streamed = list(reader)
    assert [s.key for s in streamed] == keys
    one = reader.get(keys[7])
    assert one.sample == streamed[7].sample and one.media == streamed[7].media
    img = one.image(0, size=(80, 45))
    assert img.size == (80, 45) and img.mode == "RGB"
    with pytest.raises(KeyError, match="not in"):
        reader.get("nuscenes-nope")
