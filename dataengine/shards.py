"""Deterministic WebDataset tar writing.

Same samples in, same bytes out: members in a fixed order (the `.json`, then media in
`media` order), mtime/uid/gid zeroed, no user or group names, fixed modes. Image bytes are
copied as they are. Each written sample reports its byte range in the shard, which the
manifest keeps so one sample can be read by key without scanning.
"""
from __future__ import annotations

import hashlib
import io
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


class TarShardWriter:
    """Writes records into `<stem>-<part>.tar` files, rolling over at `shard_bytes`."""

    def __init__(self, directory: Path, stem: str, shard_bytes: int = DEFAULT_SHARD_BYTES):
        self.directory = Path(directory)
        self.stem = stem
        self.shard_bytes = shard_bytes
        self.parts: list[Path] = []
        self._file: BinaryIO | None = None
        self._tar: tarfile.TarFile | None = None

    def _open_next(self) -> None:
        self.close()
        path = self.directory / f"{self.stem}-{len(self.parts):04d}.tar"
        self.parts.append(path)
        self._file = open(path, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)

    def write(self, key: str, sample: dict, media: list[bytes]) -> Written:
        body = sample_json(sample)
        approx = len(body) + sum(len(b) for b in media) + 1024 * (1 + len(media))
        if self._tar is None or (self._file.tell() > 0 and self._file.tell() + approx > self.shard_bytes):
            self._open_next()
        start = self._file.tell()
        self._tar.addfile(_tarinfo(f"{key}.json", len(body)), io.BytesIO(body))
        for item, blob in zip(sample["media"], media):
            self._tar.addfile(_tarinfo(f"{key}.{item['member']}", len(blob)), io.BytesIO(blob))
        return Written(len(self.parts) - 1, start, self._file.tell() - start)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._file.close()
            self._tar = self._file = None
