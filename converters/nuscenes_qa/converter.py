"""nuScenes-QA: template questions on nuScenes key frames, answered from a 30-word vocabulary.

Source schema (`qiantianwen/NuScenes-QA` @ 3097f25: `src/configs/path_cfgs.py`,
`src/datasets/nuscenes_qa.py`, `src/execution/result_eval.py`; reference datasets.md
section 11): `questions/NuScenes_{train,val}_questions.json`, each an object whose
`questions` list holds `{sample_token, question, answer, num_hop, template_type, ...}`.
The official scorer compares `str(answer)` by exact match and reports accuracy per
`template_type` and per `template_type`_`num_hop`; both are kept in `meta`.

The release has no images: the 6 cameras of each sample come from `--nuscenes-root`
through the table index. A record is one question; its key is
`nuscenes_qa-<split>-<index in the file>`, the index the official scorer identifies a
question by. Work unit: one nuScenes scene (questions whose sample is not in the root are
quarantined). Malformed questions and answers outside the vocabulary are quarantined.
What a key frame's questions share (cameras, ids, scene name and location) is each record's
`context`, stored once per frame (`dataengine/context.py`): ~13 questions a frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from converters.nuscenes.media import keyframe_media
from converters.nuscenes.tables import CAMERAS, NuScenesIndex, require_root
from converters.nuscenes.units import (
    is_unresolved,
    quarantine_unresolved,
    read_split_lists,
    records_by_frame,
    scene_units,
    split_files,
)
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError

QUESTION_FILES = {"train": "NuScenes_train_questions.json", "val": "NuScenes_val_questions.json"}
# src/datasets/answer_dict.json: the whole answer space of the benchmark
ANSWERS = frozenset([str(n) for n in range(11)] + [
    "no", "yes", "barrier", "bicycle", "bus", "car", "construction vehicle", "motorcycle", "moving",
    "not standing", "parked", "pedestrian", "standing", "stopped", "traffic cone", "trailer", "truck",
    "with rider", "without rider"])
# LLaVA's short-answer instruction: exact-match scoring needs a bare vocabulary word
SHORT_ANSWER = "Answer the question using a single word or phrase."


@dataclass(frozen=True)
class NuScenesQAOptions:
    nuscenes_root: str = ""
    """The nuScenes dataroot (v1.0-*/ tables, samples/) the questions' sample tokens are in. Required."""


def question_problem(q) -> str | None:
    """Why a question record cannot be converted, or None."""
    if not isinstance(q, dict):
        return "question record is not an object"
    for field in ("sample_token", "question", "template_type"):
        if not isinstance(q.get(field), str) or not q[field].strip():
            return f"no {field} string"
    if not isinstance(q.get("num_hop"), int) or isinstance(q["num_hop"], bool) or q["num_hop"] < 0:
        return "num_hop is not a non-negative integer"
    answer = q.get("answer")
    if not isinstance(answer, (str, int)) or isinstance(answer, bool):
        return "no answer string"
    if str(answer) not in ANSWERS:
        return f"answer {str(answer)!r} is not in the nuScenes-QA answer vocabulary"
    return None


@register
class NuScenesQAConverter(Converter):
    """nuScenes-QA: 6-camera key frames, one closed-vocabulary question each."""

    name = "nuscenes_qa"
    version = "1.1"  # 1.1: a key frame's shared fields as the records' context
    options_type = NuScenesQAOptions
    cameras = CAMERAS

    def check_source(self) -> None:
        if not split_files(self.src, "questions", QUESTION_FILES):
            raise UsageError(f"{self.src} is not a nuScenes-QA root: "
                             f"no questions/NuScenes_{{train,val}}_questions.json")
        require_root(self.options.nuscenes_root, self.name)
        _ = self._questions  # parsed once, here: a bad file is a usage error before anything runs

    @cached_property
    def _questions(self) -> dict[str, list]:
        """split -> the file's `questions` list (read once, in the driver)."""
        files = split_files(self.src, "questions", QUESTION_FILES)
        return read_split_lists(files, "questions", "nuScenes-QA question")

    def units(self) -> list[Unit]:
        index = NuScenesIndex(Path(self.options.nuscenes_root))
        units = []
        for split, questions in self._questions.items():
            units += scene_units(index, split, [self._record(split, i, q) for i, q in enumerate(questions)])
        return units

    @staticmethod
    def _record(split: str, index: int, q) -> dict:
        record = {"record_id": f"{split}/{index}", "index": index}
        problem = question_problem(q)
        if problem:
            return {**record, "problem": problem, "sample_tokens": []}
        return {**record, "sample_tokens": [q["sample_token"]], "question": q["question"],
                "answer": str(q["answer"]), "template_type": q["template_type"], "num_hop": q["num_hop"],
                "extra": {k: v for k, v in q.items()
                          if k not in ("sample_token", "question", "answer", "template_type", "num_hop")}}

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        if is_unresolved(unit):
            yield from quarantine_unresolved(unit)
            return
        by_frame = records_by_frame(unit)
        frames = sorted(unit.payload["frames"].values(), key=lambda f: (f["timestamp"], f["token"]))
        for frame in frames:  # one frame's images in memory at a time
            media, blobs, reason = keyframe_media(Path(self.options.nuscenes_root), frame, self.name)
            context = None if reason else frame_context(unit.payload["scene"], frame, media)
            for record in by_frame[frame["token"]]:
                if reason:
                    yield Quarantined(record["record_id"], reason)
                else:
                    yield Record(self._sample(unit, record), blobs, context)

    def _sample(self, unit: Unit, record: dict) -> dict:
        """The question's own fields; the frame's are its context."""
        return {
            "schema": "sample/1", "id": f"nuscenes_qa-{unit.split}-{record['index']}", "dataset": self.name,
            "split": unit.split, "task": "vqa.perception",
            "conversations": [{"role": "user", "content": f"{record['question']}\n{SHORT_ANSWER}"},
                              {"role": "assistant", "content": record["answer"]}],
            "meta": {"question_index": record["index"], "question": record["question"],
                     "template_type": record["template_type"], "num_hop": record["num_hop"],
                     **({"source_fields": record["extra"]} if record["extra"] else {})},
        }


def frame_context(scene: dict, frame: dict, media: list[dict]) -> dict:
    """What every question of a key frame shares, stored once per frame (`dataengine/context.py`):
    ~2.6 KB of a 3.2 KB sample. OmniDrive's frames hold the same fields, so the two datasets'
    contexts of one key frame are one entry in a shared root."""
    return {"scene_id": f"nuscenes:{scene['token']}", "frame_id": f"nuscenes:{frame['token']}",
            "layout": "multi_view", "media": media,
            "meta": {"sample_token": frame["token"], "scene_name": scene["name"], "location": scene["location"]}}
