"""TFRecord framing without TensorFlow: read with both CRCs checked, and write.

A TFRecord file is a run of records, each framed as (tensorflow/core/lib/io/record_writer.cc):

    uint64 length            little-endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

masked_crc(x) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32), crc being CRC-32C
(Castagnoli). A record whose data CRC fails is reported and reading goes on with the next
one (its length was trusted by its own CRC); a bad length CRC or a file that ends inside a
record is reported and ends the file, since nothing after it can be framed.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import crc32c

_MASK_DELTA = 0xA282EAD8
_HEADER = 12  # uint64 length + uint32 crc of the length


def masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class TFRecord:
    """One well-framed record: its position in the file and its payload."""

    index: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class BadTFRecord:
    """A record that could not be read, with the reason."""

    index: int
    offset: int
    reason: str
    ends_file: bool = True  # False only for a data CRC mismatch: the next record can still be framed


def _read_one(f: BinaryIO, index: int, offset: int) -> TFRecord | BadTFRecord | None:
    """The record at `offset`, None at a clean end of file."""
    header = f.read(_HEADER)
    if not header:
        return None
    if len(header) < _HEADER:
        return BadTFRecord(index, offset, f"truncated record: file ends inside the {len(header)}-byte header")
    length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
    if masked_crc(length_bytes) != length_crc:
        return BadTFRecord(index, offset, "length CRC mismatch: the rest of the file cannot be framed")
    (length,) = struct.unpack("<Q", length_bytes)
    body = f.read(length + 4)
    if len(body) < length + 4:
        return BadTFRecord(index, offset, f"truncated record: {length} data bytes announced, "
                                          f"{max(len(body) - 4, 0)} present")
    data, (data_crc,) = body[:length], struct.unpack("<I", body[length:])
    if masked_crc(data) != data_crc:
        return BadTFRecord(index, offset, f"data CRC mismatch in a {length}-byte record", ends_file=False)
    return TFRecord(index, offset, data)


def read_tfrecords(path: Path) -> Iterator[TFRecord | BadTFRecord]:
    """Every record of a TFRecord file in order; framing problems come as BadTFRecord."""
    with open(path, "rb") as f:
        index, offset = 0, 0
        while True:
            item = _read_one(f, index, offset)
            if item is None:
                return
            yield item
            if isinstance(item, BadTFRecord) and item.ends_file:
                return
            offset = f.tell()
            index += 1


def encode_tfrecord(data: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data))


def write_tfrecords(path: Path, payloads: Iterable[bytes]) -> Path:
    """Write `payloads` as one TFRecord file (no compression), as TensorFlow's writer does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for data in payloads:
            f.write(encode_tfrecord(data))
    return path
