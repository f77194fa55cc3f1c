"""A small MAPLM v0.1 root in its real layout, plus the LLaVA-style QA file of its test frames.

Layout, as `data/maplm_v0.1/` after unzipping: `problems.json`, `pid_splits.json` and one
folder per frame (`FR<n>/photo_forward.jpg`, `FR<n>/point_cloud_bev.jpg`). `maplm_test.json`
beside them is the test frames in the format of `baseline/evaluation/maplm_test.json`
(intro exchange, four closed-choice questions with inline options, answers "The answer is
X.", and on some frames the lane description). Front photos are portrait like MAPLM's
panoramic shots; BEV images are square. A frame's answers follow from what its pictures
show (see KINDS). Deterministic.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from converters.fixture_images import render_jpeg
from converters.maplm.converter import BEV, CHOICE_MARK, FRONT, MAPLMOptions

# (question in problems.json, question in the LLaVA file, choices); LAN shows no options there.
# problems.json writes each choice with its final period (run_eval.py matches on them so).
QUESTIONS = (
    ("What kind of road scene is it in the images?", None,
     ["Normal city road", "Construction road", "Undeveloped road", "Road mark repainting", "Roundabout",
      "None of the above"]),
    ("What is the point cloud data quality in current road area of this image?", None,
     ["Very clear", "Not clear, road mark is worn", "Not clear, road mark is occluded by some vehicle",
      "Not clear, road mark is worn and occluded by vehicle"]),
    ("How many lanes in current road?", "How many lanes on the current road?", ["1", "2", "3", "4", "5"]),
    ("Is there any road cross, intersection or lane change zone in the main road?", None,
     ["No", "Yes, there is one crossroad in the image", "Yes, there is one T-junction in the image",
      "Yes, there is a small road intersection in the image", "Yes, there is one lane change zone in the image",
      "Yes, there is one irregular intersection in the image"]),
)
INTRO = ("<image>\nAssume you are monitoring a driving car. What are these images from sensors?",
         "They are panoramic view and bird's-eye view of the car.")
DESCRIBE = "Describe the lane attribute in the current road."
SPLIT_SIZES = (("train", 4), ("val", 2), ("test", 3))


# A frame's kind decides its answers (index per question) and shows in both its pictures, so
# the answers are learnable from the images: a plain city road, or a construction zone (orange
# barriers across the road: worn marks, a third lane, a crossroad).
KINDS = ((0, 0, 1, 0), (1, 1, 2, 1))
BARRIER = (255, 140, 0)


def _answers(n: int) -> list[int]:
    return list(KINDS[n % len(KINDS)])


def _barriers(n: int, width: int, height: int) -> list[tuple[list[float], tuple[int, int, int]]]:
    """The construction zone's orange block across the lower half, on construction frames."""
    return [([0.1 * width, 0.55 * height, 0.9 * width, 0.9 * height], BARRIER)] if n % len(KINDS) else []


def _llava_record(frame: str, answers: list[int]) -> dict:
    turns = [{"from": "human", "value": INTRO[0]}, {"from": "gpt", "value": INTRO[1]}]
    for (question, llava_question, choices), a in zip(QUESTIONS, answers):
        if llava_question is None:
            text = f"{question} {CHOICE_MARK} " + " ".join(f"{c}." for c in choices)
            reply = f"The answer is {choices[a]}."
        else:
            text, reply = llava_question, f"The answer is {choices[a]}"
        turns += [{"from": "human", "value": text}, {"from": "gpt", "value": reply}]
    lanes = int(QUESTIONS[2][2][answers[2]])
    if lanes >= 3:
        turns += [{"from": "human", "value": DESCRIBE},
                  {"from": "gpt", "value": f"There are {lanes} lanes in the image, lane attributes from left to "
                                           f"right: " + ", ".join(["straight"] * lanes) + "."}]
    return {"id": frame, "image": f"{frame}/{FRONT}", "pointcloud": f"{frame}/{BEV}", "conversations": turns}


def make_maplm_root(out: Path, seed: int = 0) -> Path:
    """Write a MAPLM v0.1 root under `out` (with `maplm_test.json`); returns `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    problems, splits, llava, n = {}, {}, [], 0
    for split, count in SPLIT_SIZES:
        splits[split] = []
        for _ in range(count):
            n += 1
            frame = f"FR{n}"
            (out / frame).mkdir(exist_ok=True)
            (out / frame / FRONT).write_bytes(render_jpeg(rng, 240, 320, f"{frame} front", 85, _barriers(n, 240, 320)))
            (out / frame / BEV).write_bytes(render_jpeg(rng, 256, 256, f"{frame} BEV", 85, _barriers(n, 256, 256)))
            answers = _answers(n)
            problems[frame] = {"image": f"{frame}/{FRONT}", "qa": [
                {"task": "closed choice", "question": q, "choices": [f"{x}." for x in c], "answer": a}
                for (q, _l, c), a in zip(QUESTIONS, answers)]}
            splits[split].append(frame)
            if split == "test":
                llava.append(_llava_record(frame, answers))
    (out / "problems.json").write_text(json.dumps(problems, indent=2))
    (out / "pid_splits.json").write_text(json.dumps(splits, indent=2))
    (out / "maplm_test.json").write_text(json.dumps(llava, indent=4))
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, MAPLMOptions]]:
    return [(make_maplm_root(out), MAPLMOptions())]
