"""Deterministic WebDataset tar writing.

Same samples in, same bytes out: members in a fixed order (the `.json`, then media in
`media` order), mtime/uid/gid zeroed, no user or group names, fixed modes. Image bytes are
copied as they are. Each written sample reports its byte range in the shard, which the
manifest keeps so one sample can be read by key without scanning.
"""
from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dataengine.converter import Record
from dataengine.schema import validate_sample

DEFAULT_SHARD_BYTES = 256 * 1024 * 1024


def sample_json(sample: dict) -> bytes:
    """The canonical JSON encoding of a sample (sorted keys, no spaces, UTF-8)."""
    return json.dumps(sample, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def seal(record: Record) -> dict:
    """Fill media sha1s from the bytes, then validate; returns the sample to write."""
    sample = record.sample
    media = sample.get("media", [])
    if len(media) != len(record.media):
        sample_id = sample.get("id", "<no id>")
        raise ValueError(f"sample {sample_id}: {len(media)} media items but {len(record.media)} byte blobs")
    for item, blob in zip(media, record.media):
        item["sha1"] = hashlib.sha1(blob).hexdigest()
    validate_sample(sample)
    return sample


@dataclass(frozen=True)
class Written:
    """Where a sample landed: shard part index, byte offset and length of its members."""

    part: int
    offset: int
    size: int


BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


def _member(name: str, data: bytes) -> bytes:
    """One tar member: a GNU header (long names handled), the data, zero padding to 512."""
    header = _tarinfo(name, len(data)).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    return header + data + b"\0" * (-len(data) % BLOCK)


class TarShardWriter:
    """Writes records into `<stem>-<part>.tar` files, rolling over at `shard_bytes`.

    Members are written directly (header, data, padding in one write) rather than through
    `tarfile.addfile`, which copies every image through a file object; the bytes are the
    same GNU tar that tarfile and WebDataset read."""

    def __init__(self, directory: Path, stem: str, shard_bytes: int = DEFAULT_SHARD_BYTES):
        self.directory = Path(directory)
        self.stem = stem
        self.shard_bytes = shard_bytes
        self.parts: list[Path] = []
        self._file: BinaryIO | None = None

    def _open_next(self) -> None:
        self.close()
        path = self.directory / f"{self.stem}-{len(self.parts):04d}.tar"
        self.parts.append(path)
        self._file = open(path, "wb")

    def write(self, key: str, sample: dict, media: list[bytes]) -> Written:
        body = sample_json(sample)
        approx = len(body) + sum(len(b) for b in media) + 1024 * (1 + len(media))
        if self._file is None or (self._file.tell() > 0 and self._file.tell() + approx > self.shard_bytes):
            self._open_next()
        start = self._file.tell()
        self._file.write(_member(f"{key}.json", body))
        for item, blob in zip(sample["media"], media):
            self._file.write(_member(f"{key}.{item['member']}", blob))
        return Written(len(self.parts) - 1, start, self._file.tell() - start)

    def close(self) -> None:
        """End-of-archive: two zero blocks, padded to a whole tar record (as tarfile does)."""
        if self._file is not None:
            end = self._file.tell() + 2 * BLOCK
            self._file.write(b"\0" * (2 * BLOCK + (-end % RECORD)))
            self._file.close()
            self._file = None
