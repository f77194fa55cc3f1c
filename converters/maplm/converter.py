"""MAPLM-QA v0.1: closed-choice map and road questions on a front photo plus a point-cloud BEV image.

Two source formats (`LLVM-AD/MAPLM` @ b4a8897; reference datasets.md section 7):

- official (`--src` a folder): `problems.json` (frame id -> `{image, qa: [{task, question,
  choices, answer}]}`, `answer` an index into `choices`) and `pid_splits.json` (`{train, val,
  test}` lists of frame ids), beside one folder per frame holding `photo_forward.jpg` and
  `point_cloud_bev.jpg`. The front photo is the frame's `image` path when it has one.
- LLaVA-style QA (`--src` a JSON file such as `baseline/evaluation/maplm_test.json`): a list of
  `{id, image, pointcloud, conversations}` with `{from: human|gpt, value}` turns; closed-choice
  options are inline ("Your potential choice is: A. B. C.") and answers read "The answer is
  X.". Images resolve against `--maplm-image-root` (default: the file's folder); the file's
  split is `--maplm-qa-split` (default test, as maplm_test.json is).

A record is one question of a frame (the LLaVA intro exchange "What are these images from
sensors?", identical in every frame and not scored by MAPLM, is framing, not a record). Each
sample carries the front photo (camera `front`) and the BEV (camera `bev`), `multi_view`.
Evaluation (QNS, FRM, per-question LAN/INT/QLT/SCN accuracy, `run_eval.py`) needs, and
`meta` keeps: `maplm_frame`, `question_type`, `options`, `answer_index` (None where the
source shows no options, e.g. the LLaVA lane count), `answer`. Work unit: up to 100 frames.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.media import read_image
from dataengine.schema import SPLITS

FRAMES_PER_UNIT = 100
CLOSED = "closed choice"
FRAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
CHOICE_MARK = "Your potential choice is:"
ANSWER_PREFIX = "The answer is"
# (question type, question prefix, task): MAPLM's four scored questions and the lane description
QUESTION_TYPES = (
    ("SCN", "What kind of road scene", "vqa.road_scene"),
    ("QLT", "What is the point cloud data quality", "vqa.point_cloud_quality"),
    ("LAN", "How many lanes", "vqa.lane_count"),
    ("INT", "Is there any road cross, intersection or lane change zone", "vqa.intersection"),
    ("DESC", "Describe the lane attribute", "caption.lane_attributes"),
)
OTHER = ("OTHER", "", "vqa.road")
FRONT, BEV = "photo_forward.jpg", "point_cloud_bev.jpg"


@dataclass(frozen=True)
class MAPLMOptions:
    maplm_image_root: str = ""
    """Folder the LLaVA-style file's image paths (`FR2/photo_forward.jpg`) resolve against;
    default the file's own folder. The official layout always reads images under --src."""
    maplm_qa_split: str = "test"
    """Split of a LLaVA-style QA file (maplm_test.json is the test split)."""


def question_type(question: str) -> tuple[str, str]:
    """(MAPLM question code, task) of a question text."""
    for code, prefix, task in QUESTION_TYPES:
        if question.startswith(prefix):
            return code, task
    return OTHER[0], OTHER[2]


def inline_options(question: str) -> list[str] | None:
    """Options written after "Your potential choice is:", split at '. ' (options contain commas,
    never a period inside), each with its final period, as problems.json writes the choices and
    run_eval.py matches them ("...worn." is then not inside "...worn and occluded by vehicle.");
    None when the question shows none."""
    if CHOICE_MARK not in question:
        return None
    tail = question.split(CHOICE_MARK, 1)[1].strip()
    return [o.strip().rstrip(".").strip() + "." for o in tail.split(". ") if o.strip().rstrip(".").strip()]


def answer_text(answer: str) -> str:
    """'The answer is Very clear.' -> 'Very clear'."""
    text = answer.strip()
    if text.startswith(ANSWER_PREFIX):
        text = text[len(ANSWER_PREFIX):].strip()
    return text.rstrip(".").strip()


def match_option(text: str, options: list[str]) -> int | None:
    hits = [i for i, o in enumerate(options) if o.rstrip(".").lower() == text.lower()]
    return hits[0] if len(hits) == 1 else None


def key_suffixes(questions: list[dict]) -> list[str]:
    """A question's key suffix: its type (`scn`, `lan`...) when the frame asks it once, so both
    source formats give the same key; else `q<source index>`."""
    counts = Counter(q["type"] for q in questions)
    return [q["type"].lower() if counts[q["type"]] == 1 and q["type"] != OTHER[0] else f"q{q['index']}"
            for q in questions]


def _unrepeated(good: list[dict], bad: list[Quarantined]) -> tuple[list[dict], list[Quarantined]]:
    """A frame's questions without exact repeats: a question asked again with the same answer
    is the same record twice (MAPLM asks each question once per frame), quarantined."""
    first: dict[tuple, int] = {}
    kept = []
    for q in good:
        same = first.setdefault((q["question"], q["reply"]), q["index"])
        if same == q["index"]:
            kept.append(q)
        else:
            bad.append(Quarantined(q["record_id"], f"duplicate question: identical to question {same} of this frame"))
    return kept, bad


def _with_options(question: str, choices: list[str]) -> str:
    if CHOICE_MARK in question:
        return question
    return f"{question} {CHOICE_MARK} " + " ".join(f"{c.rstrip('.')}." for c in choices)


@register
class MAPLMConverter(Converter):
    """MAPLM-QA closed-choice road questions on a front photo plus the point-cloud BEV image."""

    name = "maplm"
    version = "1.0"
    options_type = MAPLMOptions
    cameras = {"photo_forward": "front", "point_cloud_bev": "bev"}

    @property
    def _llava(self) -> bool:
        return self.src.is_file()

    @property
    def _image_root(self) -> Path:
        if not self._llava:
            return self.src
        return Path(self.options.maplm_image_root) if self.options.maplm_image_root else self.src.parent

    def _load(self, path: Path):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path} is not valid JSON ({exc})") from None

    def _load_frames(self, path: Path) -> tuple[object, Counter]:
        """problems.json, whose frames are the keys of one object: a frame id written twice is
        two records, which `json.loads` would silently merge (the last one winning). Returns
        the object with each frame's first entry, and how often each frame id repeats."""
        objects: list = []

        def pairs_hook(pairs: list) -> dict:
            objects.append(pairs)  # the outermost object is completed last
            return dict(pairs)

        try:
            data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=pairs_hook)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            return data, Counter()
        first: dict = {}
        repeats: Counter = Counter()
        for key, value in objects[-1]:
            if key in first:
                repeats[key] += 1
            else:
                first[key] = value
        return first, repeats

    @cached_property
    def _official(self) -> tuple[dict, dict, Counter]:
        (problems, repeats), splits = self._load_frames(self.src / "problems.json"), \
            self._load(self.src / "pid_splits.json")
        if not isinstance(problems, dict) or not isinstance(splits, dict) or not all(
                isinstance(splits.get(s, []), list) for s in SPLITS):
            raise UsageError(f"{self.src} is not a MAPLM root: problems.json must map frame ids to frames and "
                             f"pid_splits.json hold train/val/test lists")
        return problems, splits, repeats

    def check_source(self) -> None:
        if self.options.maplm_qa_split not in SPLITS:
            raise UsageError(f"--maplm-qa-split {self.options.maplm_qa_split!r}: use one of {', '.join(SPLITS)}")
        if self._llava:
            data = self._load(self.src)
            if not isinstance(data, list) or not any(isinstance(r, dict) and "conversations" in r for r in data):
                raise UsageError(f"{self.src} is not a MAPLM LLaVA-style QA file: no record with conversations")
            if not self._image_root.is_dir():
                raise UsageError(f"--maplm-image-root {self._image_root} is not a directory")
            return
        if not (self.src / "problems.json").is_file() or not (self.src / "pid_splits.json").is_file():
            raise UsageError(f"{self.src} is not a MAPLM root: expected problems.json and pid_splits.json "
                             f"(or pass a LLaVA-style QA file such as maplm_test.json as --src)")
        self._official  # noqa: B018  (parses and checks both files)

    def units(self) -> list[Unit]:
        if self._llava:
            return self._chunk({self.options.maplm_qa_split: self._llava_frames()}, "llava")
        return self._chunk(self._official_frames(), "official")

    def _llava_frames(self) -> list[dict]:
        frames, seen = [], set()
        for i, record in enumerate(self._load(self.src)):
            key = record["id"].lower() if isinstance(record, dict) and isinstance(record.get("id"), str) else None
            frames.append({"index": i, "record": record, "dup": key is not None and key in seen})
            seen.add(key)
        return frames

    def _official_frames(self) -> dict[str, list[dict]]:
        """Frames per split in pid_splits order; a frame listed twice (ids compare lowercased, as
        keys use them) is marked, and frames no split lists are accounted for in train's
        quarantine (they belong to no benchmark split)."""
        problems, splits, repeats = self._official
        by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
        seen: set[str] = set()
        listed = {str(f) for s in SPLITS for f in splits.get(s, [])}
        for split in SPLITS:
            for frame in map(str, splits.get(split, [])):
                dup = frame.lower() in seen
                by_split[split].append({"frame": frame, "problem": problems.get(frame), "dup": dup,
                                        "repeats": 0 if dup else repeats.get(frame, 0)})
                seen.add(frame.lower())
        by_split["train"] += [{"frame": f, "problem": None, "unsplit": True, "repeats": repeats.get(f, 0)}
                              for f in problems if f not in listed]
        return by_split

    @staticmethod
    def _chunk(by_split: dict[str, list[dict]], fmt: str) -> list[Unit]:
        units = []
        for split, frames in by_split.items():
            for i in range(0, len(frames), FRAMES_PER_UNIT):
                units.append(Unit(f"{split}-{i // FRAMES_PER_UNIT:04d}", split,
                                  {"format": fmt, "frames": frames[i:i + FRAMES_PER_UNIT]}))
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        parse = self._official_questions if unit.payload["format"] == "official" else self._llava_questions
        for entry in unit.payload["frames"]:
            frame, paths, questions, bad = parse(entry)
            yield from bad
            if not questions:
                continue
            media, blobs, reason = self._images(paths)
            if reason:
                yield from (Quarantined(q["record_id"], reason) for q in questions)
                continue
            for q, suffix in zip(questions, key_suffixes(questions)):
                yield Record(self._sample(unit, frame, paths, media, q, suffix), blobs)

    def _official_questions(self, entry: dict) -> tuple[str, dict, list[dict], list[Quarantined]]:
        frame, problem = str(entry["frame"]), entry["problem"]
        repeated = [Quarantined(f"{frame}/repeat{n}", "duplicate frame: problems.json has this frame id again "
                                "(its first entry is used)") for n in range(1, entry.get("repeats", 0) + 1)]
        if entry.get("unsplit"):
            return frame, {}, [], [Quarantined(frame, "frame is in no split of pid_splits.json"), *repeated]
        if entry["dup"]:
            return frame, {}, [], [Quarantined(frame, "frame listed twice in pid_splits.json")]
        if not FRAME_RE.match(frame):
            return frame, {}, [], [Quarantined(frame, "frame id is not [A-Za-z0-9_-]+"), *repeated]
        if not isinstance(problem, dict) or not isinstance(problem.get("qa"), list):
            return frame, {}, [], [Quarantined(frame, "frame missing from problems.json or has no qa list"), *repeated]
        image = problem.get("image")
        bev = problem.get("pointcloud")
        paths = {"front": image if isinstance(image, str) and image else f"{frame}/{FRONT}",
                 "bev": bev if isinstance(bev, str) and bev else f"{frame}/{BEV}"}
        good, bad = [], repeated
        for j, qa in enumerate(problem["qa"]):
            q, reason = self._official_qa(f"{frame}/{j}", j, qa)
            if reason:
                bad.append(Quarantined(f"{frame}/{j}", reason))
            else:
                good.append(q)
        return frame, paths, *_unrepeated(good, bad)

    @staticmethod
    def _official_qa(record_id: str, index: int, qa) -> tuple[dict | None, str | None]:
        if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not qa["question"].strip():
            return None, "qa item has no question"
        code, task = question_type(qa["question"])
        base = {"record_id": record_id, "index": index, "type": code, "task": task, "qa_task": qa.get("task")}
        if qa.get("task") != CLOSED:
            if not isinstance(qa.get("answer"), str) or not qa["answer"].strip():
                return None, f"{qa.get('task')!r} qa item has no answer text"
            return {**base, "question": qa["question"], "reply": qa["answer"], "options": None,
                    "answer_index": None, "answer": qa["answer"]}, None
        choices, answer = qa.get("choices"), qa.get("answer")
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c for c in choices):
            return None, "closed-choice qa item has no list of choice strings"
        if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
            return None, f"answer {answer!r} is not an index into its {len(choices)} choices"
        options = list(choices)  # as written, final period kept: run_eval.py matches on these
        return {**base, "question": _with_options(qa["question"], choices), "options": options,
                "answer_index": answer, "answer": options[answer].rstrip("."),
                "reply": f"{ANSWER_PREFIX} {options[answer].rstrip('.')}."}, None

    def _llava_questions(self, entry: dict) -> tuple[str, dict, list[dict], list[Quarantined]]:
        record = entry["record"]
        frame = record["id"] if isinstance(record, dict) and isinstance(record.get("id"), str) \
            else f"record-{entry['index']}"
        reason = "frame id repeats an earlier record" if entry["dup"] else self._llava_problem(record)
        if reason:
            return frame, {}, [], [Quarantined(frame, reason)]
        turns = record["conversations"]
        good, bad = [], []
        for j in range(0, len(turns), 2):
            question = turns[j]["value"].replace("<image>\n", "").replace("<image>", "").strip()
            if j == 0 and turns[0]["value"].startswith("<image>"):
                continue  # the intro exchange: framing, not a MAPLM question
            q, reason = self._llava_qa(f"{frame}/{j // 2}", j // 2, question, turns[j + 1]["value"])
            if reason:
                bad.append(Quarantined(f"{frame}/{j // 2}", reason))
            else:
                good.append(q)
        return frame, {"front": record["image"], "bev": record["pointcloud"]}, *_unrepeated(good, bad)

    @staticmethod
    def _llava_problem(record) -> str | None:
        if not isinstance(record, dict):
            return "record is not an object"
        if not isinstance(record.get("id"), str) or not FRAME_RE.match(record["id"]):
            return "record id is not [A-Za-z0-9_-]+"
        for field in ("image", "pointcloud"):
            if not isinstance(record.get(field), str) or not record[field]:
                return f"record has no {field} path"
        turns = record.get("conversations")
        if not isinstance(turns, list) or not turns or len(turns) % 2:
            return "conversations is not an even, non-empty list of turns"
        for j, turn in enumerate(turns):
            want = "human" if j % 2 == 0 else "gpt"
            if not isinstance(turn, dict) or turn.get("from") != want or not isinstance(turn.get("value"), str):
                return f"conversations[{j}] is not a {want} turn with a value"
        return None

    @staticmethod
    def _llava_qa(record_id: str, index: int, question: str, reply: str) -> tuple[dict | None, str | None]:
        if not question or not reply.strip():
            return None, "empty question or answer"
        code, task = question_type(question)
        options = inline_options(question)
        text = answer_text(reply)
        answer_index = None
        if options is not None:
            answer_index = match_option(text, options)
            if answer_index is None:
                return None, f"answer {text!r} is not exactly one of the options {options}"
        return {"record_id": record_id, "index": index, "type": code, "task": task,
                "qa_task": CLOSED if code in ("SCN", "QLT", "LAN", "INT") else "open", "question": question,
                "reply": reply, "options": options, "answer_index": answer_index,
                "answer": text if code != "DESC" else reply}, None

    def _images(self, paths: dict) -> tuple[list[dict], list[bytes], str | None]:
        media, blobs = [], []
        for i, (camera, source) in enumerate((("front", "photo_forward"), ("bev", "point_cloud_bev"))):
            blob, reason = read_image(self._image_root, paths[camera])
            if reason:
                return [], [], f"{reason} ({source})"
            media.append({"member": f"img{i}.{blob.format}", "camera": canonical(self.cameras, source, self.name),
                          "source_camera": source, "time_offset_s": 0.0, "width": blob.width,
                          "height": blob.height})
            blobs.append(blob.data)
        return media, blobs, None

    def _sample(self, unit: Unit, frame: str, paths: dict, media: list[dict], q: dict, suffix: str) -> dict:
        return {
            "schema": "sample/1", "id": f"{self.name}-{frame.lower()}-{suffix}", "dataset": self.name,
            "split": unit.split, "task": q["task"], "scene_id": f"maplm:{frame}", "frame_id": f"maplm:{frame}",
            "layout": "multi_view", "media": [dict(m) for m in media],
            "conversations": [{"role": "user", "content": q["question"]},
                              {"role": "assistant", "content": q["reply"]}],
            "meta": {"maplm_frame": frame, "question_index": q["index"], "question_type": q["type"],
                     "qa_task": q["qa_task"], "options": q["options"], "answer_index": q["answer_index"],
                     "answer": q["answer"], "source_format": unit.payload["format"], "images": paths},
        }
