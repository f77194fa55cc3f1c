"""The shard writer without Ray, by hand and against tarfile's own writer: a part's bytes are the
GNU tar tarfile writes (docs/format.md: mtime, uid, gid 0, no names, mode 0644), rollover and byte
ranges worked out from 512-byte blocks, canonical JSON, and the writeback and sync calls."""
from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tarfile

import numpy as np
import pytest

from dataengine import shards
from dataengine.converter import Record
from dataengine.errors import SchemaError
from dataengine.shards import TarShardWriter, Written, sample_json, seal


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """The oracle: tarfile's GNU archive of `members` with the fields docs/format.md fixes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            tar.addfile(info(name, len(data)), io.BytesIO(data))
    return buf.getvalue()


def info(name: str, size: int) -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.size, i.mtime, i.mode, i.uid, i.gid, i.uname, i.gname = size, 0, 0o644, 0, 0, "", ""
    return i


def kb(i: int) -> tuple[str, bytes]:
    """A member of exactly 1024 bytes in the tar: 512 of header, 100 of data padded to 512."""
    return f"k{i}.json", bytes([65 + i]) * 100


def write(directory, groups, shard_bytes=1 << 30, stem="u"):
    writer = TarShardWriter(directory, stem, shard_bytes)
    where = [writer.write_members(g) for g in groups]
    writer.close()
    return writer, where


ODD = [("a.json", b"{}"), ("b.json", b"x" * 512), ("c.img0.jpg", b"\xff" * 513), ("d.json", b""),
       ("n" * 100 + ".json", b"long"), ("m" * 130 + ".json", b"longer name"), ("vidéo-ü.json", b"\xc3\xa9")]


def test_a_part_is_byte_for_byte_tarfiles_archive(tmp_path):
    writer, where = write(tmp_path, [[m] for m in ODD])
    assert writer.parts == [tmp_path / "u-0000.tar"]
    assert writer.parts[0].read_bytes() == tar_bytes(ODD)
    with tarfile.open(writer.parts[0]) as tar:
        assert [(t.name, t.size, t.offset) for t in tar] == [(n, len(d), w.offset) for (n, d), w in zip(ODD, where)]


SIZES = [0, 1, 8 ** 11 - 1, 8 ** 11, 8 ** 12 + 5]
# a lone surrogate is how Python decodes a file name's non-UTF-8 byte: tarfile writes the byte back
NAMES = ["a.json", "x" * 99, "x" * 100, "y" * 101, "vidéo-ü.img0.jpg", "\udcffa.json", "\udcff" + "z" * 120]


def tarfile_header(name: str, size: int) -> bytes:
    return info(name, size).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_header_is_tarfiles(name, size):
    """Octal size fields up to 8**11 - 1, base-256 from 8**11 (tarfile's switch), long names."""
    assert shards._header(name, size) == tarfile_header(name, size)


def test_headers_from_a_template_built_again_are_tarfiles(monkeypatch):
    """The template is built once, at import; built again now, its headers are still tarfile's."""
    template, total = shards._template()
    monkeypatch.setattr(shards, "_TEMPLATE", template)
    monkeypatch.setattr(shards, "_TEMPLATE_SUM", total)
    assert [shards._header(n, s) for n in NAMES for s in SIZES] == [tarfile_header(n, s) for n in NAMES for s in SIZES]


def test_ranges_and_part_sizes_by_hand(tmp_path):
    # 1024-byte members, 3072-byte parts: a member joins a part while pos + 1024 + 1024 (the end
    # blocks) <= 3072, so two per part; each part closes at 2048 + 1024, padded to 10240
    groups = [[kb(i)] for i in range(5)]
    writer, where = write(tmp_path, groups, shard_bytes=3072)
    assert where == [Written(0, 0, 1024), Written(0, 1024, 1024), Written(1, 0, 1024), Written(1, 1024, 1024),
                     Written(2, 0, 1024)]
    assert [p.name for p in writer.parts] == ["u-0000.tar", "u-0001.tar", "u-0002.tar"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u-0000.tar", "u-0001.tar", "u-0002.tar"]
    assert [p.stat().st_size for p in writer.parts] == [10240] * 3
    assert [p.read_bytes() for p in writer.parts] == [tar_bytes([kb(0), kb(1)]), tar_bytes([kb(2), kb(3)]),
                                                      tar_bytes([kb(4)])]


def test_one_part_past_the_record_size(tmp_path):
    # 10 members: 10240 + 1024 end blocks = 11264, padded to two records (20480)
    writer, where = write(tmp_path, [[kb(i)] for i in range(10)])
    assert [w.offset for w in where] == [1024 * i for i in range(10)]
    assert writer.parts[0].stat().st_size == 20480
    # 9 members: 9216 + 1024 = 10240 exactly, no padding record
    writer, _ = write(tmp_path, [[kb(i)] for i in range(9)], stem="v")
    assert writer.parts[0].stat().st_size == 10240


@pytest.mark.parametrize("shard_bytes, per_part", [(2048, 1), (2560, 1), (3071, 1), (3072, 2), (4095, 2),
                                                   (4096, 3)])
def test_members_per_part_leave_room_for_the_end_blocks(tmp_path, shard_bytes, per_part):
    """A member joins a part while the part, with it and the 1024 bytes of end blocks, fits."""
    _, where = write(tmp_path, [[kb(i)] for i in range(6)], shard_bytes=shard_bytes)
    assert where == [Written(i // per_part, 1024 * (i % per_part), 1024) for i in range(6)]


def test_an_empty_write_opens_a_part_that_the_next_member_fills(tmp_path):
    big = [("big.json", b"z" * 1536)]
    writer = TarShardWriter(tmp_path, "u", 1024)
    assert writer.write_members([]) == Written(0, 0, 0)
    assert writer.write_members(big) == Written(0, 0, 2048)  # no empty part left behind
    writer.close()
    assert [p.read_bytes() for p in writer.parts] == [tar_bytes(big)]


def test_a_member_larger_than_a_part_gets_a_part_of_its_own(tmp_path):
    big = [("big.json", b"z" * 1536)]  # 512 + 1536 = 2048 bytes, over the 1024-byte target
    writer, where = write(tmp_path, [big, big], shard_bytes=1024)
    assert where == [Written(0, 0, 2048), Written(1, 0, 2048)]
    assert [p.read_bytes() for p in writer.parts] == [tar_bytes(big)] * 2


def test_a_samples_members_go_back_to_back(tmp_path):
    sample = [("s.json", b"{}"), ("s.img0.jpg", b"\xff" * 600)]  # 512 + 512, then 512 + 1024
    writer, where = write(tmp_path, [[kb(0)], sample, [kb(1)]])
    assert where == [Written(0, 0, 1024), Written(0, 1024, 2560), Written(0, 3584, 1024)]
    assert writer.parts[0].read_bytes() == tar_bytes([kb(0), *sample, kb(1)])


def test_write_stores_the_canonical_json_as_key_json(tmp_path):
    writer = TarShardWriter(tmp_path, "u")
    where = writer.write("key-1", {"b": 1, "a": "é"})
    writer.close()
    assert where == Written(0, 0, 1024)
    assert writer.parts[0].read_bytes() == tar_bytes([("key-1.json", b'{"a":"\xc3\xa9","b":1}')])


def test_many_members_take_more_than_one_writev(tmp_path):
    """400 members are 1200 chunks, over Linux's 1024 buffers per writev."""
    members = [(f"m{i}.json", b"%d" % i) for i in range(400)]
    writer, where = write(tmp_path, [members])
    assert where == [Written(0, 0, 400 * 1024)]
    assert writer.parts[0].read_bytes() == tar_bytes(members)


@pytest.mark.parametrize("short", ["first buffer, 700 bytes at most", "two buffers and 100 bytes"])
def test_short_writes_still_land_in_order(tmp_path, monkeypatch, short):
    real = os.writev

    def partial(fd, bufs):
        if short.startswith("first"):
            return real(fd, [bytes(bufs[0])[:700]])
        return real(fd, [*bufs[:2], bytes(bufs[2])[:100]] if len(bufs) > 2 else bufs)

    monkeypatch.setattr(shards.os, "writev", partial)
    groups = [[kb(0), ("s.img0.jpg", b"\xff" * 1500)], [kb(1)]]
    writer, where = write(tmp_path, groups)
    assert where == [Written(0, 0, 1024 + 2048), Written(0, 3072, 1024)]
    assert writer.parts[0].read_bytes() == tar_bytes([m for g in groups for m in g])


def test_a_leftover_longer_file_is_truncated(tmp_path):
    (tmp_path / "u-0000.tar").write_bytes(b"\1" * 50000)
    writer, _ = write(tmp_path, [[kb(0)]])
    assert writer.parts[0].read_bytes() == tar_bytes([kb(0)])


def test_a_new_part_is_rw_for_all_less_the_umask(tmp_path):
    writer, _ = write(tmp_path, [[kb(0)]])
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(writer.parts[0].stat().st_mode) == 0o666 & ~umask


def test_close_twice_adds_nothing_and_a_write_after_close_starts_a_part(tmp_path):
    writer = TarShardWriter(tmp_path, "u")
    writer.write_members([kb(0)])
    writer.close()
    writer.close()
    assert writer.parts[0].read_bytes() == tar_bytes([kb(0)])
    assert writer.write_members([kb(1)]) == Written(1, 0, 1024)
    writer.close()
    assert writer.parts[1].read_bytes() == tar_bytes([kb(1)])


def test_writeback_ranges_and_sync_per_part(tmp_path, monkeypatch):
    # FLUSH_AFTER 2048, 1024-byte members, 4096-byte parts (three members each): in each part,
    # writeback of [0, 2048) after its second member; every part synced once, before it is closed
    calls = []

    def inode(fd):
        return os.fstat(fd).st_ino

    monkeypatch.setattr(shards, "FLUSH_AFTER", 2048)
    monkeypatch.setattr(shards, "_START_WRITEBACK",
                        lambda fd, off, n, advice: calls.append(("writeback", inode(fd), off, n, advice)))
    monkeypatch.setattr(shards, "_SYNC", lambda fd: calls.append(("sync", inode(fd))))
    writer, where = write(tmp_path, [[kb(i)] for i in range(6)], shard_bytes=4096)
    assert [w.part for w in where] == [0, 0, 0, 1, 1, 1]
    a, b = (p.stat().st_ino for p in writer.parts)
    dontneed = os.POSIX_FADV_DONTNEED
    assert calls == [("writeback", a, 0, 2048, dontneed), ("sync", a), ("writeback", b, 0, 2048, dontneed),
                     ("sync", b)]


def test_writeback_ranges_are_contiguous(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(shards, "FLUSH_AFTER", 2048)
    monkeypatch.setattr(shards, "_START_WRITEBACK", lambda fd, off, n, advice: calls.append((off, n)))
    write(tmp_path, [[kb(0)], [kb(1)], [kb(2)], [kb(3)], [kb(4), kb(5), kb(6)]])
    # at 2048 (2048 since 0), not at 3072 (1024 since 2048), at 4096, then at 7168 (3072 since 4096)
    assert calls == [(0, 2048), (2048, 2048), (4096, 3072)]


def test_without_writeback_the_writer_still_writes(tmp_path, monkeypatch):
    """macOS has no posix_fadvise: the writer skips it."""
    monkeypatch.setattr(shards, "FLUSH_AFTER", 1024)
    monkeypatch.setattr(shards, "_START_WRITEBACK", None)
    writer, _ = write(tmp_path, [[kb(0)], [kb(1)]])
    assert writer.parts[0].read_bytes() == tar_bytes([kb(0), kb(1)])


def test_the_real_sync_runs_on_the_open_part(tmp_path):
    writer, _ = write(tmp_path, [[kb(0)]])  # fdatasync of anything but the part's fd would raise
    assert writer.parts[0].read_bytes() == tar_bytes([kb(0)])


def test_canonical_json_by_hand():
    assert sample_json({"b": 1, "a": [1.5, "é", None, 1e-7, 0.00001]}) == \
        '{"a":[1.5,"é",null,1e-7,0.00001],"b":1}'.encode()
    assert sample_json({"id": "s", "x": np.array([1, 2]), "y": np.float64(0.25)}) == b'{"id":"s","x":[1,2],"y":0.25}'
    assert sample_json({"id": "s", "t": "null"}) == b'{"id":"s","t":"null"}'  # the word, not a NaN


@pytest.mark.parametrize("sample, message", [
    ({"id": "s1", "meta": {"v": [1.0, (2.0, float("inf"))]}}, "sample s1: meta.v[1][1] is inf, not a finite number"),
    ({"id": "s1", "a": [{"b": float("-inf")}]}, "sample s1: a[0].b is -inf, not a finite number"),
    ({"x": float("nan")}, "sample <no id>: x is nan, not a finite number"),
    ({"id": "s2", "y": np.float64("nan")}, "sample s2: y is nan, not a finite number"),
])
def test_non_finite_numbers_are_refused_by_path(sample, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        sample_json(sample)


@pytest.mark.parametrize("sample, message", [
    ({"id": "x", "a": np.array([1.0, float("nan")])}, "sample x: a[1] is nan, not a finite number"),
    ({"id": "s3", "ego": {"history_xy": np.array([[0.0, 0.5], [1.0, -np.inf]], dtype=np.float32)}},
     "sample s3: ego.history_xy[1][1] is -inf, not a finite number"),
    ({"id": "s4", "objects": [{"box": np.array([np.nan], dtype=np.float16)}]},
     "sample s4: objects[0].box[0] is nan, not a finite number"),
    # the first in row-major order, as the JSON lists it: [0][1][0] comes before [1][0][0]
    ({"id": "s5", "m": np.array([[[1.0, 2.0], [np.inf, 3.0]], [[np.nan, 4.0], [5.0, 6.0]]])},
     "sample s5: m[0][1][0] is inf, not a finite number"),
    ({"id": "s6", "v": np.float32("inf")}, "sample s6: v is inf, not a finite number"),
    ({"id": "s7", "w": [np.float16("-inf")]}, "sample s7: w[0] is -inf, not a finite number"),
])
def test_non_finite_numbers_in_numpy_are_refused_by_path(sample, message):
    """orjson writes a NaN or an infinity inside an array, or as a numpy float scalar, as null too
    (docs/format.md: never written); the path is the one the JSON lists would have."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        sample_json(sample)


def test_finite_numpy_values_beside_a_null_are_written():
    """A null sends the sample through the check: finite float, int and bool arrays pass it."""
    sample = {"id": "s", "n": None, "f": np.array([[0.5, -2.0]], dtype=np.float32), "i": np.array([3, -1]),
              "b": np.array([True]), "h": np.float16(0.25)}
    assert sample_json(sample) == b'{"b":[true],"f":[[0.5,-2.0]],"h":0.25,"i":[3,-1],"id":"s","n":null}'


def test_a_bare_non_finite_value_is_named_value():
    with pytest.raises(ValueError, match="^sample s: value is nan, not a finite number$"):
        shards._reject_non_finite(float("nan"), "s", "")


def media_item(j: int, camera: str = "front") -> dict:
    return {"member": f"img{j}.jpg", "camera": camera, "source_camera": camera.upper(), "time_offset_s": 0.0,
            "width": 4, "height": 2}


def sample(schema: str = "sample/1", n_media: int = 2) -> dict:
    return {"schema": schema, "id": "t-1", "dataset": "t", "split": "train", "task": "vqa.test",
            "scene_id": "t:s", "frame_id": "t:f", "layout": "multi_view" if n_media > 1 else "single_image",
            "media": [media_item(j, c) for j, c in zip(range(n_media), ["front", "back"])],
            "conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "meta": {}}


@pytest.mark.parametrize("schema", ["sample/1", "sample/2", "sample/3"])
def test_seal_stamps_sample_3_and_fills_sha1s(schema):
    rec = Record(sample(schema), [b"one", b"two"])
    out = seal(rec)
    assert out["schema"] == rec.sample["schema"] == "sample/3"
    assert [m["sha1"] for m in out["media"]] == [hashlib.sha1(b"one").hexdigest(), hashlib.sha1(b"two").hexdigest()]
    assert rec.sample["media"][0]["sha1"] == hashlib.sha1(b"one").hexdigest()


def test_seal_keeps_an_unknown_schema_and_validation_refuses_it():
    with pytest.raises(SchemaError, match="sample/9"):
        seal(Record(sample("sample/9"), [b"one", b"two"]))


def test_seal_merges_the_context_and_fills_its_media():
    own = {k: v for k, v in sample().items() if k in ("schema", "id", "dataset", "split", "task", "conversations")}
    context = {k: v for k, v in sample().items() if k not in own}
    rec = Record(own, [b"one", b"two"], context)
    out = seal(rec)
    assert out == {**sample("sample/3"), "media": out["media"]}
    assert [m["sha1"] for m in context["media"]] == [hashlib.sha1(b).hexdigest() for b in (b"one", b"two")]
    assert "media" not in rec.sample


@pytest.mark.parametrize("has_id", [True, False])
def test_seal_refuses_a_media_count_mismatch(has_id):
    s = sample()
    if not has_id:
        del s["id"]
    name = "t-1" if has_id else "<no id>"
    with pytest.raises(ValueError, match=f"^sample {name}: 2 media items but 1 byte blobs$"):
        seal(Record(s, [b"one"]))


def test_seal_of_a_sample_without_media_is_a_schema_error():
    s = sample()
    del s["media"]
    with pytest.raises(SchemaError, match="media"):
        seal(Record(s, []))


def test_seal_validates():
    s = sample()
    s["media"][0]["camera"] = "roof"
    with pytest.raises(SchemaError, match="roof"):
        seal(Record(s, [b"one", b"two"]))
