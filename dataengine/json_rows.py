"""The rows of a large JSON array, read in chunks.

nuScenes trainval's `sample_data.json` and `ego_pose.json` hold 2.6M rows each, ~90% of
them sweeps no converter reads, and `sample_annotation.json` 1.2M. Parsed whole, they take
several GB of Python objects before a filter or a compact copy can drop them; streamed,
memory stays at one chunk of text plus what the caller keeps of each row.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import orjson

from dataengine.errors import UsageError

CHUNK_BYTES = 1024 * 1024


def _parse(data: bytes):
    """orjson (fast); the stdlib for what only it reads (NaN, Infinity: the devkit's
    `json.load` reads them too). None when neither parses `data`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def iter_rows(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator:
    """The elements of the JSON array in `path`, in file order, parsed a batch at a time.

    A batch ends at the chunk's last `},`. Cut there, `[` + text + `]` parses only when the
    cut lies between two top-level elements (a cut inside a string leaves it unterminated,
    one inside a nested value leaves brackets open), so a batch that does not parse is
    extended by the next chunk instead; at the end of the file the rest must parse with
    its closing `]`. Anything but an array is a UsageError naming the file.
    """
    def bad(what: str) -> UsageError:
        return UsageError(f"{path} is not valid JSON ({what})")

    with open(path, "rb") as f:
        buf = f.read(chunk_bytes)
        while buf.isspace() and (more := f.read(chunk_bytes)):
            buf += more
        buf = buf.lstrip()
        if not buf.startswith(b"["):
            raise UsageError(f"{path} is not a nuScenes table (expected a JSON list)")
        buf, eof, tried, after_comma = buf[1:], False, -1, False
        while not eof:
            more = f.read(chunk_bytes)
            eof = not more
            buf += more
            cut = buf.rfind(b"},")
            if eof or cut <= tried:
                continue
            rows = _parse(b"[" + buf[: cut + 1] + b"]")
            if not isinstance(rows, list):  # the cut lies inside a value: read on
                tried = cut
                continue
            yield from rows
            buf, tried, after_comma = buf[cut + 2:], -1, True
        if after_comma and buf.lstrip().startswith(b"]"):
            raise bad("a ',' before the closing ']'")
        rows = _parse(b"[" + buf)
        if not isinstance(rows, list):
            raise bad(_reason(b"[" + buf))
        yield from rows


def _reason(data: bytes) -> str:
    try:
        json.loads(data.decode("utf-8"))
    except json.JSONDecodeError as exc:
        return f"{exc.msg} near character {exc.pos} of the last part"
    except UnicodeDecodeError:
        return "not UTF-8"
    return "not an array"
