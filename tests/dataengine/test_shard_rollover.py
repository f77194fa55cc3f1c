"""Byte ranges stay right across a part rollover: the loader and `DatasetReader.get` read a
sample by (part, offset, size) without scanning, so a range off by one part is a wrong sample."""
from __future__ import annotations

import tarfile

from dataengine.reader import parse_members
from dataengine.shards import TarShardWriter


def members(i: int) -> list[tuple[str, bytes]]:
    """Sample i: a small JSON and a blob whose size varies, so parts fill unevenly."""
    return [(f"s-{i:03d}.json", b'{"i": %d}' % i), (f"s-{i:03d}.img0.jpg", bytes([i % 251]) * (700 + 97 * i))]


def write(directory, n: int, shard_bytes: int):
    writer = TarShardWriter(directory, "u", shard_bytes)
    where = [writer.write_members(members(i)) for i in range(n)]
    writer.close()
    return writer.parts, where


def test_every_range_reads_back_its_own_members_across_rollovers(tmp_path):
    parts, where = write(tmp_path, n=12, shard_bytes=8192)
    assert 3 <= len(parts) < 12 and sorted({w.part for w in where}) == list(range(len(parts)))
    firsts = [i for i, w in enumerate(where) if i == 0 or w.part != where[i - 1].part]
    assert len(firsts) == len(parts) and all(where[i].offset == 0 for i in firsts)
    blobs = [p.read_bytes() for p in parts]
    for i, w in enumerate(where):
        assert parse_members(blobs[w.part][w.offset: w.offset + w.size]) == members(i)


def test_ranges_agree_with_tarfile_and_parts_stay_under_target(tmp_path):
    parts, where = write(tmp_path, n=12, shard_bytes=8192)
    for k, path in enumerate(parts):
        with tarfile.open(path) as tar:
            starts = [info.offset for info in tar if info.name.endswith(".json")]
        assert starts == [w.offset for w in where if w.part == k]
        assert path.stat().st_size <= 8192 + tarfile.RECORDSIZE
