"""A small LingoQA release in its real layout: scenery/, action/ and evaluation/ folders.

Each folder holds its parquet (`train.parquet`, or `val.parquet` for evaluation) with the
real columns (`question_id`, `segment_id`, `images` with 5 paths relative to the folder,
`question`, `answer`, plus pandas' `__index_level_0__`) and the frames under
`images/<train|val>/<segment_id>/{0..4}.jpg`. Evaluation questions have 2 reference rows
each, adjacent, as in the real `val.parquet`. Ids are 32 lowercase hex digits. Deterministic.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from converters.fixture_images import render_jpeg
from converters.lingoqa.converter import FRAMES, LingoQAOptions

QUESTIONS = (
    ("Is there a traffic light? If yes, what color is displayed?", ("Yes, green.", "Yes, it is showing green.")),
    ("What is the current action of the ego vehicle?", ("Slowing down.", "The car is decelerating.")),
    ("Are there any pedestrians crossing?", ("No.", "No, the crossing is empty.")),
    ("Why is the ego vehicle stopping?", ("Because of the red light.", "It is waiting at a red light.")),
)
# subset folder -> (parquet, image split, segments, questions per segment, references per question)
PLAN = {"scenery": ("train.parquet", "train", 2, 3, 1), "action": ("train.parquet", "train", 2, 2, 1),
        "evaluation": ("val.parquet", "val", 3, 2, 2)}


def hex_id(*parts) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def _write_subset(folder: Path, subset: str, rng: np.random.Generator, size: tuple[int, int]) -> None:
    parquet, split, segments, per_segment, refs = PLAN[subset]
    rows = []
    for s in range(segments):
        segment = hex_id(subset, "segment", s)
        paths = [f"images/{split}/{segment}/{i}.jpg" for i in range(FRAMES)]
        for i, path in enumerate(paths):
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(render_jpeg(rng, *size, f"{subset} {segment[:6]} t{i}", 85))
        for q in range(per_segment):
            question, answers = QUESTIONS[(s + q) % len(QUESTIONS)]
            qid = hex_id(subset, "question", s, q)
            rows += [{"question_id": qid, "segment_id": segment, "images": paths, "question": question,
                      "answer": answers[r]} for r in range(refs)]
    for i, row in enumerate(rows):
        row["__index_level_0__"] = i
    pq.write_table(pa.Table.from_pylist(rows), folder / parquet)


def make_lingoqa_root(out: Path, width: int = 256, height: int = 160, seed: int = 0) -> Path:
    """Write a LingoQA release root under `out`; returns `out`."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for subset in PLAN:
        (out / subset).mkdir(parents=True, exist_ok=True)
        _write_subset(out / subset, subset, rng, (width, height))
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, LingoQAOptions]]:
    return [(make_lingoqa_root(out), LingoQAOptions())]
