"""Deterministic WebDataset tar writing: sample shards and the media store's packs.

Same samples in, same bytes out: members in a fixed order, mtime/uid/gid zeroed, no user or
group names, fixed modes. A sample shard holds each sample's `.json` (schema sample/3: the
images, and the context its key frame's samples share, are in the shard root's media store,
`dataengine/mediastore.py`); a media pack holds image bytes copied as they are. Each write
reports its byte range, which the manifest (or the media index) keeps so one sample can be
read by key without scanning.
"""
from __future__ import annotations

import hashlib
import math
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from dataengine import SCHEMA_VERSION
from dataengine.context import resolve
from dataengine.converter import Record
from dataengine.schema import READABLE, validate_sample

DEFAULT_SHARD_BYTES = 256 * 1024 * 1024


def sample_json(sample: dict) -> bytes:
    """The canonical JSON encoding of a sample: sorted keys, no spaces, UTF-8, shortest
    round-trip floats (orjson: a tenth of the stdlib encoder's time). orjson writes NaN and
    infinities as null, so a null in the output sends the sample through a check that
    raises on a non-finite number instead of letting it become null."""
    data = orjson.dumps(sample, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    if b"null" in data:
        _reject_non_finite(sample, sample.get("id", "<no id>"), "")
    return data


def _reject_non_finite(value, sample_id: str, where: str) -> None:
    """Raise on the first NaN or infinity that orjson would write as null, by its path: a plain
    or numpy float, or one in a dict, list, tuple or float array (walked as the lists its JSON
    is, once numpy found a non-finite value in it: a finite array costs one vectorised check)."""
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"sample {sample_id}: {where or 'value'} is {value}, not a finite number")
    elif isinstance(value, dict):
        for k, v in value.items():
            _reject_non_finite(v, sample_id, f"{where}.{k}" if where else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _reject_non_finite(v, sample_id, f"{where}[{i}]")
    elif isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
        _reject_non_finite(value.tolist(), sample_id, where)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def seal(record: Record) -> dict:
    """Fill media sha1s from the bytes, stamp the stored schema version, then validate;
    returns the whole sample (its context merged in, `dataengine/context.py`). A converter's
    record reads the same under every schema version (only where bytes are stored differs),
    so any is accepted here. The sha1s land in the record's own media items (the context's)."""
    if record.sample.get("schema") in READABLE:
        record.sample["schema"] = SCHEMA_VERSION
    sample = resolve(record.sample, record.context)
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


def _template() -> tuple[bytes, int]:
    """A GNU header from tarfile with an empty name and size 0, and its byte sum with the
    checksum field as spaces (as the checksum is defined) and the size field left out."""
    header = bytearray(_tarinfo("", 0).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
    header[148:156] = b" " * 8
    return bytes(header), sum(header) - sum(header[124:136])


_TEMPLATE, _TEMPLATE_SUM = _template()
_MAX_OCTAL_SIZE = 8 ** 11  # tarfile switches to base-256 size fields from here


def _header(name: str, size: int) -> bytes:
    """The GNU header tarfile writes for a regular file with our fixed fields, built by
    filling name, size and checksum into a template (a tenth of `TarInfo.tobuf`'s time);
    names over 100 bytes and huge sizes go through tarfile itself (GNU long-name members)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 100 or size >= _MAX_OCTAL_SIZE:
        return _tarinfo(name, size).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    size_field = b"%011o\0" % size
    checksum = _TEMPLATE_SUM + sum(raw) + sum(size_field)
    return b"".join((raw, _TEMPLATE[len(raw):124], size_field, _TEMPLATE[136:148], b"%06o\0 " % checksum,
                     _TEMPLATE[156:]))


_ZEROS = bytes(BLOCK)


def _member(name: str, data: bytes) -> list[bytes]:
    """One tar member as the chunks to write: header, data, zero padding to 512 bytes."""
    return [_header(name, len(data)), data, _ZEROS[:-len(data) % BLOCK]]


def _write_all(fd: int, chunks: list[bytes]) -> int:
    """Write chunks with as few `writev` calls as the OS allows; returns the bytes written."""
    total, pending = 0, [memoryview(c) for c in chunks if c]
    while pending:
        n = os.writev(fd, pending[:1024])  # IOV_MAX
        total += n
        while pending and n >= len(pending[0]):
            n -= len(pending[0])
            pending.pop(0)
        if n:
            pending[0] = pending[0][n:]
    return total


FLUSH_AFTER = 8 * 1024 * 1024
# Linux has both; macOS has neither fadvise (writeback then starts when the kernel likes) nor
# fdatasync (fsync also syncs metadata: slower, as durable)
_START_WRITEBACK = getattr(os, "posix_fadvise", None)
_SYNC = getattr(os, "fdatasync", os.fsync)


class TarShardWriter:
    """Writes records into `<stem>-<part>.tar` files, rolling over at `shard_bytes`.

    A sample's members (headers, data, padding) go out in one `writev` call, with no copy
    of the image bytes into a buffer; the bytes are the GNU tar that tarfile and WebDataset
    read. Every `FLUSH_AFTER` bytes the writer asks the kernel to start writing the part to
    disk (as PostgreSQL's `*_flush_after` does), so dirty pages never pile up into a long
    stall at the end; `close` waits until the part is on disk (`fdatasync`), so a unit's
    ledger entry, written after, never names data a power loss could take back."""

    def __init__(self, directory: Path, stem: str, shard_bytes: int = DEFAULT_SHARD_BYTES):
        self.directory = Path(directory)
        self.stem = stem
        self.shard_bytes = shard_bytes
        self.parts: list[Path] = []
        self._fd: int | None = None
        self._pos = self._flushed = 0

    def _open_next(self) -> None:
        self.close()
        path = self.directory / f"{self.stem}-{len(self.parts):04d}.tar"
        self.parts.append(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self._pos = self._flushed = 0

    def write(self, key: str, sample: dict) -> Written:
        """A sample's `.json` member; its media go to the media store (schema sample/3)."""
        return self.write_members([(f"{key}.json", sample_json(sample))])

    def write_members(self, members: list[tuple[str, bytes]]) -> Written:
        """Members written back to back (a sample, or an image of a media pack)."""
        chunks = [c for name, data in members for c in _member(name, data)]
        size = sum(len(c) for c in chunks)
        if self._fd is None or (self._pos > 0 and self._pos + size + 2 * BLOCK > self.shard_bytes):
            self._open_next()
        start = self._pos
        self._pos += _write_all(self._fd, chunks)
        if _START_WRITEBACK is not None and self._pos - self._flushed >= FLUSH_AFTER:
            _START_WRITEBACK(self._fd, self._flushed, self._pos - self._flushed, os.POSIX_FADV_DONTNEED)
            self._flushed = self._pos
        return Written(len(self.parts) - 1, start, size)

    def close(self) -> None:
        """End-of-archive: two zero blocks, padded to a whole tar record (as tarfile does)."""
        if self._fd is not None:
            end = self._pos + 2 * BLOCK
            self._pos += _write_all(self._fd, [bytes(2 * BLOCK + (-end % RECORD))])
            _SYNC(self._fd)
            os.close(self._fd)
            self._fd = None
