"""BDD-X raw release: each annotated segment of a dashcam video becomes a video sample that
asks what the ego car does and why.

Source root (`--src`), as the release ships it plus the BDD100K videos beside it:
  BDD-X-Annotations_v1.csv, train.txt, val.txt, test.txt   (see converters/bddx/table.py)
  videos/**/<video id>.mov or .mp4                         (any depth; first in sorted order wins)
Work unit: one CSV row, i.e. one annotation of one video (the real CSV annotates 1000
videos twice, under `samples-1k/` and `train/`, with different text, so keys carry the
URL's folder: `bddx-<folder>-<video id>-<slot>`). Split: the official split files; rows
they do not list are quarantined under `train` so that every row is accounted for.

Frames: `bddx_frames` times evenly spaced from the segment's start to its end, both
included; a zero-length segment (start = end, whole seconds) covers that one second. Each
frame is the one on screen at its time, JPEG-encoded once. `time_offset_s` is relative to
the last frame (the segment's end, the "current" frame), so it runs from -(end - start) to 0.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from converters.bddx.table import (
    CSV_NAME,
    SPLIT_FILES,
    Row,
    Segment,
    assign_splits,
    header_slots,
    parse_segment,
    read_rows,
    read_splits,
)
from converters.bddx.video import VideoError, duration_s, frames_at, past_end, sample_times
from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError

VIDEO_SUFFIXES = (".mov", ".mp4")
UNSPLIT = "train"  # where rows that no split file lists are quarantined
QUESTION_ACTION = "What is the ego car doing?"
QUESTION_WHY = "Why is the ego car doing this?"


@dataclass(frozen=True)
class BddxOptions:
    bddx_frames: int = 5
    """Frames sampled per annotated segment, evenly spaced from its start to its end."""


def _safe(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "_", text.lower())


def sample_key(folder: str, video: str, slot: int) -> str:
    """`bddx-<folder>-<video>-<slot>`: the URL folder tells the two annotations of a video apart."""
    return f"bddx-{_safe(folder)}-{_safe(video)}-{slot}"


def index_videos(src: Path) -> dict[str, str]:
    """video id -> path relative to `src` of every .mov/.mp4 under `src/videos`."""
    root = src / "videos"
    found: dict[str, str] = {}
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                found.setdefault(path.stem, path.relative_to(src).as_posix())
    return found


def row_problem(row: Row, first_row: int, listed: bool) -> str | None:
    """Why a whole row cannot be converted, or None. `first_row` is the first row that
    annotates the same video in the same URL folder (keys would repeat)."""
    if not row.video:
        return f"malformed row: {row.url!r} names no video file"
    if first_row != row.row:
        return f"duplicate row: video {row.folder}/{row.video} is already annotated in row {first_row}"
    if not row.slots:
        return "empty row: no annotated segment"
    if not listed:
        return f"not in a split: video {row.video} (row {row.row}) is in none of {', '.join(SPLIT_FILES.values())}"
    return None


def record_id_of(row: int, slot: int) -> str:
    return f"row{row}/seg{slot}"


def window(seg: Segment) -> tuple[int, int]:
    """The sampled span: the segment, or its one second when start = end."""
    return (seg.start, seg.end) if seg.end > seg.start else (seg.start, seg.start + 1)


@register
class BddxConverter(Converter):
    """BDD-X raw CSV + videos: per segment, sampled frames and the action and its justification."""

    name = "bddx"
    version = "1.0"
    options_type = BddxOptions
    cameras = {"front": "front"}

    def check_source(self) -> None:
        if self.options.bddx_frames < 1:
            raise UsageError(f"--bddx-frames must be at least 1, got {self.options.bddx_frames}")
        if not self.src.is_dir():
            raise UsageError(f"{self.src}: no such directory")
        missing = [n for n in (CSV_NAME, *SPLIT_FILES.values()) if not (self.src / n).is_file()]
        if missing:
            raise UsageError(f"{self.src}: not a BDD-X root (missing {', '.join(missing)})")
        with open(self.src / CSV_NAME, newline="", encoding="utf-8-sig") as f:
            header_slots(next(csv.reader(f), []), self.src / CSV_NAME)

    def units(self) -> list[Unit]:
        rows = read_rows(self.src / CSV_NAME)
        splits = assign_splits(rows, read_splits(self.src), self.src)
        videos = index_videos(self.src)
        first_row: dict[str, int] = {}  # "<folder>-<video>" -> the first row annotating it
        units = []
        for row in rows:
            ident = f"{_safe(row.folder)}-{_safe(row.video)}"
            first = first_row.setdefault(ident, row.row)
            split, index = splits.get(row.row, (UNSPLIT, None))
            problem = row_problem(row, first, index is not None)
            payload = {"row": row.row, "url": row.url, "video": row.video, "folder": row.folder, "index": index,
                       "problem": problem, "video_file": videos.get(row.video),
                       "slots": [list(s) for s in row.slots]}
            units.append(Unit(id=ident if row.video and first == row.row else f"row{row.row}", split=split,
                              payload=payload))
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        p = unit.payload
        if p["problem"]:
            for record_id in [record_id_of(p["row"], slot) for slot, _ in p["slots"]] or [f"row{p['row']}"]:
                yield Quarantined(record_id, p["problem"])
            return
        results: dict[int, Record | str] = {}
        good = []
        first: dict[tuple, int] = {}  # a segment's four fields -> the first slot holding them
        for slot, fields in p["slots"]:
            same = first.setdefault(tuple(fields), slot)
            seg = parse_segment(slot, tuple(fields))
            if same != slot:  # the same segment twice in one row: one annotation, entered twice
                results[slot] = f"duplicate segment: identical to slot {same} of this row"
            elif isinstance(seg, Segment):
                good.append(seg)
            else:
                results[slot] = seg
        results.update((seg.slot, item) for seg, item in self._convert_segments(unit, good))
        for slot in sorted(results):
            item = results[slot]
            yield item if isinstance(item, Record) else Quarantined(record_id_of(p["row"], slot), item)

    def _convert_segments(self, unit: Unit, segments: list[Segment]) -> Iterator[tuple[Segment, Record | str]]:
        """(segment, Record or quarantine reason) for each well-formed segment of the row."""
        if not segments:
            return
        p = unit.payload
        if p["video_file"] is None:
            for seg in segments:
                yield seg, f"missing video: no videos/**/{p['video']}.mov or .mp4 under the source root"
            return
        path = self.src / p["video_file"]
        try:
            duration = duration_s(path)
        except VideoError as exc:
            for seg in segments:
                yield seg, f"unreadable video: {p['video_file']}: {exc}"
            return
        fits = []
        for seg in segments:
            reason = past_end(seg.start, seg.end, duration)
            if reason:
                yield seg, f"past video end: {reason}"
            else:
                fits.append(seg)
        times = {seg.slot: sample_times(*window(seg), self.options.bddx_frames) for seg in fits}
        try:
            frames = frames_at(path, [t for ts in times.values() for t in ts]) if fits else {}
        except VideoError as exc:
            for seg in fits:
                yield seg, f"unreadable video: {p['video_file']}: {exc}"
            return
        for seg in fits:
            picked = [frames[t] for t in times[seg.slot]]
            yield seg, Record(self._sample(unit, seg, times[seg.slot], picked, duration), [f.jpeg for f in picked])

    def _sample(self, unit: Unit, seg: Segment, times: list[float], frames: list, duration: float) -> dict:
        p = unit.payload
        current = times[-1]
        front = canonical(self.cameras, "front", self.name)
        media = [{"member": f"img{i}.jpg", "camera": front, "source_camera": "front",
                  "time_offset_s": round(t - current, 6) + 0.0, "width": f.width, "height": f.height}
                 for i, (t, f) in enumerate(zip(times, frames))]
        return {
            "schema": "sample/1", "id": sample_key(p["folder"], p["video"], seg.slot), "dataset": "bddx",
            "split": unit.split, "task": "caption.action_justification",
            "scene_id": f"bddx:{p['video']}", "frame_id": f"bddx:{p['video']}@{seg.start}-{seg.end}",
            "layout": "video", "media": media,
            "conversations": [
                {"role": "user", "content": QUESTION_ACTION},
                {"role": "assistant", "content": seg.action},
                {"role": "user", "content": QUESTION_WHY},
                {"role": "assistant", "content": seg.justification},
            ],
            "meta": {"video": p["video"], "url": p["url"], "folder": p["folder"], "csv_row": p["row"],
                     "bddx_index": p["index"], "slot": seg.slot, "start_s": seg.start, "end_s": seg.end,
                     "action": seg.action, "justification": seg.justification,
                     "frame_times_s": times, "decoded_frame_times_s": [f.time_s for f in frames],
                     "video_file": p["video_file"], "video_duration_s": round(duration, 6)},
        }
