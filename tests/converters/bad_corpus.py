"""A corpus of broken inputs for every converter, made by corrupting its own fixture.

Each case is a copy of the fixture (media hard-linked, so a case costs one rewritten file)
with one fault in the source's own format: a truncated, garbled, zero-byte or non-UTF-8
table; one field of one record given the wrong type, removed, NaN, infinite, empty or a path
that escapes the root (`..`, absolute, a symlink out); a duplicated record; a TFRecord with a
bad CRC; a parquet column of the wrong type; a missing, empty, truncated or foreign image.
Targets are picked by position (evenly spread leaves), so the corpus is deterministic.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

TABLES = {".json", ".csv", ".txt", ".parquet", ".tfrecord"}
MEDIA = {".jpg", ".jpeg", ".png", ".mp4", ".mov", ".bin"}
LEAVES_PER_TABLE = 3
OUTSIDE = "/etc/passwd"  # a real file outside every root, never an image


@dataclass(frozen=True)
class Case:
    name: str  # "<file>:<fault>", the test id
    apply: Callable[[Path], None]  # corrupts the copy whose source root is given


def copy_fixture(src_root: Path, dst_root: Path) -> None:
    """Hard-link the fixture tree (cases rewrite a file by replacing it, never in place)."""
    shutil.copytree(src_root, dst_root, copy_function=os.link, symlinks=True)


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


# ---- whole-file faults, any format ---------------------------------------------------------

def _file_faults(rel: str) -> list[Case]:
    def truncate(root: Path) -> None:
        data = (root / rel).read_bytes()
        _replace(root / rel, data[: len(data) // 2])

    return [
        Case(f"{rel}:truncated", truncate),
        Case(f"{rel}:zero-byte", lambda root: _replace(root / rel, b"")),
        Case(f"{rel}:garbage-non-utf8", lambda root: _replace(root / rel, b"\xff\xfe\x00\x9c garbage \x80")),
        Case(f"{rel}:missing", lambda root: (root / rel).unlink()),
    ]


# ---- JSON: one field of one record ---------------------------------------------------------

def _leaves(doc: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every scalar (and list) value under dicts, in document order."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, (dict,)) or (isinstance(v, list) and v and isinstance(v[0], dict)):
                out += _leaves(v, path + (k,))
            else:
                out.append(path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            if isinstance(v, (dict, list)):
                out += _leaves(v, path + (i,))
    return out


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)] if n > 1 else items[:1]


def _get_parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _looks_like_path(value: Any) -> bool:
    return isinstance(value, str) and ("/" in value or Path(value).suffix.lower() in MEDIA)


def _json_edit(rel: str, path: tuple, edit: Callable[[Any, Any], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        doc = json.loads((root / rel).read_text())
        edit(_get_parent(doc, path), path[-1])
        _replace(root / rel, json.dumps(doc, allow_nan=True).encode())
    return apply


def _set(value: Any) -> Callable[[Any, Any], None]:
    def edit(parent: Any, key: Any) -> None:
        parent[key] = value
    return edit


def _delete(parent: Any, key: Any) -> None:
    del parent[key]


def _symlink_out(rel: str, path: tuple, prefix: Path) -> Callable[[Path], None]:
    """The file the record names becomes a symlink to a file outside the root."""
    def apply(root: Path) -> None:
        doc = json.loads((root / rel).read_text())
        target = _get_parent(doc, path)[path[-1]]
        for base in (root / prefix, (root / rel).parent, root):
            named = base / target
            if named.exists() or named.is_symlink():
                named.unlink()
                named.symlink_to(OUTSIDE)
                return
    return apply


def _json_faults(rel: str, doc: Any, prefix: Path) -> list[Case]:
    cases = []
    for path in _spread(_leaves(doc), LEAVES_PER_TABLE):
        value = _get_parent(doc, path)[path[-1]]
        where = "/".join(map(str, path))
        faults: list[tuple[str, Callable]] = [("missing-key", _delete)]
        if isinstance(value, bool) or value is None:
            faults += [("wrong-type", _set("yes"))]
        elif isinstance(value, (int, float)):
            faults += [("wrong-type", _set("12x")), ("nan", _set(math.nan)), ("inf", _set(math.inf))]
        elif isinstance(value, str):
            faults += [("wrong-type", _set(17)), ("empty", _set("")), ("non-utf8-escape", _set("caf\udce9"))]
            if _looks_like_path(value):
                faults += [("dotdot", _set("../" * 6 + "etc/passwd")), ("absolute", _set(OUTSIDE))]
        elif isinstance(value, list):
            faults += [("wrong-type", _set("not a list")), ("nan-item", _set([math.nan] * max(1, len(value))))]
        for fault, edit in faults:
            if fault == "non-utf8-escape":  # a lone surrogate: not encodable as UTF-8
                cases.append(Case(f"{rel}:{where}:{fault}", _raw_non_utf8(rel, path)))
            else:
                cases.append(Case(f"{rel}:{where}:{fault}", _json_edit(rel, path, edit)))
        if _looks_like_path(value):
            cases.append(Case(f"{rel}:{where}:symlink-out", _symlink_out(rel, path, prefix)))
    records = doc if isinstance(doc, list) else None
    if records and isinstance(records[0], dict):
        cases.append(Case(f"{rel}:duplicate-record", _json_edit(rel, (0,), lambda d, k: d.append(d[0]))))
    return cases


def _raw_non_utf8(rel: str, path: tuple) -> Callable[[Path], None]:
    """A string field whose bytes are Latin-1, not UTF-8 (written raw, not escaped)."""
    def apply(root: Path) -> None:
        doc = json.loads((root / rel).read_text())
        _get_parent(doc, path)[path[-1]] = "\u0000MARK\u0000"
        text = json.dumps(doc).encode()
        _replace(root / rel, text.replace(b"\\u0000MARK\\u0000", b"caf\xe9", 1))
    return apply


# ---- CSV / text: one cell of one row --------------------------------------------------------

def _csv_faults(rel: str, text: str) -> list[Case]:
    lines = text.splitlines(keepends=True)
    if len(lines) < 2:
        return []
    cells = lines[1].rstrip("\r\n").split(",")

    def edit_line(fn: Callable[[list[str]], bytes]) -> Callable[[Path], None]:
        def apply(root: Path) -> None:
            current = (root / rel).read_text().splitlines(keepends=True)
            row = current[1].rstrip("\r\n").split(",")
            current_bytes = [line.encode() for line in current]
            current_bytes[1] = fn(row) + b"\n"
            _replace(root / rel, b"".join(current_bytes))
        return apply

    def cell(i: int, value: bytes) -> Callable[[list[str]], bytes]:
        return lambda row: b",".join(value if j == i else c.encode() for j, c in enumerate(row))

    cases = [
        Case(f"{rel}:short-row", edit_line(lambda row: ",".join(row[: max(1, len(row) // 2)]).encode())),
        Case(f"{rel}:duplicate-row", lambda root: _replace(root / rel, (root / rel).read_bytes() + lines[1].encode())),
    ]
    for i in _spread(list(range(len(cells))), LEAVES_PER_TABLE):
        for fault, value in (("empty", b""), ("nan", b"nan"), ("inf", b"inf"), ("wrong-type", b"12x"),
                             ("non-utf8", b"caf\xe9"), ("dotdot", b"../../../../etc/passwd")):
            cases.append(Case(f"{rel}:row1/col{i}:{fault}", edit_line(cell(i, value))))
    return cases


# ---- parquet: one column ---------------------------------------------------------------------

def _parquet_faults(rel: str, root: Path) -> list[Case]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(root / rel)

    def rewrite(fn: Callable[[Any], Any]) -> Callable[[Path], None]:
        def apply(r: Path) -> None:
            t = fn(pq.read_table(r / rel))
            (r / rel).unlink()
            pq.write_table(t, r / rel)
        return apply

    def column_set(name: str, make: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda t: t.set_column(t.schema.get_field_index(name), name, make(t.column(name)))

    cases = [Case(f"{rel}:duplicate-row", rewrite(lambda t: pa.concat_tables([t, t.slice(0, 1)])))]
    for name in _spread(table.column_names, LEAVES_PER_TABLE + 1):
        col = table.column(name)
        cases.append(Case(f"{rel}:{name}:missing-column", rewrite(lambda t, n=name: t.drop_columns([n]))))
        cases.append(Case(f"{rel}:{name}:all-null", rewrite(column_set(
            name, lambda c: pa.nulls(len(c), c.type)))))
        cases.append(Case(f"{rel}:{name}:wrong-type", rewrite(column_set(
            name, lambda c: pa.array(["12x"] * len(c))))))
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            for fault, value in (("empty", ""), ("dotdot", "../../../../etc/passwd"), ("absolute", OUTSIDE)):
                cases.append(Case(f"{rel}:{name}:{fault}", rewrite(column_set(
                    name, lambda c, v=value: pa.array([v] + c.to_pylist()[1:], c.type)))))
        if pa.types.is_floating(col.type):
            for fault, value in (("nan", math.nan), ("inf", math.inf)):
                cases.append(Case(f"{rel}:{name}:{fault}", rewrite(column_set(
                    name, lambda c, v=value: pa.array([v] + c.to_pylist()[1:], c.type)))))
    return cases


# ---- TFRecord: CRCs and framing -------------------------------------------------------------

def _tfrecord_faults(rel: str) -> list[Case]:
    def flip(offset_of: Callable[[bytes], int]) -> Callable[[Path], None]:
        def apply(root: Path) -> None:
            data = bytearray((root / rel).read_bytes())
            data[offset_of(bytes(data))] ^= 0xFF
            _replace(root / rel, bytes(data))
        return apply

    def second_record(data: bytes) -> int:
        return 8 + 4 + int.from_bytes(data[:8], "little") + 4  # start of record 2

    return [
        Case(f"{rel}:bad-length-crc", flip(lambda d: 9)),
        Case(f"{rel}:bad-data-crc", flip(lambda d: 12 + int.from_bytes(d[:8], "little") // 2)),
        Case(f"{rel}:bad-data-crc-record2", flip(lambda d: second_record(d) + 12 + 40)),
        Case(f"{rel}:huge-length", flip(lambda d: 6)),
    ]


# ---- media --------------------------------------------------------------------------------

def _media_faults(rel: str) -> list[Case]:
    def truncate(root: Path) -> None:
        data = (root / rel).read_bytes()
        _replace(root / rel, data[: len(data) // 2])

    def symlink_out(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).symlink_to(OUTSIDE)

    return [
        Case(f"{rel}:missing", lambda root: (root / rel).unlink()),
        Case(f"{rel}:zero-byte", lambda root: _replace(root / rel, b"")),
        Case(f"{rel}:truncated", truncate),
        Case(f"{rel}:symlink-out", symlink_out),
    ]


def _table_cases(rel: str, root: Path, prefix: Path) -> list[Case]:
    suffix = Path(rel).suffix.lower()
    cases = _file_faults(rel)
    if suffix == ".json":
        try:
            doc = json.loads((root / rel).read_text())
        except ValueError:
            return cases
        cases += _json_faults(rel, doc, prefix)
    elif suffix in (".csv", ".txt"):
        cases += _csv_faults(rel, (root / rel).read_text())
    elif suffix == ".parquet":
        cases += _parquet_faults(rel, root)
    elif suffix == ".tfrecord":
        cases += _tfrecord_faults(rel)
    return cases


def corpus(root: Path, tables: list[str], media: list[str], prefix: Path = Path(".")) -> list[Case]:
    """Every case for the fixture at `root`: table faults for `tables`, media faults for `media`
    (paths relative to root). `prefix` is where the records' relative paths start."""
    cases = []
    for rel in tables:
        cases += _table_cases(rel, root, prefix)
    for rel in media:
        cases += _media_faults(rel)
    return cases
