"""CODA-LM: corner-case perception and driving suggestions on single front-camera images.

Source layout (`DLUT-LYZ/CODA-LM:README.md`, `convert2vqa.py`; reference datasets.md section 6):
`<root>/CODA-LM/{Train,Val,Test,Mini}/<imgdir>_<imgid>.json`, one file per image, whose image
is `<root>/<imgdir>/images/<imgid>.jpg` (Train uses CODA2022 `val/` images, Val/Test/Mini
CODA2022 `test/` images). Each file holds `general_perception` (per-category lists of
`{description, explanation}` plus the summary `description and explanation`),
`region_perception` (`"1"`, `"2"`, ...: `{description and explanation, box [x, y, w, h] in
pixels, category_name}`) and `driving_suggestion` (a string).

A record is one question: the general perception, the driving suggestion, and one per region.
Questions are the official ones (`convert2vqa.py`); a region's question names its box in
normalized `<x1, y1, x2, y2>` coordinates, as the official dataloader (`codalm_dataloader.py`)
does, instead of drawing a red rectangle (image bytes are never re-encoded). Folders map to
splits Train -> train, Val -> val, Test -> test; Mini (a 50-image subset of Val) is converted
as val only when Val is absent. Test ships without answer texts: its empty answers are kept
(empty assistant turn, `meta.has_answer` false); an empty answer elsewhere is quarantined.
Work unit: up to 200 annotation files of one folder.
"""
from __future__ import annotations

import json
import math
import re
from typing import Iterator

from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.media import ImageBlob, read_image

ANNOTATIONS = "CODA-LM"
FOLDER_SPLITS = {"Train": "train", "Val": "val", "Test": "test", "Mini": "val"}
FILES_PER_UNIT = 200
FILE_RE = re.compile(r"^([a-z]+)_([a-z0-9]+)\.json$")  # keys reuse both parts as they are
REGION_RE = re.compile(r"^[0-9]+$")
PERCEPTION_LISTS = ("vehicles", "vulnerable_road_users", "traffic signs", "traffic lights", "traffic cones",
                    "barriers", "other objects")
SUMMARY = "description and explanation"
GENERAL_QUESTION = (
    "There is an image of traffic captured from the perspective of the ego car. Please focus on objects that "
    "have a great influence on ego car driving behavior in the scene, describe these objects and the reasons "
    "why they influence ego car driving.")
SUGGESTION_QUESTION = ("There is an image of traffic captured from the perspective of the ego car. Please provide "
                       "driving suggestions for the ego car based on the current scene.")
REGION_QUESTION = ("Please provide a description for this object {box} and explain why this object affect ego car "
                   "driving.")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def region_box(box, width: int, height: int) -> tuple[list[float] | None, str | None]:
    """Pixel xyxy from CODA's xywh, clipped to the image; or a reason the box is unusable."""
    if not (isinstance(box, list) and len(box) == 4 and all(_is_num(v) for v in box)):
        return None, f"box {box!r} is not 4 numbers [x, y, w, h]"
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        return None, f"box {box!r} has no area"
    xyxy = [min(max(x, 0.0), width), min(max(y, 0.0), height), min(max(x + w, 0.0), width),
            min(max(y + h, 0.0), height)]
    if xyxy[2] <= xyxy[0] or xyxy[3] <= xyxy[1]:
        return None, f"box {box!r} lies outside the {width}x{height} image"
    return [round(v, 2) + 0.0 for v in xyxy], None


def region_question(xyxy: list[float], width: int, height: int) -> str:
    norm = [xyxy[0] / width, xyxy[1] / height, xyxy[2] / width, xyxy[3] / height]
    return REGION_QUESTION.format(box="<" + ", ".join(f"{v:.3f}" for v in norm) + ">")


def _format_problem(data) -> str | None:
    """Why a parsed file is not in the CODA-LM per-image format (None when it is)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    general = data.get("general_perception")
    if not isinstance(general, dict) or not isinstance(general.get(SUMMARY), str):
        return f"general_perception is not an object with a {SUMMARY!r} string"
    for key in PERCEPTION_LISTS:  # kept in meta: a NaN or a stray type there would fail the sample
        items = general.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return f"general_perception[{key!r}] is not a list of objects"
    if not isinstance(data.get("region_perception", {}), dict):
        return "region_perception is not an object"
    if not isinstance(data.get("driving_suggestion"), str):
        return "driving_suggestion is not a string"
    return None


@register
class CodaLMConverter(Converter):
    """CODA-LM corner cases: general perception, regional perception (boxes), driving suggestion."""

    name = "codalm"
    version = "1.0"
    cameras = {"front": "front"}

    def _folders(self) -> list[str]:
        root = self.src / ANNOTATIONS
        present = [f for f in FOLDER_SPLITS if any((root / f).glob("*.json"))]
        return [f for f in present if not (f == "Mini" and "Val" in present)]

    def check_source(self) -> None:
        if not self.src.is_dir():
            raise UsageError(f"{self.src} is not a directory: pass the CODA root holding CODA-LM/ and the "
                             f"image folders")
        if not self._folders():
            raise UsageError(f"{self.src} is not a CODA-LM root: no {ANNOTATIONS}/{{Train,Val,Test,Mini}}/*.json")

    def units(self) -> list[Unit]:
        units = []
        for folder in self._folders():
            files = sorted(p.name for p in (self.src / ANNOTATIONS / folder).glob("*.json"))
            for i in range(0, len(files), FILES_PER_UNIT):
                units.append(Unit(f"{folder}-{i // FILES_PER_UNIT:04d}", FOLDER_SPLITS[folder],
                                  {"folder": folder, "files": files[i:i + FILES_PER_UNIT]}))
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        for name in unit.payload["files"]:
            yield from self._file(unit, unit.payload["folder"], name)

    def _file(self, unit: Unit, folder: str, name: str) -> Iterator[Record | Quarantined]:
        file_id = f"{folder}/{name[:-5]}"
        m = FILE_RE.match(name)
        if not m:
            yield Quarantined(file_id, "file name is not <imgdir>_<imgid>.json (lowercase letters and digits)")
            return
        try:
            data = json.loads((self.src / ANNOTATIONS / folder / name).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            yield Quarantined(file_id, f"unreadable JSON ({exc})")
            return
        problem = _format_problem(data)
        if problem:
            yield Quarantined(file_id, f"not the CODA-LM per-image format: {problem}")
            return
        imgdir, imgid = m.groups()
        image_path = f"{imgdir}/images/{imgid}.jpg"
        blob, reason = read_image(self.src, image_path)
        records = self._questions(file_id, data)
        if reason:
            yield from (Quarantined(q["record_id"], reason) for q in records)
            return
        base = self._base(unit, folder, name, imgdir, imgid, image_path, blob)
        for q in records:
            yield self._record(unit, base, q, blob)

    @staticmethod
    def _questions(file_id: str, data: dict) -> list[dict]:
        """The file's questions in order: general perception, driving suggestion, regions."""
        general = data["general_perception"]
        items = {k: general.get(k, []) for k in PERCEPTION_LISTS}
        out = [{"record_id": f"{file_id}/general_perception", "task": "general_perception",
                "suffix": "general_perception", "answer": general[SUMMARY], "meta": {"perception_items": items}},
               {"record_id": f"{file_id}/driving_suggestion", "task": "driving_suggestion",
                "suffix": "driving_suggestion", "answer": data["driving_suggestion"], "meta": {}}]
        for key, region in data.get("region_perception", {}).items():
            out.append({"record_id": f"{file_id}/region_{key}", "task": "regional_perception",
                        "suffix": f"region_{key}", "region": key, "value": region})
        return out

    def _base(self, unit: Unit, folder: str, name: str, imgdir: str, imgid: str, image_path: str,
              blob: ImageBlob) -> dict:
        return {
            "schema": "sample/1", "dataset": self.name, "split": unit.split,
            "scene_id": f"coda:{imgdir}/{imgid}", "frame_id": f"coda:{imgdir}/{imgid}", "layout": "single_image",
            "media": [{"member": f"img0.{blob.format}", "camera": canonical(self.cameras, "front", self.name),
                       "source_camera": "front", "time_offset_s": 0.0, "width": blob.width, "height": blob.height}],
            "meta": {"codalm_folder": folder, "annotation_file": f"{ANNOTATIONS}/{folder}/{name}",
                     "image": image_path},
        }

    def _record(self, unit: Unit, base: dict, q: dict, blob: ImageBlob) -> Record | Quarantined:
        stem = base["meta"]["annotation_file"].rsplit("/", 1)[1][:-5]
        sample = {**base, "id": f"{self.name}-{unit.split}-{stem}-{q['suffix']}", "task": f"vqa.{q['task']}",
                  "media": [dict(m) for m in base["media"]], "meta": dict(base["meta"])}
        if q["task"] == "regional_perception":
            reason = self._region(sample, q, blob)
            if reason:
                return Quarantined(q["record_id"], reason)
        else:
            question = GENERAL_QUESTION if q["task"] == "general_perception" else SUGGESTION_QUESTION
            sample["conversations"] = [{"role": "user", "content": question},
                                       {"role": "assistant", "content": q["answer"]}]
            sample["meta"].update(q["meta"])
        answer = sample["conversations"][1]["content"]
        if not answer.strip() and unit.split != "test":
            return Quarantined(q["record_id"], f"empty answer text in a {unit.split} split")
        sample["meta"]["has_answer"] = bool(answer.strip())
        return Record(sample, [blob.data])

    @staticmethod
    def _region(sample: dict, q: dict, blob: ImageBlob) -> str | None:
        """Fill a regional-perception sample in place; returns a reason when the region is bad."""
        region, key = q["value"], q["region"]
        if not REGION_RE.match(key):
            return f"region key {key!r} is not a number"
        if not isinstance(region, dict) or not isinstance(region.get(SUMMARY), str):
            return f"no {SUMMARY!r} string (region {key})"
        if not isinstance(region.get("category_name"), str) or not region["category_name"]:
            return f"no category_name (region {key})"
        xyxy, reason = region_box(region.get("box"), blob.width, blob.height)
        if reason:
            return f"{reason} (region {key})"
        sample["conversations"] = [{"role": "user", "content": region_question(xyxy, blob.width, blob.height)},
                                   {"role": "assistant", "content": region[SUMMARY]}]
        sample["objects"] = [{"category": region["category_name"], "region": key,
                              "box_2d": [{"camera": "front", "xyxy": xyxy}]}]
        sample["meta"].update({"region": key, "category_name": region["category_name"], "box_xywh": region["box"]})
        return None
