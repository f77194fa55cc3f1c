"""NuInstruct: question answering on multi-view nuScenes video clips (perception, prediction,
risk, planning with reasoning).

Source schema (`xmed-lab/NuInstruct:README.md`; reference datasets.md section 10; the
annotation files are Git LFS and could not be inspected, so the clip layout is read
defensively): `annotations/{train,val,test}.json`, each a list of records
`{task, qa_id, img_path, Question, Answer, sample_list}`. `task` reads
`<group>-<subtask>` (e.g. `risk-overtaking`, `perception-distance`); `img_path` lists the
clip's images (flat, or one list per frame), nuScenes paths possibly under a prefix (cut at
`samples/` or `sweeps/`); `sample_list` holds the nuScenes sample tokens of its frames.

Every image path must be a key-frame camera image of a `sample_list` frame; the tables of
`--nuscenes-root` give its camera, capture time and calibration. Media are ordered camera
by camera (RoboTron-Drive's 6-view order), each camera's frames in time order; times are
relative to the clip's latest frame, the key frame (`frame_id`). Layout
`multi_view_video` (6 cameras x several frames; fewer cameras or one frame give the
matching simpler layout). Task `vqa.<group>`; the subtask, which picks the metric (MAE,
accuracy, BLEU or mAP), is `meta.subtask`. Answers stay as NuInstruct writes them
(objects as `<class>[cN, x1, y1, x2, y2]`).

A record is one QA; key `nuinstruct-<split>-<qa_id>`. Work unit: the clip's nuScenes
scene. Records whose tokens are not in the root, malformed records, repeated qa_ids and
images outside the clip are quarantined with the reason. What a clip's QAs share (its
images, ids, layout, sample_list, scene name and location: 7.7 KB of an 8.2 KB sample) is
each record's `context`, stored once per clip (`dataengine/context.py`).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from converters.nuscenes.media import camera_item, nuscenes_relative
from converters.nuscenes.tables import CAMERAS, NUSCENES_ORDER, NuScenesIndex, require_root
from converters.nuscenes.units import is_unresolved, key_part, quarantine_unresolved, scene_units
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError

SPLITS = ("train", "val", "test")
TASK_RE = re.compile(r"^([a-z]+)-([a-z_]+)$")


@dataclass(frozen=True)
class NuInstructOptions:
    nuscenes_root: str = ""
    """The nuScenes dataroot (v1.0-*/ tables, samples/) of the clips' sample tokens. Required."""


def layout_of(n_cameras: int, n_frames: int) -> str:
    if n_cameras > 1:
        return "multi_view_video" if n_frames > 1 else "multi_view"
    return "video" if n_frames > 1 else "single_image"


def clip_paths(img_path) -> tuple[list[str], str | None]:
    """The clip's image paths inside the nuScenes root (a flat list, or one list per frame)."""
    if not isinstance(img_path, list) or not img_path:
        return [], "img_path is not a non-empty list"
    flat = [p for entry in img_path for p in (entry if isinstance(entry, list) else [entry])]
    paths = []
    for path in flat:
        rel = nuscenes_relative(path) if isinstance(path, str) else None
        if rel is None:
            return [], f"img_path entry {path!r} is not a nuScenes samples/ or sweeps/ path"
        paths.append(rel)
    if len(set(paths)) != len(paths):
        return [], "img_path repeats an image"
    return paths, None


def record_problem(rec) -> str | None:
    """Why a NuInstruct record cannot be converted (its images aside), or None."""
    if not isinstance(rec, dict):
        return "record is not an object"
    if not isinstance(rec.get("task"), str) or not TASK_RE.match(rec["task"]):
        return f"task {rec.get('task')!r} is not '<group>-<subtask>'"
    if not isinstance(rec.get("Question"), str) or not rec["Question"].strip():
        return "no Question string"
    answer = rec.get("Answer")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not str(answer).strip():
        return "no Answer"
    tokens = rec.get("sample_list")
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        return "sample_list is not a non-empty list of sample tokens"
    return clip_paths(rec.get("img_path"))[1]


@register
class NuInstructConverter(Converter):
    """NuInstruct: multi-view video clips of nuScenes, one QA each (17 subtasks)."""

    name = "nuinstruct"
    version = "1.1"  # 1.1: a clip's shared fields as the records' context
    options_type = NuInstructOptions
    cameras = CAMERAS

    def _files(self) -> dict[str, Path]:
        return {s: self.src / "annotations" / f"{s}.json" for s in SPLITS
                if (self.src / "annotations" / f"{s}.json").is_file()}

    def check_source(self) -> None:
        if not self._files():
            raise UsageError(f"{self.src} is not a NuInstruct root: no annotations/{{train,val,test}}.json")
        require_root(self.options.nuscenes_root, self.name)
        for split, records in self._records.items():  # parsed once here, reused by units()
            if not records:
                raise UsageError(f"{self._files()[split]} holds no records")

    @cached_property
    def _records(self) -> dict[str, list]:
        out = {}
        for split, path in self._files().items():
            try:
                data = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise UsageError(f"{path} is not valid JSON ({exc})") from None
            if not isinstance(data, list):
                raise UsageError(f"{path} is not a NuInstruct annotation file (expected a JSON list of records)")
            out[split] = data
        return out

    def units(self) -> list[Unit]:
        index = NuScenesIndex(Path(self.options.nuscenes_root))
        units = []
        for split, raw in self._records.items():
            seen: set[str] = set()
            records = []
            for i, rec in enumerate(raw):
                qa_id = rec.get("qa_id") if isinstance(rec, dict) else None
                ok_id = isinstance(qa_id, (str, int)) and not isinstance(qa_id, bool)
                record = {"record_id": f"{split}/{qa_id if ok_id else f'#{i}'}", "sample_tokens": []}
                problem = (record_problem(rec) or (None if ok_id else "no qa_id")
                           or ("repeated qa_id" if key_part(qa_id) in seen else None))
                if problem:
                    records.append({**record, "problem": problem})
                    continue
                seen.add(key_part(qa_id))
                records.append({**record, "key": key_part(qa_id), "sample_tokens": rec["sample_list"],
                                "paths": clip_paths(rec["img_path"])[0], "task": rec["task"],
                                "question": rec["Question"], "answer": str(rec["Answer"]), "qa_id": qa_id})
            units += scene_units(index, split, records)
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        if is_unresolved(unit):
            yield from quarantine_unresolved(unit)
            return
        clips: dict[tuple, list[dict]] = {}
        for record in unit.payload["records"]:
            clips.setdefault((tuple(record["sample_tokens"]), tuple(record["paths"])), []).append(record)
        for (tokens, paths), records in clips.items():  # one clip's images in memory at a time
            media, blobs, reason = self._clip(unit, list(tokens), list(paths))
            context = None if reason else self._context(unit, tokens, media)
            for record in records:
                if reason:
                    yield Quarantined(record["record_id"], reason)
                else:
                    yield Record(self._sample(unit, record), blobs, context)

    def _clip(self, unit: Unit, tokens: list[str], paths: list[str]) -> tuple[list[dict], list[bytes], str | None]:
        """The clip's images, camera by camera in time order, timed from the latest frame."""
        frames = [unit.payload["frames"][t] for t in tokens]
        broken = [p for f in frames for p in f["problems"]]
        if broken:
            return [], [], "broken table link: " + "; ".join(broken)
        where = {cam["filename"]: (frame, channel) for frame in frames for channel, cam in frame["sensors"].items()}
        outside = [p for p in paths if p not in where]
        if outside:
            return [], [], f"img_path {outside[0]} is not a key-frame camera image of the sample_list frames"
        chosen = sorted((where[p] for p in paths),
                        key=lambda fc: (NUSCENES_ORDER.index(fc[1]), fc[0]["timestamp"], fc[0]["token"]))
        key_time = max(f["timestamp"] for f in frames)
        media, blobs = [], []
        for i, (frame, channel) in enumerate(chosen):
            item, data, reason = camera_item(Path(self.options.nuscenes_root), frame, self.name, channel, i, key_time)
            if reason:
                return [], [], reason
            media.append(item)
            blobs.append(data)
        return media, blobs, None

    @staticmethod
    def _context(unit: Unit, tokens: tuple, media: list[dict]) -> dict:
        """What every QA of a clip shares, stored once per clip (`dataengine/context.py`)."""
        scene = unit.payload["scene"]
        key = max((unit.payload["frames"][t] for t in tokens), key=lambda f: (f["timestamp"], f["token"]))
        per_camera = Counter(m["camera"] for m in media)
        return {"scene_id": f"nuscenes:{scene['token']}", "frame_id": f"nuscenes:{key['token']}",
                "layout": layout_of(len(per_camera), max(per_camera.values())), "media": media,
                "meta": {"sample_list": list(tokens), "scene_name": scene["name"], "location": scene["location"]}}

    def _sample(self, unit: Unit, record: dict) -> dict:
        """The QA's own fields; the clip's are its context."""
        group = TASK_RE.match(record["task"]).group(1)
        return {
            "schema": "sample/1", "id": f"nuinstruct-{unit.split}-{record['key']}", "dataset": self.name,
            "split": unit.split, "task": f"vqa.{group}",
            "conversations": [{"role": "user", "content": record["question"]},
                              {"role": "assistant", "content": record["answer"]}],
            "meta": {"qa_id": record["qa_id"], "subtask": record["task"]},
        }
