"""LLaVA-NeXT's training format in: the general-domain stages of a curriculum from real files.

Two source forms share one record format (`LLaVA-VL/LLaVA-NeXT:llava/train/train.py`,
`LazySupervisedDataset`; docs/datasets/llava.md):

- `--src data.json` (a JSON list, or JSON lines) with `--images DIR` (LLaVA-NeXT's
  `--image_folder`): a record has `id`, `conversations` (`{"from": "human"|"gpt", "value"}`
  with one `<image>` per image), and `image` (one path: a single image; a list: several) or
  `video` (one path; frames sampled by PyAV, evenly from first to last as LLaVA-NeXT's
  `np.linspace` sampling does, JPEG-encoded once), or neither (text only). Paths are
  relative to `--images` (`--videos` for videos, default the same folder) and never escape it.
- `--src` a folder or `.parquet` file of an HF dataset with embedded images (LLaVA-OneVision-
  Data's layout: `id`, `image` an HF `Image`, or `images` a list of them, `conversations`),
  read through `datasets` with decoding off, so the stored bytes are the published ones.

A record is one sample: the placeholders are removed from the text (the prompt renderer
places images; `meta.placeholder_turns` keeps which turns held them), every other field of
the record goes to `meta`. Camera `front`: general-domain images have no view, and the
schema's cameras are canonical. Bad records are quarantined with their reason: missing or
broken image, placeholder count mismatch, path escaping the root, bad JSON types, duplicate id.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from converters.bddx.video import VideoError, duration_s, frames_at, sample_times
from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import SchemaError, UsageError
from dataengine.media import read_image, resolve_under
from dataengine.schema import validate_sample

PLACEHOLDER = "<image>"  # LLaVA-NeXT's DEFAULT_IMAGE_TOKEN
SPEAKERS = {"human": "user", "gpt": "assistant"}
RECORDS_PER_UNIT = 500
SPLITS = ("train", "val", "test")
KEY_RE = re.compile(r"[^a-z0-9_-]+")
_FAKE_SHA1 = "0" * 40  # the schema check before sealing: the writer fills the real sha1s


@dataclass(frozen=True)
class LlavaOptions:
    images: str = ""
    """LLaVA-NeXT's --image_folder: the root every `image` path is relative to (JSON sources)."""
    videos: str = ""
    """The root of `video` paths (LLaVA-NeXT's --video_folder); default: --images."""
    video_frames: int = 8
    """Frames sampled per video, evenly from the first to the last."""
    subset: str = ""
    """Name in the sample keys (`llava-<subset>-<id>`); default: the source's file or folder name."""
    target_split: str = "train"
    """The split every record goes to (LLaVA-NeXT files are not split)."""


def source_kind(src: Path) -> str:
    """`json` for a LLaVA JSON file, `parquet` for an HF parquet dataset (a folder or one file)."""
    if src.is_file() and src.suffix in (".json", ".jsonl"):
        return "json"
    if (src.is_file() and src.suffix == ".parquet") or (src.is_dir() and parquet_files(src)):
        return "parquet"
    return ""


def parquet_files(src: Path) -> list[Path]:
    return [src] if src.is_file() else sorted(src.rglob("*.parquet"))


def read_json_records(path: Path) -> list:
    """The records of a JSON list or a JSON-lines file; UsageError when it is neither."""
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise UsageError(f"{path} is not a LLaVA data file: the top level is a {type(data).__name__}, not a list")
    return data


def record_key(subset: str, record_id: str) -> str:
    """`llava-<subset>-<id>` within [a-z0-9_-]; an id that had to change gets a hash of itself."""
    slug = KEY_RE.sub("-", record_id.lower()).strip("-")[:80]
    if slug != record_id:
        slug = f"{slug}-{hashlib.sha1(record_id.encode()).hexdigest()[:8]}"
    return f"llava-{subset}-{slug}"


def parse_conversations(conv, n_placeholders: int) -> tuple[list[dict], list[int], str | None]:
    """(turns, indices of turns that held a placeholder, reason): LLaVA turns to ours."""
    if not isinstance(conv, list) or not conv:
        return [], [], "conversations is not a non-empty list"
    turns, holders, count = [], [], 0
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            return [], [], f"conversations[{i}] is not an object with a string value"
        if turn.get("from") not in SPEAKERS:
            return [], [], f"conversations[{i}].from is {turn.get('from')!r}, not human or gpt"
        value = turn["value"]
        if PLACEHOLDER in value:
            count += value.count(PLACEHOLDER)
            holders.append(i)
            value = value.replace(PLACEHOLDER + "\n", "").replace("\n" + PLACEHOLDER, "").replace(PLACEHOLDER, "")
            value = value.strip()
        turns.append({"role": SPEAKERS[turn["from"]], "content": value})
    if count != n_placeholders:
        return [], [], f"{count} {PLACEHOLDER} placeholders for {n_placeholders} expected"
    return turns, holders, None


@register
class LlavaConverter(Converter):
    """LLaVA-NeXT JSON + image folder, or an HF parquet dataset with embedded images."""

    name = "llava"
    version = "1.0"
    options_type = LlavaOptions
    cameras = {"image": "front"}

    def _subset(self) -> str:
        name = self.options.subset or self.src.stem
        return KEY_RE.sub("-", name.lower()).strip("-") or "data"

    def check_source(self) -> None:
        if not self.src.exists():
            raise UsageError(f"{self.src} does not exist: pass a LLaVA JSON file or an HF parquet dataset")
        kind = source_kind(self.src)
        if not kind:
            raise UsageError(f"{self.src} is neither a LLaVA .json/.jsonl file nor an HF parquet dataset")
        if self.options.target_split not in SPLITS:
            raise UsageError(f"--target-split {self.options.target_split!r} is not one of {', '.join(SPLITS)}")
        if self.options.video_frames < 1:
            raise UsageError("--video-frames must be at least 1")
        if kind == "json":
            if not self.options.images:
                raise UsageError("--images DIR is required with a LLaVA JSON file (LLaVA-NeXT's --image_folder)")
            for flag, root in (("--images", self.options.images), ("--videos", self.options.videos)):
                if root and not Path(root).is_dir():
                    raise UsageError(f"{flag} {root} is not a directory")
            read_json_records(self.src)

    def units(self) -> list[Unit]:
        split, subset = self.options.target_split, self._subset()
        if source_kind(self.src) == "parquet":
            return [Unit(f"{subset}-{i:05d}", split, {"parquet": str(p)})
                    for i, p in enumerate(parquet_files(self.src))]
        records, seen = read_json_records(self.src), set()
        rows = []
        for i, rec in enumerate(records):
            rid = rec.get("id") if isinstance(rec, dict) else None
            rid = str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
            duplicate = rid is not None and rid in seen
            seen.add(rid)
            rows.append({"index": i, "record": rec, "duplicate": duplicate})
        return [Unit(f"{subset}-{n // RECORDS_PER_UNIT:05d}", split, {"rows": rows[n:n + RECORDS_PER_UNIT]})
                for n in range(0, len(rows), RECORDS_PER_UNIT)]

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        if "parquet" in unit.payload:
            from converters.llava.hf_source import parquet_rows

            for index, row, blobs, reason in parquet_rows(Path(unit.payload["parquet"])):
                yield self._convert(unit, index, row, lambda blobs=blobs, reason=reason: (blobs, "image", reason))
            return
        for row in unit.payload["rows"]:
            rec = row["record"]
            if row["duplicate"]:
                yield Quarantined(str(rec["id"]), "duplicate id (an earlier record has it)")
                continue
            yield self._convert(unit, row["index"], rec, lambda rec=rec: self._json_media(rec))

    def _json_media(self, rec: dict) -> tuple[list, str, str | None]:
        """(blobs or frames, kind, reason) of a JSON record's `image` or `video`."""
        if "video" in rec:
            return self._video(rec["video"])
        image = rec.get("image")
        if image is None:
            return [], "image", None
        paths = [image] if isinstance(image, str) else image
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            return [], "image", f"image is {type(image).__name__}, not a path or a list of paths"
        blobs = []
        for path in paths:
            blob, reason = read_image(Path(self.options.images), path)
            if reason:
                return [], "image", reason
            blobs.append(blob)
        return blobs, "image", None

    def _video(self, path) -> tuple[list, str, str | None]:
        if not isinstance(path, str) or not path:
            return [], "video", f"video is {type(path).__name__}, not a path"
        full = resolve_under(Path(self.options.videos or self.options.images), path)
        if full is None:
            return [], "video", f"path {path!r} escapes the video root"
        if not full.is_file():
            return [], "video", f"missing video {path}"
        try:
            times = sample_times(0.0, duration_s(full), self.options.video_frames)
            frames = frames_at(full, times)
        except VideoError as exc:
            return [], "video", f"unreadable video {path} ({exc})"
        return [frames[t] for t in times], "video", None

    def _convert(self, unit: Unit, index: int, rec, media_fn) -> Record | Quarantined:
        if not isinstance(rec, dict):
            return Quarantined(f"#{index}", f"record is a {type(rec).__name__}, not an object")
        rid = rec.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or rid == "":
            return Quarantined(f"#{index}", f"id is {rid!r}, not a string or an integer")
        rid = str(rid)
        if "image" in rec and "video" in rec:
            return Quarantined(rid, "record has both image and video")
        items, kind, reason = media_fn()
        if reason:
            return Quarantined(rid, reason)
        n_placeholders = 1 if kind == "video" and items else len(items)
        turns, holders, reason = parse_conversations(rec.get("conversations"), n_placeholders)
        if reason:
            return Quarantined(rid, reason)
        sample = self._sample(unit, rid, rec, items, kind, turns, holders)
        probe = copy.deepcopy(sample)
        for m in probe["media"]:
            m["sha1"] = _FAKE_SHA1
        try:
            validate_sample(probe)
        except SchemaError as exc:
            return Quarantined(rid, f"not a valid sample ({exc})")
        return Record(sample, [_bytes(it) for it in items])

    def _sample(self, unit: Unit, rid: str, rec: dict, items: list, kind: str, turns: list[dict],
                holders: list[int]) -> dict:
        camera = canonical(self.cameras, "image", self.name)
        media = []
        for i, it in enumerate(items):
            ext = getattr(it, "format", "jpg")
            offset = round(it.time_s - items[-1].time_s, 6) if kind == "video" else 0.0
            media.append({"member": f"img{i}.{ext}", "camera": camera, "source_camera": "image",
                          "time_offset_s": offset, "width": it.width, "height": it.height})
        first = items[0] if items else None
        frame = hashlib.sha1(_bytes(first)).hexdigest() if first else rid
        layout = "video" if kind == "video" else "single_image" if len(items) <= 1 else "multi_view"
        meta = {k: v for k, v in rec.items() if k not in ("id", "conversations")}
        meta.update({"source_id": rid, "placeholder_turns": holders})
        return {"schema": "sample/1", "id": record_key(self._subset(), rid), "dataset": self.name,
                "split": unit.split, "task": "vqa.general", "scene_id": f"llava:{frame}",
                "frame_id": f"llava:{frame}", "layout": layout, "media": media, "conversations": turns,
                "meta": meta}


def _bytes(item) -> bytes:
    """The bytes of an image (`ImageBlob.data`) or a sampled video frame (`Frame.jpeg`)."""
    return item.jpeg if hasattr(item, "jpeg") else item.data
