"""BDD-X raw release: the annotation CSV and the official split files, parsed and checked.

Source (`JinkyuKimUCB/BDD-X-dataset` @0a724c8, reference datasets.md section 4.1):
- `BDD-X-Annotations_v1.csv`, an Amazon MTurk export (CRLF): `Input.Video` (a URL whose
  basename is the BDD100K video id, under `samples-1k/` or `train/`), then for i = 1..15
  `Answer.{i}start`, `Answer.{i}end` (whole seconds), `Answer.{i}action`,
  `Answer.{i}justification`. After the first 1000 rows every other record is all empty.
- `train.txt`, `val.txt`, `test.txt`: lines `<index>_<video id>`, where `index` is the
  1-based position of the row among the *indexed* rows: those with at least one segment
  whose start is a whole number (three rows of the real CSV have none and are skipped by
  the numbering).

A record is one annotated segment slot (any of its four fields non-empty); a row with no
annotated slot counts as one record, so every CSV row is accounted for. `parse_segment`
returns a `Segment` or the reason the slot is malformed; nothing here needs the videos.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from dataengine.errors import UsageError

CSV_NAME = "BDD-X-Annotations_v1.csv"
SPLIT_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
VIDEO_COLUMN = "Input.Video"
FIELDS = ("start", "end", "action", "justification")
PLACEHOLDER = "X"  # annotators typed X for "nothing to say" (8 rows of the real CSV)
VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SPLIT_LINE_RE = re.compile(r"^(\d+)_(\S+)$")
WHOLE_SECONDS_RE = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Segment:
    """A well-formed annotated segment: whole-second times, action and justification."""

    slot: int
    start: int
    end: int
    action: str
    justification: str


@dataclass(frozen=True)
class Row:
    """One non-empty CSV record: the video it annotates and its annotated slots (raw text)."""

    row: int                       # 1-based record number in the CSV, header excluded
    url: str
    video: str                     # BDD100K video id ("" when the URL names none)
    folder: str                    # the URL's parent folder: samples-1k or train
    slots: tuple[tuple[int, tuple[str, str, str, str]], ...]

    @property
    def indexed(self) -> bool:
        """Counted by the split files' numbering: some slot has a whole-second start."""
        return any(WHOLE_SECONDS_RE.match(fields[0]) for _, fields in self.slots)


def header_slots(header: list[str], path: Path) -> int:
    """The number of segment slots the header declares; UsageError when it is not BDD-X's."""
    if not header or header[0].strip() != VIDEO_COLUMN:
        raise UsageError(f"{path}: not the BDD-X annotation CSV (first column is not {VIDEO_COLUMN})")
    n = 0
    while f"Answer.{n + 1}start" in header:
        n += 1
    missing = [f"Answer.{i}{f}" for i in range(1, n + 1) for f in FIELDS if f"Answer.{i}{f}" not in header]
    if n == 0 or missing:
        raise UsageError(f"{path}: not the BDD-X annotation CSV (missing columns "
                         f"{', '.join(missing) or 'Answer.1start'})")
    return n


def _video_of(url: str) -> tuple[str, str]:
    """(video id, folder) from `.../<folder>/<video id>.mov`; ("", "") when it names none."""
    parts = url.strip().rstrip("/").split("/")
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else ""
    if not VIDEO_ID_RE.match(stem):
        return "", ""
    return stem, parts[-2] if len(parts) > 1 else ""


def read_rows(path: Path) -> list[Row]:
    """Every non-empty record of the CSV, in file order (all-empty separator records skipped)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        n = header_slots(header, path)
        cols = {name: i for i, name in enumerate(header)}
        rows = []
        for number, record in enumerate(reader, start=1):
            if not any(cell.strip() for cell in record):
                continue
            slots = []
            for i in range(1, n + 1):
                fields = tuple(_cell(record, cols, f"Answer.{i}{f}") for f in FIELDS)
                if any(fields):
                    slots.append((i, fields))
            url = _cell(record, cols, VIDEO_COLUMN)
            rows.append(Row(number, url, *_video_of(url), tuple(slots)))
    return rows


def _cell(record: list[str], cols: dict[str, int], name: str) -> str:
    i = cols[name]
    return record[i].strip() if i < len(record) else ""


def parse_segment(slot: int, fields: tuple[str, str, str, str]) -> Segment | str:
    """A Segment, or the reason the slot is malformed (category before the first colon)."""
    start, end, action, justification = fields
    missing = [name for name, value in zip(FIELDS, fields) if not value]
    if missing:
        return f"missing fields: {', '.join(missing)}"
    bad = [f"{name} {value!r}" for name, value in (("start", start), ("end", end))
           if not WHOLE_SECONDS_RE.match(value)]
    if bad:
        return f"bad time: {', '.join(bad)} is not whole seconds"
    if int(end) < int(start):
        return f"end before start: {start} s to {end} s"
    placeholder = [f"{name} {value!r}" for name, value in (("action", action), ("justification", justification))
                   if value == PLACEHOLDER]
    if placeholder:
        return f"placeholder text: {', '.join(placeholder)}"
    return Segment(slot, int(start), int(end), action, justification)


def read_splits(root: Path) -> dict[int, tuple[str, str]]:
    """index -> (split, video id) from the three official split files."""
    out: dict[int, tuple[str, str]] = {}
    for split, name in SPLIT_FILES.items():
        path = root / name
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            m = SPLIT_LINE_RE.match(line.strip())
            if not m:
                raise UsageError(f"{path}:{k}: {line.strip()!r} is not '<index>_<video id>'")
            index = int(m.group(1))
            if index in out:
                raise UsageError(f"{path}:{k}: index {index} already listed in {out[index][0]}.txt")
            out[index] = (split, m.group(2))
    return out


def assign_splits(rows: list[Row], splits: dict[int, tuple[str, str]], root: Path) -> dict[int, tuple[str, int]]:
    """CSV row number -> (split, official index) for the rows the split files list.

    The split files number the indexed rows; an entry whose video id differs from the row
    at its index means the files do not belong to this CSV (UsageError)."""
    indexed = [r for r in rows if r.indexed]
    out = {}
    for index, (split, video) in sorted(splits.items()):
        if not 1 <= index <= len(indexed):
            raise UsageError(f"{root / SPLIT_FILES[split]}: index {index} is past the CSV's "
                             f"{len(indexed)} annotated rows")
        row = indexed[index - 1]
        if row.video != video:
            raise UsageError(f"{root / SPLIT_FILES[split]}: entry {index}_{video} names CSV row {row.row}, "
                             f"which annotates video {row.video!r}: split files and CSV do not match")
        out[row.row] = (split, index)
    return out
