"""The rows of a large JSON array that a predicate keeps, read in chunks.

nuScenes trainval's `sample_data.json` and `ego_pose.json` hold 2.6M rows each, ~90% of
them sweeps no converter reads. Parsed whole, the two take several GB of Python objects
before the filter runs; streamed, memory stays at one chunk of text plus the rows kept.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from dataengine.errors import UsageError

CHUNK_CHARS = 16 * 1024 * 1024
_GAP = re.compile(r"[\s,]*")


def stream_rows(path: Path, keep: Callable[[dict], bool], chunk_chars: int = CHUNK_CHARS) -> list:  # noqa: C901 (a hand-written scanner: one branch per token kind)
    """The elements of the JSON array in `path` for which `keep` is true, in file order.

    Elements are decoded one by one with the stdlib decoder (which, like the nuScenes
    devkit's `json.load`, reads NaN); one cut by a chunk's end is decoded again with the
    next chunk appended. Anything but an array of values is a UsageError naming the file.
    """
    decoder = json.JSONDecoder()
    rows: list = []

    def bad(what: str) -> UsageError:
        return UsageError(f"{path} is not valid JSON ({what})")

    with open(path, encoding="utf-8") as f:
        buf = f.read(chunk_chars).lstrip()
        if not buf.startswith("["):
            raise UsageError(f"{path} is not a nuScenes table (expected a JSON list)")
        pos, eof, after_value, commas = 1, False, False, 0
        while True:
            gap = _GAP.match(buf, pos).end()  # whitespace and commas, counted across chunks
            commas += buf.count(",", pos, gap)
            pos = gap
            if pos < len(buf) and buf[pos] == "]":
                if commas:
                    raise bad("a ',' before the closing ']'")
                break
            if pos < len(buf) and commas != int(after_value):
                raise bad(f"expected one ',' between elements near character {pos}")
            try:
                if pos == len(buf):
                    raise json.JSONDecodeError("the chunk ends here", buf, pos)
                value, end = decoder.raw_decode(buf, pos)
                if end == len(buf) and not eof:
                    raise json.JSONDecodeError("value may continue in the next chunk", buf, pos)
            except json.JSONDecodeError as exc:
                if eof:
                    raise bad(f"{exc.msg} near character {exc.pos}") from None
                more = f.read(chunk_chars)
                eof = not more
                buf, pos = buf[pos:] + more, 0
                continue
            if keep(value):
                rows.append(value)
            pos, after_value, commas = end, True, 0
        if (buf[pos + 1:] + f.read()).strip():
            raise bad("text after the closing ']'")
    return rows
