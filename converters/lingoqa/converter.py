"""LingoQA: questions about 5-frame front-camera clips, with the evaluation set's two references.

Source layout (`wayveai/LingoQA`; reference datasets.md section 8): the release folders
`scenery/` and `action/` (each `train.parquet` + `images/train/<segment_id>/{0..4}.jpg`) and
`evaluation/` (`val.parquet` + `images/val/...`); frame paths in a parquet are relative to
its folder. `--src` is either the release root holding those folders or one folder with a
`train.parquet` or `val.parquet`. Parquet columns: `question_id`, `segment_id`, `images` (5
relative paths), `question`, `answer`; `val.parquet` has 2 rows (references) per question.

A record is one question: its rows are grouped by `question_id` (as the benchmark's
`evaluate.py` groups them) into one sample whose answer turn holds the first reference and
whose `meta.references` holds all of them, in file order (identical references included:
two annotators may agree). In a train.parquet, whose questions have one answer, a row
identical to an earlier one is a repeated record, quarantined as `<question_id>/row<n>`. Layout `video`, camera `front`,
frames in time order with frame 4 the key frame; LingoQA states no frame rate, so offsets
assume the ~1 Hz that loaders describe ([secondary], `meta.frame_interval_assumed`).
`--lingoqa-image-root DIR` reads frames from `DIR/<segment_id>/<n>.jpg` (an unzipped
`images/<split>/` folder kept elsewhere). Splits: train.parquet -> train, val.parquet -> val.
Work unit: up to 50 segments of one parquet.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.media import read_image

COLUMNS = ("question_id", "segment_id", "images", "question", "answer")
PARQUET_SPLITS = {"train.parquet": "train", "val.parquet": "val"}
SUBSETS = ("scenery", "action", "evaluation")
LOOSE_SUBSETS = {"train.parquet": "train", "val.parquet": "evaluation"}  # a parquet outside its release folder
FRAMES = 5
FRAME_INTERVAL_S = 1.0  # [secondary]: ~1 Hz per third-party loaders; LingoQA does not state it
SEGMENTS_PER_UNIT = 50
ID_RE = re.compile(r"^[a-z0-9_-]+$")  # the release's ids are lowercase hex; keys keep them as they are


@dataclass(frozen=True)
class LingoQAOptions:
    lingoqa_image_root: str = ""
    """Folder of `<segment_id>/<n>.jpg` frames (an unzipped images/<split>/ folder) to read
    instead of the paths relative to each parquet's folder."""


def find_parquets(src: Path) -> list[tuple[str, Path]]:
    """(subset, parquet) pairs under a release root or a single release folder."""
    found = [(sub, src / sub / name) for sub in SUBSETS for name in PARQUET_SPLITS if (src / sub / name).is_file()]
    if found:
        return found
    return [(src.name if src.name in SUBSETS else LOOSE_SUBSETS[name], src / name)
            for name in PARQUET_SPLITS if (src / name).is_file()]


def group_questions(table, references: bool = True) -> list[dict]:
    """Rows grouped by question_id in order of first appearance, every row's values kept.

    In `val.parquet` (`references`) a question's rows are its references, and two annotators
    may write the same answer (45 of the 500 real questions have two identical rows): all
    are kept. A `train.parquet` question has one answer, so a row identical to an earlier
    row of its question is a repeated record: it becomes a group of its own that names it
    (`duplicate_of`), which the worker quarantines.
    """
    groups: dict[str, dict] = {}
    repeats: list[dict] = []
    for i, row in enumerate(table.to_pylist()):
        qid = row["question_id"]
        key = qid if isinstance(qid, str) else f"row-{i}"
        values = {"index": i, **{c: row[c] for c in COLUMNS if c != "question_id"}}
        group = groups.setdefault(key, {"question_id": qid, "record_id": key, "rows": []})
        same = None if references else next((r["index"] for r in group["rows"]
                                             if {**r, "index": i} == values), None)
        if same is None:
            group["rows"].append(values)
        else:
            repeats.append({"question_id": qid, "record_id": f"{key}/row{i}", "rows": [values], "duplicate_of": same})
    return list(groups.values()) + repeats


def question_problem(group: dict) -> str | None:
    """Why a grouped question cannot be converted (None when it can)."""
    qid, rows = group["question_id"], group["rows"]
    if "duplicate_of" in group:
        return f"duplicate row: identical to row {group['duplicate_of']} of question_id {qid!r}"
    if not isinstance(qid, str) or not ID_RE.match(qid):
        return f"question_id {qid!r} is not [a-z0-9_-]+"
    first = rows[0]
    for field in ("segment_id", "question", "images"):
        if any(r[field] != first[field] for r in rows[1:]):
            return f"rows of this question_id disagree on {field}"
    if not isinstance(first["segment_id"], str) or not ID_RE.match(first["segment_id"]):
        return f"segment_id {first['segment_id']!r} is not [a-z0-9_-]+"
    if not isinstance(first["question"], str) or not first["question"].strip():
        return "empty question"
    if not isinstance(first["images"], list) or len(first["images"]) != FRAMES or not all(
            isinstance(p, str) and p for p in first["images"]):
        return f"images is not a list of {FRAMES} frame paths"
    if any(not isinstance(r["answer"], str) or not r["answer"].strip() for r in rows):
        return "empty answer"
    return None


@register
class LingoQAConverter(Converter):
    """LingoQA video QA on 5-frame front-camera clips (evaluation: two references per question)."""

    name = "lingoqa"
    version = "1.0"
    options_type = LingoQAOptions
    cameras = {"front": "front"}

    def check_source(self) -> None:
        if not self.src.is_dir():
            raise UsageError(f"{self.src} is not a directory: pass the LingoQA release root or a folder with "
                             f"train.parquet or val.parquet")
        parquets = find_parquets(self.src)
        if not parquets:
            raise UsageError(f"{self.src} is not a LingoQA root: no train.parquet/val.parquet here or under "
                             f"{', '.join(SUBSETS)}/")
        for _sub, path in parquets:
            try:
                names = set(pq.read_schema(path).names)
            except pa.ArrowInvalid as exc:
                raise UsageError(f"{path} is not a readable parquet ({exc})") from None
            if not set(COLUMNS) <= names:
                raise UsageError(f"{path} is not a LingoQA parquet: lacks {sorted(set(COLUMNS) - names)}")
        root = self.options.lingoqa_image_root
        if root and not Path(root).is_dir():
            raise UsageError(f"--lingoqa-image-root {root} is not a directory")

    def units(self) -> list[Unit]:
        units = []
        for subset, path in find_parquets(self.src):
            split = PARQUET_SPLITS[path.name]
            by_segment: dict[str, list[dict]] = {}
            for group in group_questions(pq.read_table(path, columns=list(COLUMNS)), references=split == "val"):
                by_segment.setdefault(str(group["rows"][0]["segment_id"]), []).append(group)
            segments = sorted(by_segment)
            for i in range(0, len(segments), SEGMENTS_PER_UNIT):
                questions = [g for s in segments[i:i + SEGMENTS_PER_UNIT] for g in by_segment[s]]
                units.append(Unit(f"{subset}-{split}-{i // SEGMENTS_PER_UNIT:04d}", split, {
                    "subset": subset, "folder": str(path.parent.relative_to(self.src)), "questions": questions}))
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        for group in unit.payload["questions"]:
            record_id = group["record_id"]
            reason = question_problem(group)
            if reason:
                yield Quarantined(record_id, reason)
                continue
            media, blobs, reason = self._frames(unit, group["rows"][0])
            if reason:
                yield Quarantined(record_id, reason)
                continue
            yield Record(self._sample(unit, group, media), blobs)

    def _frame_location(self, unit: Unit, path: str) -> tuple[Path, str]:
        """(root, relative path) of one frame: under the parquet's folder, or under
        --lingoqa-image-root with the leading images/<split>/ removed."""
        if not self.options.lingoqa_image_root:
            return self.src / unit.payload["folder"], path
        parts = PurePosixPath(path).parts
        rel = "/".join(parts[2:]) if len(parts) > 2 and parts[0] == "images" else path
        return Path(self.options.lingoqa_image_root), rel

    def _frames(self, unit: Unit, row: dict) -> tuple[list[dict], list[bytes], str | None]:
        media, blobs = [], []
        for i, path in enumerate(row["images"]):
            root, rel = self._frame_location(unit, path)
            blob, reason = read_image(root, rel)
            if reason:
                return [], [], f"{reason} (frame {i})"
            media.append({"member": f"img{i}.{blob.format}", "camera": canonical(self.cameras, "front", self.name),
                          "source_camera": "front", "time_offset_s": (i - (FRAMES - 1)) * FRAME_INTERVAL_S,
                          "width": blob.width, "height": blob.height})
            blobs.append(blob.data)
        return media, blobs, None

    def _sample(self, unit: Unit, group: dict, media: list[dict]) -> dict:
        first, qid, subset = group["rows"][0], group["question_id"], unit.payload["subset"]
        references = [r["answer"] for r in group["rows"]]
        return {
            "schema": "sample/1", "id": f"{self.name}-{subset}-{qid}", "dataset": self.name,
            "split": unit.split, "task": "vqa.driving_video", "scene_id": f"lingoqa:{first['segment_id']}",
            "frame_id": f"lingoqa:{first['segment_id']}", "layout": "video", "media": media,
            "conversations": [{"role": "user", "content": first["question"]},
                              {"role": "assistant", "content": references[0]}],
            "meta": {"question_id": qid, "segment_id": first["segment_id"], "subset": subset,
                     "references": references, "source_rows": [r["index"] for r in group["rows"]],
                     "frame_paths": first["images"], "frame_interval_assumed": True},
        }
