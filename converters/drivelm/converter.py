"""DriveLM-nuScenes: graph VQA (perception, prediction, planning, behavior) on nuScenes key frames.

Source schema (`OpenDriveLab/DriveLM` @ 1de72a7, `challenge/data/train_sample.json`,
`v1_1_train_nus.json`; reference datasets.md section 5): one JSON object keyed by nuScenes
scene token; each scene has `scene_description` and `key_frames`, keyed by nuScenes sample
token; each key frame has `key_object_infos` (keyed by object tags `<cN,CAM_X,x,y>`),
`QA` (lists `perception`, `prediction`, `planning`, `behavior` of `{Q, A, C, con_up,
con_down, cluster, layer}`) and `image_paths` (the 6 cameras, relative to the JSON's folder,
e.g. `../nuscenes/samples/CAM_FRONT/<file>.jpg`).

Image paths resolve against `--nuscenes-root`: the part from `samples/` (or `sweeps/`) on is
the path inside the nuScenes dataroot, exactly like a nuScenes `sample_data.filename`.
Object tags stay in the text as DriveLM writes them (RoboTron-Drive keeps them too); each
tag's camera is mapped to the canonical name in `meta.object_tags`.

A record is one QA. `drivelm_mode=per_qa` writes one sample per QA (task `vqa.<group>`,
key `drivelm-<sample token>-<group>-<index>`); `per_frame` writes one multi-turn sample per
key frame (task `vqa.graph`, key `drivelm-<sample token>`) holding its good QA group by
group (perception, prediction, planning, behavior), each group in file order. A bad QA is
quarantined on its own; a key frame whose images or object table are bad quarantines all
its QA; a broken key frame or scene is one record. Work unit: one scene. What a key frame's
samples share (cameras, objects, ids, frame-level meta) is each record's `context`, stored
once per frame (`dataengine/context.py`).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from converters.nuscenes.media import nuscenes_relative
from converters.nuscenes.tables import CAMERAS, NUSCENES_ORDER
from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.media import read_image
from dataengine.schema import SPLITS

GROUPS = ("perception", "prediction", "planning", "behavior")
MODES = ("per_qa", "per_frame")
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
TAG_RE = re.compile(r"<(c\d+),([A-Z_]+),(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)>")
TIMESTAMP_RE = re.compile(r"__(\d+)\.(?:jpg|jpeg|png)$")


@dataclass(frozen=True)
class DriveLMOptions:
    nuscenes_root: str = ""
    """The nuScenes dataroot (holding samples/CAM_*/) the JSON's image paths point into. Required."""
    drivelm_mode: str = "per_qa"
    """per_qa: one sample per QA; per_frame: one multi-turn sample per key frame."""
    drivelm_split: str = "train"
    """Split of the JSON file: train (v1_1_train_nus.json) or val/test (question-only files may
    leave answers empty; a train QA without an answer is quarantined)."""


def parse_tags(text: str) -> tuple[list[dict], str | None]:
    """Object tags in a text, in order of first appearance; or a reason when a tag's camera is
    not a nuScenes camera."""
    tags, seen = [], set()
    for m in TAG_RE.finditer(text):
        if m.group(0) in seen:
            continue
        seen.add(m.group(0))
        if m.group(2) not in CAMERAS:
            return [], f"object tag {m.group(0)} names unknown camera {m.group(2)}"
        tags.append({"tag": m.group(0), "id": m.group(1), "camera": canonical(CAMERAS, m.group(2), "drivelm"),
                     "source_camera": m.group(2), "xy": [float(m.group(3)), float(m.group(4))],
                     "media_index": NUSCENES_ORDER.index(m.group(2))})
    return tags, None


def _timestamp(path: str) -> int | None:
    m = TIMESTAMP_RE.search(path)
    return int(m.group(1)) if m else None


def _is_box(box) -> bool:
    return (isinstance(box, list) and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box))


def key_objects(infos) -> tuple[list[dict], str | None]:
    """`key_object_infos` as schema objects (one 2D box in the tag's camera), or a reason."""
    if not isinstance(infos, dict):
        return [], "key_object_infos is not an object"
    objects = []
    for key, info in infos.items():
        tags, reason = parse_tags(key)
        if reason or len(tags) != 1 or tags[0]["tag"] != key:
            return [], reason or f"key_object_infos key {key!r} is not an object tag <cN,CAM_X,x,y>"
        if not isinstance(info, dict) or not isinstance(info.get("Category"), str) or not _is_box(info.get("2d_bbox")):
            return [], f"key_object_infos[{key}] needs a Category string and a 2d_bbox of 4 numbers"
        objects.append({"category": info["Category"], "label": tags[0]["id"], "tag": key,
                        "status": info.get("Status"), "description": info.get("Visual_description"),
                        "box_2d": [{"camera": tags[0]["camera"], "xyxy": [float(v) for v in info["2d_bbox"]]}]})
    return objects, None


@register
class DriveLMConverter(Converter):
    """DriveLM-nuScenes graph VQA on 6-camera key frames (per QA or per key frame)."""

    name = "drivelm"
    version = "1.1"  # 1.1: a key frame's shared fields as the records' context
    options_type = DriveLMOptions
    cameras = CAMERAS

    @cached_property
    def _data(self) -> dict:
        try:
            return json.loads(self.src.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{self.src} is not valid JSON ({exc})") from None

    def check_source(self) -> None:
        opts = self.options
        if opts.drivelm_mode not in MODES:
            raise UsageError(f"--drivelm-mode {opts.drivelm_mode!r}: use one of {', '.join(MODES)}")
        if opts.drivelm_split not in SPLITS:
            raise UsageError(f"--drivelm-split {opts.drivelm_split!r}: use one of {', '.join(SPLITS)}")
        if not opts.nuscenes_root:
            raise UsageError("drivelm needs --nuscenes-root PATH: the nuScenes dataroot its image paths point into")
        if not (Path(opts.nuscenes_root) / "samples").is_dir():
            raise UsageError(f"--nuscenes-root {opts.nuscenes_root} is not a nuScenes dataroot (no samples/ folder)")
        if not self.src.is_file():
            raise UsageError(f"{self.src} is not a file: pass the DriveLM QA JSON (e.g. v1_1_train_nus.json)")
        data = self._data
        if not isinstance(data, dict) or not any(isinstance(v, dict) and "key_frames" in v for v in data.values()):
            raise UsageError(f"{self.src} is not a DriveLM-nuScenes QA file: no scene object with key_frames")

    def units(self) -> list[Unit]:
        """One unit per scene; a scene key that is not a token gets a unit that quarantines it."""
        units = []
        for token, scene in self._data.items():
            unit_id = token if TOKEN_RE.match(token) else f"not-a-token-{hashlib.sha1(token.encode()).hexdigest()[:16]}"
            units.append(Unit(unit_id, self.options.drivelm_split, {"scene_token": token, "scene": scene}))
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        token, scene = unit.payload["scene_token"], unit.payload["scene"]
        if not TOKEN_RE.match(token):
            yield Quarantined(token, "scene key is not a nuScenes scene token (32 hex digits)")
            return
        if not isinstance(scene, dict) or not isinstance(scene.get("key_frames"), dict):
            yield Quarantined(token, "scene has no key_frames object")
            return
        for sample_token, frame in scene["key_frames"].items():
            yield from self._frame(token, scene.get("scene_description"), sample_token, frame)

    def _frame(self, scene_token: str, description, sample_token: str, frame) -> Iterator[Record | Quarantined]:
        if not TOKEN_RE.match(sample_token):
            yield Quarantined(sample_token, "key frame key is not a nuScenes sample token (32 hex digits)")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("QA"), dict):
            yield Quarantined(sample_token, "key frame has no QA object")
            return
        qas, bad = self._qa_items(sample_token, frame["QA"])
        yield from bad
        if not qas:
            return
        media, blobs, reason = self._cameras(frame.get("image_paths"))
        objects, obj_reason = key_objects(frame.get("key_object_infos", {}))
        reason = reason or obj_reason
        if reason:
            yield from (Quarantined(qa["record_id"], reason) for qa in qas)
            return
        context = self._context(scene_token, sample_token, description, frame, media, objects)
        if self.options.drivelm_mode == "per_frame":
            yield Record(self._frame_sample(self._own(), sample_token, qas), blobs, context)
        else:
            yield from (Record(self._qa_sample(self._own(), sample_token, qa), blobs, context) for qa in qas)

    def _qa_items(self, sample_token: str, groups: dict) -> tuple[list[dict], list[Quarantined]]:
        """The good QA of a key frame (groups in GROUPS order, each in file order) and a
        Quarantined for each bad one (a group that is not a list counts as one bad record)."""
        good, bad = [], []
        for group in [*GROUPS, *sorted(set(groups) - set(GROUPS))]:
            items = groups.get(group, [])
            if not isinstance(items, list):
                bad.append(Quarantined(f"{sample_token}/{group}", f"QA group {group!r} is not a list"))
                continue
            for index, qa in enumerate(items):
                record_id = f"{sample_token}/{group}/{index}"
                reason = self._qa_problem(qa) if group in GROUPS else f"unknown QA group (known: {', '.join(GROUPS)})"
                if reason:
                    bad.append(Quarantined(record_id, reason))
                    continue
                tags, reason = parse_tags(qa["Q"] + "\n" + qa["A"])
                if reason:
                    bad.append(Quarantined(record_id, reason))
                    continue
                good.append({"record_id": record_id, "group": group, "index": index, "q": qa["Q"], "a": qa["A"],
                             "object_tags": tags, "extra": {k: v for k, v in qa.items() if k not in ("Q", "A")}})
        return good, bad

    def _qa_problem(self, qa) -> str | None:
        if not isinstance(qa, dict):
            return "QA item is not an object"
        for field in ("Q", "A"):
            if not isinstance(qa.get(field), str):
                return f"QA item has no {field} string"
        if not qa["Q"].strip():
            return "empty question"
        if not qa["A"].strip() and self.options.drivelm_split == "train":
            return "empty answer in a train split"
        return None

    def _cameras(self, paths) -> tuple[list[dict], list[bytes], str | None]:
        """The 6 key frame images in nuScenes camera order, read under the nuScenes root."""
        if not isinstance(paths, dict):
            return [], [], "key frame has no image_paths object"
        missing = [c for c in NUSCENES_ORDER if not isinstance(paths.get(c), str)]
        if missing:
            return [], [], f"image_paths lacks {', '.join(missing)}"
        front_ts = _timestamp(paths["CAM_FRONT"])
        media, blobs = [], []
        for i, channel in enumerate(NUSCENES_ORDER):
            rel = nuscenes_relative(paths[channel])
            if rel is None or rel.split("/")[1:2] != [channel]:
                return [], [], f"image_paths[{channel}] {paths[channel]!r} is not under samples/{channel}/"
            blob, reason = read_image(Path(self.options.nuscenes_root), rel)
            if reason:
                return [], [], f"{channel}: {reason}"
            ts = _timestamp(rel)
            offset = (ts - front_ts) / 1e6 if ts is not None and front_ts is not None else 0.0
            media.append({"member": f"img{i}.{blob.format}", "camera": canonical(self.cameras, channel, self.name),
                          "source_camera": channel, "time_offset_s": round(offset, 6) + 0.0,
                          "width": blob.width, "height": blob.height})
            blobs.append(blob.data)
        return media, blobs, None

    @staticmethod
    def _context(scene_token, sample_token, description, frame, media, objects) -> dict:
        """What every QA of the key frame shares: stored once per frame, not per question
        (`dataengine/context.py`); 80% of a per-QA sample's JSON."""
        return {
            "scene_id": f"nuscenes:{scene_token}", "frame_id": f"nuscenes:{sample_token}",
            "layout": "multi_view", "media": media, "objects": objects,
            "meta": {"scene_token": scene_token, "sample_token": sample_token,
                     "scene_description": description, "image_paths": frame["image_paths"],
                     "time_reference": "CAM_FRONT"},
        }

    def _own(self) -> dict:
        return {"schema": "sample/1", "dataset": self.name, "split": self.options.drivelm_split}

    @staticmethod
    def _qa_sample(own: dict, sample_token: str, qa: dict) -> dict:
        return {**own, "id": f"drivelm-{sample_token}-{qa['group']}-{qa['index']}", "task": f"vqa.{qa['group']}",
                "conversations": [{"role": "user", "content": qa["q"]}, {"role": "assistant", "content": qa["a"]}],
                "meta": {"qa_group": qa["group"], "qa_index": qa["index"], "object_tags": qa["object_tags"],
                         "qa_fields": qa["extra"]}}

    @staticmethod
    def _frame_sample(own: dict, sample_token: str, qas: list[dict]) -> dict:
        turns = [t for qa in qas for t in ({"role": "user", "content": qa["q"]},
                                           {"role": "assistant", "content": qa["a"]})]
        return {**own, "id": f"drivelm-{sample_token}", "task": "vqa.graph", "conversations": turns,
                "meta": {"turns": [{"qa_group": qa["group"], "qa_index": qa["index"],
                                    "object_tags": qa["object_tags"], "qa_fields": qa["extra"]}
                                   for qa in qas]}}
