"""Processed BDD-X (ADAPT / RAG-Driver / DriveMM): one clip per annotated segment, with
RAG-Driver's three-question conversation, as video samples with DriveMM's frames.

Source root (`--src`): a BDD-X root (the raw CSV is needed, see below) holding
  processed/conversation_bddx_eval_v1.json   RAG-Driver's test conversations (2,123 clips)
  processed/BDDX_Test_coco_{action,justification}.json, BDDX_Test_control_signal.json
                                             evaluation references (optional)
  processed/frames/**/testing_<video>_<clip>_<k>.png   DriveMM's frames (or --bddx-frames-dir)
(reference datasets.md section 4.2). Each item names its clip `BDDX_Test/video/<video>_<clip>.mp4`.

The processed files carry no times, so each clip is matched to its raw segment: among
the CSV segments of the same video with the same action and justification text, clips in
clip order take segments in CSV order. A clip whose segment the raw converter rejects
(e.g. end before start; the processed release kept two such) is quarantined with that
reason. The match gives `frame_id` (the same
`bddx:<video>@<start>-<end>` as the raw converter's) and the frame times: DriveMM
extracted `bddx_clip_frames` frames evenly over the clip, so frame k sits about
k * (end - start) / bddx_clip_frames seconds into it (the clip's exact cut is not
published; offsets are approximate). `time_offset_s` is relative to the last frame used.
Work unit: one video's clips. Split: test (the file is RAG-Driver's test set).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from converters.bddx.table import CSV_NAME, Segment, parse_segment, read_rows
from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.media import read_image

CONVERSATION = "processed/conversation_bddx_eval_v1.json"
COCO = {"action": "processed/BDDX_Test_coco_action.json",
        "justification": "processed/BDDX_Test_coco_justification.json"}
CONTROL = "processed/BDDX_Test_control_signal.json"
CLIP_RE = re.compile(r"(?:^|/)([0-9A-Za-z]+-[0-9A-Za-z]+)_(\d+)\.mp4$")
FRAME_RE = re.compile(r"^(?:training|validation|testing)_([^_]+)_(\d+)_(\d+)\.(?:png|jpe?g)$")
NUMBER = r"-?\d+(?:\.\d+)?"
SIGNAL_RE = re.compile(rf"(Speed|Curvature|Acceleration|Course): \[((?:{NUMBER})(?:, {NUMBER})*)\]")
ROLES = {"human": "user", "gpt": "assistant"}
LEADING_PLACEHOLDER = "<video>\n"


@dataclass(frozen=True)
class BddxProcessedOptions:
    bddx_frames_dir: str = ""
    """Folder of DriveMM frames `testing_<video>_<clip>_<k>.png`, any depth (default <src>/processed/frames)."""
    bddx_frame_indices: str = "0,3,7,11,15"
    """Which of a clip's frames form the sample, in time order (DriveMM's demo uses 0,3,7,11,15)."""
    bddx_clip_frames: int = 16
    """Frames DriveMM extracted per clip, evenly over it; sets the frame spacing."""


def parse_indices(text: str, clip_frames: int) -> list[int]:
    try:
        indices = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--bddx-frame-indices: {text!r} is not a comma-separated list of integers") from None
    if not indices or indices != sorted(set(indices)) or indices[0] < 0 or indices[-1] >= clip_frames:
        raise UsageError(f"--bddx-frame-indices: {text!r} must be increasing frame numbers in "
                         f"0..{clip_frames - 1} (--bddx-clip-frames {clip_frames})")
    return indices


def item_problem(item: Any) -> str | None:
    """Why an item is not RAG-Driver's format (id, clip path, human/gpt turns), or None."""
    if not isinstance(item, dict):
        return "malformed item: not an object"
    for key in ("id", "video", "conversations"):
        if key not in item:
            return f"malformed item: missing key {key!r}"
    if not CLIP_RE.search(str(item["video"])):
        return f"malformed item: video {item['video']!r} is not '<video id>_<clip>.mp4'"
    turns = item["conversations"]
    if (not isinstance(turns, list) or len(turns) < 4 or any(
            not isinstance(t, dict) or t.get("from") != ("human", "gpt")[i % 2] or not isinstance(t.get("value"), str)
            for i, t in enumerate(turns))):
        return "malformed item: conversations must alternate human/gpt turns, at least 4, with string values"
    rest = turns[0]["value"].removeprefix(LEADING_PLACEHOLDER)
    if any("<video>" in t or "<image>" in t for t in [rest] + [t["value"] for t in turns[1:]]):
        return "malformed item: an image placeholder inside the text"
    return None


def segments_by_video(src: Path) -> dict[str, list[tuple[int, int, tuple[str, ...], Segment | str]]]:
    """video id -> (csv row, slot, raw fields, Segment or why it is malformed), in CSV order."""
    out: dict[str, list] = {}
    for row in read_rows(src / CSV_NAME):
        for slot, fields in row.slots:
            out.setdefault(row.video, []).append((row.row, slot, fields, parse_segment(slot, fields)))
    return out


def match_segments(clips: list[dict], segments: list) -> None:
    """Set each clip's `segment` to the first unused CSV slot with its action and justification;
    a slot the raw converter rejects keeps its reason as `problem`."""
    used: set[int] = set()
    for clip in sorted(clips, key=lambda c: c["clip"]):
        for n, (row, slot, fields, seg) in enumerate(segments):
            if n not in used and tuple(fields[2:]) == (clip["action"], clip["justification"]):
                used.add(n)
                clip["segment"] = ({"csv_row": row, "slot": slot, "start_s": seg.start, "end_s": seg.end}
                                   if isinstance(seg, Segment) else {"csv_row": row, "slot": slot, "problem": seg})
                break


def index_frames(root: Path) -> dict[tuple[str, int, int], str]:
    """(video, clip, k) -> path relative to `root` of every DriveMM frame under it."""
    found: dict[tuple[str, int, int], str] = {}
    for path in sorted(root.rglob("*")):
        m = FRAME_RE.match(path.name)
        if m and path.is_file():
            found.setdefault((m.group(1), int(m.group(2)), int(m.group(3))), path.relative_to(root).as_posix())
    return found


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def load_references(src: Path) -> tuple[dict[str, dict[str, list[str]]], dict[str, dict]]:
    """Per clip id: COCO caption references by kind, and the control signal (files optional)."""
    refs: dict[str, dict[str, list[str]]] = {}
    for kind, name in COCO.items():
        if not (src / name).is_file():
            continue
        coco = _load_json(src / name)
        anns = coco.get("annotations") if isinstance(coco, dict) else None
        if not isinstance(anns, list) or not all(isinstance(a, dict) and {"image_id", "caption"} <= a.keys()
                                                 for a in anns):
            raise UsageError(f"{src / name}: expected COCO captions, annotations[] with image_id and caption")
        for ann in anns:
            refs.setdefault(str(ann["image_id"]), {}).setdefault(kind, []).append(ann["caption"])
    control = _load_json(src / CONTROL) if (src / CONTROL).is_file() else {}
    if not isinstance(control, dict):
        raise UsageError(f"{src / CONTROL}: expected an object mapping clip ids to control signals")
    return refs, {str(k): v for k, v in control.items()}


@register
class BddxProcessedConverter(Converter):
    """Processed BDD-X test clips (RAG-Driver conversations, DriveMM frames) with eval references."""

    name = "bddx_processed"
    version = "1.0"
    options_type = BddxProcessedOptions
    cameras = {"front": "front"}

    @property
    def frames_dir(self) -> Path:
        return Path(self.options.bddx_frames_dir) if self.options.bddx_frames_dir else self.src / "processed/frames"

    def check_source(self) -> None:
        parse_indices(self.options.bddx_frame_indices, self.options.bddx_clip_frames)
        missing = [n for n in (CSV_NAME, CONVERSATION) if not (self.src / n).is_file()]
        if missing:
            raise UsageError(f"{self.src}: not a processed BDD-X root (missing {', '.join(missing)})")
        if not self.frames_dir.is_dir():
            raise UsageError(f"{self.frames_dir}: no frames folder (set --bddx-frames-dir)")

    def units(self) -> list[Unit]:
        items = _load_json(self.src / CONVERSATION)
        if not isinstance(items, list):
            raise UsageError(f"{self.src / CONVERSATION}: expected a list of conversation items")
        segments = segments_by_video(self.src)
        refs, control = load_references(self.src)
        frames = index_frames(self.frames_dir)
        indices = parse_indices(self.options.bddx_frame_indices, self.options.bddx_clip_frames)
        by_video: dict[str, list[dict]] = {}
        seen: set[str] = set()
        for n, item in enumerate(items):
            clip = self._clip(n, item, seen, frames, indices)
            clip.update(references=refs.get(clip["id"], {}), control_signal=control.get(clip["id"]))
            by_video.setdefault(clip["video"] or f"item{n}", []).append(clip)
        for video, clips in by_video.items():
            match_segments([c for c in clips if not c["problem"]], segments.get(video, []))
        return [Unit(id=re.sub(r"[^A-Za-z0-9_-]", "_", video), split="test", payload=clips)
                for video, clips in by_video.items()]

    @staticmethod
    def _clip(n: int, item: Any, seen: set[str], frames: dict, indices: list[int]) -> dict:
        """The payload entry of one item: what the worker needs, or the item's problem."""
        problem = item_problem(item)
        if problem:
            rid = str(item.get("id", f"#{n}")) if isinstance(item, dict) else f"#{n}"
            return {"id": rid, "record_id": f"item{n}", "video": "", "problem": problem}
        video, clip = CLIP_RE.search(item["video"]).groups()
        key = f"{video.lower()}_{int(clip)}"  # what the sample key is made of
        if key in seen:
            problem = f"duplicate clip: {video}_{clip} appears earlier in the file"
        seen.add(key)
        turns = item["conversations"]
        return {"id": str(item["id"]), "record_id": f"item{n}", "video": video, "clip": int(clip),
                "source_video": item["video"], "problem": problem, "segment": None,
                "action": turns[1]["value"].strip(), "justification": turns[3]["value"].strip(),
                "conversations": [{"role": ROLES[t["from"]], "content": t["value"]} for t in turns],
                "frame_indices": indices, "frames": [frames.get((video, int(clip), k)) for k in indices]}

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        for clip in unit.payload:
            reason = clip["problem"] or self._unusable(clip)
            if reason:
                yield Quarantined(clip["record_id"], reason)
                continue
            blobs = [read_image(self.frames_dir, rel) for rel in clip["frames"]]
            bad = next((why for _, why in blobs if why), None)
            if bad:
                yield Quarantined(clip["record_id"], f"bad frame: {bad}")
                continue
            yield Record(self._sample(unit, clip, [b for b, _ in blobs]), [b.data for b, _ in blobs])

    @staticmethod
    def _unusable(clip: dict) -> str | None:
        seg = clip["segment"]
        if seg is None:
            return (f"no raw segment: no unused segment of video {clip['video']} in {CSV_NAME} has this "
                    f"clip's action and justification")
        if "problem" in seg:
            return f"malformed raw segment: row {seg['csv_row']} slot {seg['slot']}: {seg['problem']}"
        missing = [k for k, rel in zip(clip["frame_indices"], clip["frames"]) if rel is None]
        if missing:
            return (f"missing frames: no testing_{clip['video']}_{clip['clip']}_<k> image for k in "
                    f"{', '.join(map(str, missing))}")
        return None

    def _sample(self, unit: Unit, clip: dict, blobs: list) -> dict:
        seg = clip["segment"]
        step = max(seg["end_s"] - seg["start_s"], 1) / self.options.bddx_clip_frames
        last = clip["frame_indices"][-1]
        front = canonical(self.cameras, "front", self.name)
        media = [{"member": f"img{i}.{b.format}", "camera": front, "source_camera": "front",
                  "time_offset_s": round((k - last) * step, 6) + 0.0, "width": b.width, "height": b.height}
                 for i, (k, b) in enumerate(zip(clip["frame_indices"], blobs))]
        turns = [dict(t) for t in clip["conversations"]]
        turns[0]["content"] = turns[0]["content"].removeprefix(LEADING_PLACEHOLDER)
        return {
            "schema": "sample/1", "id": f"bddx_processed-{clip['video'].lower()}-{clip['clip']}",
            "dataset": "bddx_processed", "split": unit.split, "task": "caption.action_justification_control",
            "scene_id": f"bddx:{clip['video']}", "frame_id": f"bddx:{clip['video']}@{seg['start_s']}-{seg['end_s']}",
            "layout": "video", "media": media, "conversations": turns,
            "meta": {"clip_id": clip["id"], "clip_index": clip["clip"], "source_video": clip["source_video"],
                     "video": clip["video"], "segment": seg, "action": clip["action"],
                     "justification": clip["justification"], "references": clip["references"],
                     "control_signal": clip["control_signal"], "control_history": control_history(turns[0]["content"]),
                     "frame_indices": clip["frame_indices"], "frame_files": clip["frames"]},
        }


def control_history(question: str) -> dict[str, list[float]]:
    """The Speed/Curvature/Acceleration/Course lists RAG-Driver writes into the first question."""
    return {name.lower(): [float(v) for v in values.split(",") if v.strip()]
            for name, values in SIGNAL_RE.findall(question)}
