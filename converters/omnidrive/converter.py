"""OmniDrive-nuScenes: scene descriptions, driving actions, free QA, counterfactual and
planning answers on nuScenes key frames.

Source schema (`NVlabs/OmniDrive` @ 807c86a: `docs/setup.md`, `LoadAnnoatationVQA` in
`projects/mmdet3d_plugin/datasets/pipelines/transform_3d.py`, `data_gen/*.py`; reference
datasets.md section 9): inside OmniDrive's `data/nuscenes/` (the `--src`), one JSON file
per nuScenes sample token and split:
  keywords/<split>/<token>.json  a JSON string: the answer to "Please shortly describe your driving action."
  desc/<split>/<token>.json      {"description", "action"}: the description answers a request to describe the scene
  conv/<split>/<token>.json      [{"question", "answer"}, ...]: free conversation
  vqa/<split>/<token>.json       [{"question", "answer"}, ...]: traffic elements, next action, counterfactuals
OmniDrive's loader prefixes the first user turn with "You are driving in {location}. ";
so do we (the location is the nuScenes log's). Trajectories are written
`[PT, (x1, y1), ...]` in the ego frame (x forward, y left, metres, 0.5 s apart), numbers
signed as OmniDrive prints them (`+1.23`).

Tasks: keywords `caption.action`, desc `caption.scene`, conv `vqa.conversation`, vqa
`vqa.reasoning`; a question holding a `[PT, ...]` trajectory is `vqa.counterfactual`
(its points in `meta.question_trajectory`); a planning answer ("Here is the planning
trajectory [PT, ...].", or any answer to the planning question) must hold 6 points,
which become `trajectory`, task `planning.trajectory`. OmniDrive trains planning on
`gt_planning` from its info pickles, which are not read here (loading a pickle runs code);
the same frames' planning ground truth comes from the `nuscenes` converter.

A record is one keywords file, one desc file, or one QA pair; key
`omnidrive-<token>-<kind>[-<index>]`. Images: the 6 cameras of the key frame through
`--nuscenes-root` (OmniDrive keeps both in one folder, so it is usually `--src` itself).
Work unit: one nuScenes scene per split. What a key frame's records share (cameras, ids,
scene name and location) is each record's `context`, stored once per frame
(`dataengine/context.py`); a desc file field named like one of those meta keys, or like one
the converter writes (`source_file`, `qa_index`, `question_trajectory`), would be ambiguous
and is quarantined.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from converters.nuscenes.media import keyframe_media
from converters.nuscenes.tables import CAMERAS, NuScenesIndex, require_root
from converters.nuscenes.units import is_unresolved, scene_units
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.media import resolve_under

KINDS = ("keywords", "desc", "conv", "vqa")
SPLITS = ("train", "val")
KEYWORDS_QUESTION = "Please shortly describe your driving action."
DESC_QUESTION = "Please describe the current driving conditions based on the images provided."
PLANNING_QUESTION = "Please provide the planning trajectory for the ego car without reasons."
PLANNING_ANSWER = "Here is the planning trajectory"
PLANNING_POINTS, PLANNING_DT = 6, 0.5
TASKS = {"keywords": "caption.action", "desc": "caption.scene", "conv": "vqa.conversation", "vqa": "vqa.reasoning"}
_NUM = r"[+-]?\d+(?:\.\d+)?"
PT_RE = re.compile(r"\[PT,((?:\s*\(\s*" + _NUM + r"\s*,\s*" + _NUM + r"\s*\)\s*,?)*)\s*\]")
_PAIR_RE = re.compile(r"\(\s*(" + _NUM + r")\s*,\s*(" + _NUM + r")\s*\)")
FRAME_META = ("sample_token", "scene_name", "location")  # the context's meta keys
RESERVED_META = frozenset(FRAME_META + ("source_file", "qa_index", "question_trajectory"))


@dataclass(frozen=True)
class OmniDriveOptions:
    nuscenes_root: str = ""
    """The nuScenes dataroot (v1.0-*/ tables, samples/) of the sample tokens. Required."""


def pt_points(text: str) -> list[list[float]] | None:
    """The points of the first `[PT, (x, y), ...]` in a text (signs as OmniDrive prints them),
    or None when there is none."""
    match = PT_RE.search(text)
    if match is None:
        return None
    return [[float(x), float(y)] for x, y in _PAIR_RE.findall(match.group(1))]


def qa_task(kind: str, question: str, answer: str) -> tuple[str, dict, str | None]:
    """(task, extra sample fields, problem) of one QA pair of a conv or vqa file."""
    planned = pt_points(answer)
    if answer.lstrip().startswith(PLANNING_ANSWER) or question.strip() == PLANNING_QUESTION:
        if planned is None or len(planned) != PLANNING_POINTS:
            n = 0 if planned is None else len(planned)
            return "", {}, f"planning answer has {n} [PT, ...] points, OmniDrive plans {PLANNING_POINTS}"
        return "planning.trajectory", {"trajectory": {"frame": "ego_xfwd_yleft", "dt_s": PLANNING_DT, "xy": planned,
                                                      "valid": [True] * PLANNING_POINTS}}, None
    asked = pt_points(question)
    if asked is not None:
        return "vqa.counterfactual", {"meta": {"question_trajectory": asked}}, None
    return TASKS[kind], {}, None


def _items_of(kind: str, base_id: str, content) -> list[dict]:
    """The records of one parsed file: {id, kind, index, question, answer, extra} or {id, problem}."""
    if kind == "keywords":
        if not isinstance(content, str) or not content.strip():
            return [{"id": base_id, "problem": "keywords file is not a non-empty JSON string"}]
        return [{"id": base_id, "kind": kind, "question": KEYWORDS_QUESTION, "answer": content}]
    if kind == "desc":
        if not isinstance(content, dict) or not isinstance(content.get("description"), str) \
                or not content["description"].strip():
            return [{"id": base_id, "problem": "desc file has no description string"}]
        clash = sorted(set(content) & RESERVED_META)
        if clash:
            return [{"id": base_id, "problem": f"desc file field {clash[0]!r} is a meta key the converter writes"}]
        return [{"id": base_id, "kind": kind, "question": DESC_QUESTION, "answer": content["description"],
                 "extra": {k: v for k, v in content.items() if k != "description"}}]
    if not isinstance(content, list):
        return [{"id": base_id, "problem": f"{kind} file is not a list of question/answer pairs"}]
    items, seen = [], {}  # (question, answer) -> the first pair's id: a repeated pair is not a second sample
    for i, pair in enumerate(content):
        item_id = f"{base_id}/{i}"
        if not isinstance(pair, dict) or not all(isinstance(pair.get(k), str) and pair[k].strip()
                                                 for k in ("question", "answer")):
            items.append({"id": item_id, "problem": "QA pair has no question and answer strings"})
        elif seen.setdefault((pair["question"], pair["answer"]), item_id) != item_id:
            items.append({"id": item_id, "problem": f"duplicate of QA pair {seen[(pair['question'], pair['answer'])]}"})
        else:
            items.append({"id": item_id, "kind": kind, "index": i, "question": pair["question"],
                          "answer": pair["answer"]})
    return items


@register
class OmniDriveConverter(Converter):
    """OmniDrive-nuScenes: captions, QA, counterfactuals and planning on 6-camera key frames."""

    name = "omnidrive"
    version = "1.1"  # 1.1: a key frame's shared fields as the records' context
    options_type = OmniDriveOptions
    cameras = CAMERAS

    def check_source(self) -> None:
        if not any((self.src / kind / split).is_dir() for kind in KINDS for split in SPLITS):
            raise UsageError(f"{self.src} is not an OmniDrive-nuScenes root: no {{desc,conv,vqa,keywords}}/"
                             f"{{train,val}}/ folders (OmniDrive keeps them in data/nuscenes/)")
        require_root(self.options.nuscenes_root, self.name)

    def units(self) -> list[Unit]:
        """One unit per scene and split; the files are read by the workers."""
        index = NuScenesIndex(Path(self.options.nuscenes_root))
        units = []
        for split in SPLITS:
            files: dict[str, dict[str, str]] = {}
            for kind in KINDS:
                for path in sorted((self.src / kind / split).glob("*.json")):
                    files.setdefault(path.stem, {})[kind] = f"{kind}/{split}/{path.name}"
            records = [{"record_id": token, "sample_tokens": [token], "files": by_kind}
                       for token, by_kind in sorted(files.items())]
            units += scene_units(index, split, records)
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        for record in unit.payload["records"]:
            items = self._items(record)
            if is_unresolved(unit):
                yield from (Quarantined(it["id"], it.get("problem") or record["problem"]) for it in items)
                continue
            frame = unit.payload["frames"][record["sample_tokens"][0]]
            media, blobs, reason = keyframe_media(Path(self.options.nuscenes_root), frame, self.name)
            context = None if reason else frame_context(unit.payload["scene"], frame, media)
            for item in items:
                task, extra, problem = (("", {}, reason) if reason else self._task_of(item))
                if problem:
                    yield Quarantined(item["id"], problem)
                else:
                    yield Record(self._sample(unit, frame, item, task, extra), blobs, context)

    @staticmethod
    def _task_of(item: dict) -> tuple[str, dict, str | None]:
        if item.get("problem"):
            return "", {}, item["problem"]
        if item["kind"] in ("conv", "vqa"):
            return qa_task(item["kind"], item["question"], item["answer"])
        return TASKS[item["kind"]], {}, None

    def _items(self, record: dict) -> list[dict]:
        """Every record of a token's files, in KINDS order (a file that does not parse is one)."""
        items = []
        for kind in KINDS:
            if kind not in record["files"]:
                continue
            base_id = f"{record['record_id']}/{kind}"
            path = resolve_under(self.src, record["files"][kind])
            if path is None:
                items.append({"id": base_id, "problem": f"{kind} file escapes the source root"})
                continue
            try:
                content = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                items.append({"id": base_id, "problem": f"{kind} file is not valid JSON ({exc})"})
                continue
            items += _items_of(kind, base_id, content)
        return items

    def _sample(self, unit: Unit, frame: dict, item: dict, task: str, extra: dict) -> dict:
        """The record's own fields; the frame's are its context."""
        location = unit.payload["scene"]["location"] or "an unknown city"
        suffix = item["kind"] if "index" not in item else f"{item['kind']}-{item['index']}"
        return {
            "schema": "sample/1", "id": f"omnidrive-{frame['token']}-{suffix}", "dataset": self.name,
            "split": unit.split, "task": task,
            "conversations": [{"role": "user", "content": f"You are driving in {location}. {item['question']}"},
                              {"role": "assistant", "content": item["answer"]}],
            **{k: v for k, v in extra.items() if k != "meta"},
            "meta": {"source_file": item["kind"], **({"qa_index": item["index"]} if "index" in item else {}),
                     **item.get("extra", {}), **extra.get("meta", {})},
        }


def frame_context(scene: dict, frame: dict, media: list[dict]) -> dict:
    """What every record of a key frame shares, stored once per frame (`dataengine/context.py`):
    ~2.6 KB of a 3.2 KB sample. nuScenes-QA's frames hold the same fields, so the two datasets'
    contexts of one key frame are one entry in a shared root."""
    return {"scene_id": f"nuscenes:{scene['token']}", "frame_id": f"nuscenes:{frame['token']}",
            "layout": "multi_view", "media": media,
            "meta": dict(zip(FRAME_META, (frame["token"], scene["name"], scene["location"])))}
