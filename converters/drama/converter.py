"""DRAMA (Honda Research Institute): driving risk, the important object's box, caption and suggestion.

Source (data needs a request form; schema from loaders that use it, reference datasets.md
section 12, [secondary]): `integrated_output_v2.json`, a list of per-frame annotations with
`s3_fileUrl` (the frame image, `https://s3-us-west-2.amazonaws.com/hrius.scaleapi/data/drama/
combined/<clip>/.../frame_<n>.png`), `s3_instructionReference` (the clip video), `Risk`
("Yes"/"No"), `Caption` ("N/A" when none), `Intention of Ego-vehicle`, `Suggestions (to the
ego car)` and `geometry` (4 corner points `[x, y]`; corners 0 and 2 are the box corners;
empty when there is no object). Loaders map each URL to a local copy by replacing everything
up to `/data/drama/` with the local data root: `--drama-image-root` (default: `--src`, the
folder holding the JSON and `combined/`).

A record is one annotation row, converted to one single-image sample (camera `front`, task
`caption.risk`) whose conversation asks, in turn, for the risk, the important object
(caption), the ego vehicle's intention and the suggestion, each only when the row has it;
the box becomes `objects[0].box_2d` on the front camera (clipped to the image; the raw
`geometry` stays in meta). Every source field is kept under `meta.source`. DRAMA ships no
split (it is a zero-shot benchmark in RoboTron-Drive): `--drama-split` puts every record in
train, val or test (default test), or `by_clip` splits 70/15/15 by a hash of the clip, so no
clip spans two splits. Work unit: up to 256 rows of one split.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator
from urllib.parse import urlparse

from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.media import read_image
from dataengine.schema import SPLITS

ANNOTATIONS = "integrated_output_v2.json"
URL_MARK = "/data/drama/"
ROWS_PER_UNIT = 256
SPLIT_MODES = (*SPLITS, "by_clip")
NONE_TEXTS = ("", "n/a", "na", "none")
UNSAFE = re.compile(r"[^a-z0-9_-]+")
QUESTIONS = {
    "risk": "Is there any risk to the ego vehicle in this scene?",
    "caption": "What is the most important object for the ego vehicle here, and why?",
    "intention": "What is the ego vehicle doing?",
    "suggestion": "What should the ego vehicle do?",
}
FIELDS = {"caption": "Caption", "intention": "Intention of Ego-vehicle", "suggestion": "Suggestions (to the ego car)"}


@dataclass(frozen=True)
class DramaOptions:
    drama_image_root: str = ""
    """Local folder that replaces each image URL up to /data/drama/ (it holds combined/);
    default --src."""
    drama_split: str = "test"
    """train, val or test: the split of every record; by_clip: 70/15/15 by a hash of the clip."""


def url_relpath(url) -> str | None:
    """`https://.../data/drama/combined/a/b.png` -> `combined/a/b.png` (None without /data/drama/)."""
    if not isinstance(url, str):
        return None
    path = urlparse(url).path
    if URL_MARK not in path:
        return None
    rel = path.split(URL_MARK, 1)[1].strip("/")
    return rel or None


def clip_of(rel: str) -> str:
    """The clip folder: the first folder under combined/ (else the first folder)."""
    parts = PurePosixPath(rel).parts
    parts = parts[1:] if parts[0] == "combined" and len(parts) > 2 else parts
    return parts[0]


def sample_key(rel: str) -> str:
    """`combined/2020-0127-132751/000786/frame_000786.png` -> `drama-2020-0127-132751-000786-frame_000786`."""
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    parts = parts[1:] if parts[0] == "combined" and len(parts) > 1 else parts
    return "drama-" + "-".join(UNSAFE.sub("_", p.lower()) for p in parts)


def split_by_clip(clip: str) -> str:
    bucket = int(hashlib.sha1(clip.encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "val" if bucket < 85 else "test"


def text_field(row: dict, field: str) -> str | None:
    value = row.get(field)
    return value.strip() if isinstance(value, str) and value.strip().lower() not in NONE_TEXTS else None


def box_from_geometry(geometry, width: int, height: int) -> tuple[list[float] | None, str | None]:
    """xyxy from corners 0 and 2 (numbers or numeric strings), clipped to the image; None for
    an empty geometry; or a reason it is unusable."""
    if geometry in (None, []):
        return None, None
    try:
        (x0, y0), (x1, y1) = (tuple(float(v) for v in geometry[k]) for k in (0, 2))
    except (TypeError, ValueError, IndexError, KeyError):
        return None, f"geometry {str(geometry)[:80]} is not 4 corner points [x, y]"
    if len(geometry) != 4 or not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None, f"geometry {str(geometry)[:80]} is not 4 finite corner points"
    xyxy = [min(max(min(x0, x1), 0.0), width), min(max(min(y0, y1), 0.0), height),
            min(max(max(x0, x1), 0.0), width), min(max(max(y0, y1), 0.0), height)]
    if xyxy[2] <= xyxy[0] or xyxy[3] <= xyxy[1]:
        return None, f"geometry box {[x0, y0, x1, y1]} has no area inside the {width}x{height} image"
    return [round(v, 2) + 0.0 for v in xyxy], None


@register
class DramaConverter(Converter):
    """DRAMA driving risk: risk, important-object box, caption, intention and suggestion per frame."""

    name = "drama"
    version = "1.0"
    options_type = DramaOptions
    cameras = {"front": "front"}

    @property
    def _image_root(self) -> Path:
        return Path(self.options.drama_image_root) if self.options.drama_image_root else self.src

    def _rows(self) -> list:
        try:
            rows = json.loads((self.src / ANNOTATIONS).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{self.src / ANNOTATIONS} is not valid JSON ({exc})") from None
        if not isinstance(rows, list) or not any(isinstance(r, dict) and "s3_fileUrl" in r for r in rows):
            raise UsageError(f"{self.src / ANNOTATIONS} is not DRAMA's annotation list (no s3_fileUrl rows)")
        return rows

    def check_source(self) -> None:
        if self.options.drama_split not in SPLIT_MODES:
            raise UsageError(f"--drama-split {self.options.drama_split!r}: use one of {', '.join(SPLIT_MODES)}")
        if not (self.src / ANNOTATIONS).is_file():
            raise UsageError(f"{self.src} is not a DRAMA root: no {ANNOTATIONS}")
        if not self._image_root.is_dir():
            raise UsageError(f"--drama-image-root {self._image_root} is not a directory")
        self._rows()

    def units(self) -> list[Unit]:
        """Rows per split in file order; a row whose key repeats an earlier row's is marked."""
        by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
        first: dict[str, int] = {}
        for i, row in enumerate(self._rows()):
            rel = url_relpath(row.get("s3_fileUrl")) if isinstance(row, dict) else None
            key = sample_key(rel) if rel else None
            split = self.options.drama_split
            if split == "by_clip":
                split = split_by_clip(clip_of(rel)) if rel else "test"
            by_split[split].append({"index": i, "row": row, "duplicate_of": first.get(key) if key else None})
            if key and key not in first:
                first[key] = i
        units = []
        for split, rows in by_split.items():
            for j in range(0, len(rows), ROWS_PER_UNIT):
                units.append(Unit(f"{split}-{j // ROWS_PER_UNIT:05d}", split, {"rows": rows[j:j + ROWS_PER_UNIT]}))
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        for entry in unit.payload["rows"]:
            yield self._convert_row(unit, entry)

    def _convert_row(self, unit: Unit, entry: dict) -> Record | Quarantined:
        row, index = entry["row"], entry["index"]
        rel = url_relpath(row.get("s3_fileUrl")) if isinstance(row, dict) else None
        record_id = rel or f"row-{index}"
        if not isinstance(row, dict):
            return Quarantined(record_id, "annotation row is not an object")
        if rel is None:
            return Quarantined(record_id, f"s3_fileUrl {str(row.get('s3_fileUrl'))[:100]!r} has no {URL_MARK} path")
        if entry["duplicate_of"] is not None:
            return Quarantined(record_id, f"duplicate annotation of the same frame "
                                          f"(first at row {entry['duplicate_of']})")
        risk = row.get("Risk")
        if risk not in ("Yes", "No"):
            return Quarantined(record_id, f"Risk {risk!r} is not 'Yes' or 'No'")
        blob, reason = read_image(self._image_root, rel)
        if reason:
            return Quarantined(record_id, reason)
        xyxy, reason = box_from_geometry(row.get("geometry"), blob.width, blob.height)
        if reason:
            return Quarantined(record_id, reason)
        sample = self._sample(unit, index, row, rel, xyxy)
        sample["media"] = [{"member": f"img0.{blob.format}", "camera": canonical(self.cameras, "front", self.name),
                            "source_camera": "front", "time_offset_s": 0.0, "width": blob.width,
                            "height": blob.height}]
        return Record(sample, [blob.data])

    def _sample(self, unit: Unit, index: int, row: dict, rel: str, xyxy: list[float] | None) -> dict:
        texts = {name: text_field(row, field) for name, field in FIELDS.items()}
        turns = [{"role": "user", "content": QUESTIONS["risk"]}, {"role": "assistant", "content": f"{row['Risk']}."}]
        for name in ("caption", "intention", "suggestion"):
            if texts[name]:
                turns += [{"role": "user", "content": QUESTIONS[name]}, {"role": "assistant", "content": texts[name]}]
        sample = {
            "schema": "sample/1", "id": sample_key(rel), "dataset": self.name, "split": unit.split,
            "task": "caption.risk", "scene_id": f"drama:{clip_of(rel)}",
            "frame_id": f"drama:{PurePosixPath(rel).with_suffix('')}", "layout": "single_image",
            "conversations": turns,
            "meta": {"risk": row["Risk"] == "Yes", **texts, "image_path": rel, "row": index,
                     "geometry": row.get("geometry"), "source": row},
        }
        if xyxy is not None:
            sample["objects"] = [{"category": "important_object", "box_2d": [{"camera": "front", "xyxy": xyxy}]}]
        return sample
