"""A small NuInstruct release: `annotations/{train,val,test}.json` clips over the generated
nuScenes root beside them (see `converters/nuscenes/fixture_derived.py`)."""
from __future__ import annotations

from pathlib import Path

from converters.nuinstruct.converter import NuInstructOptions
from converters.nuscenes.fixture_derived import (
    CLASS_WORDS,
    class_counts,
    closest_category,
    future_xy,
    scene_frames,
    write_json,
)
from converters.nuscenes.tables import NUSCENES_ORDER


def _instruct_qas(frames: list[dict], k: int) -> list[dict]:
    """QA about the last frame of a clip ending at key frame k."""
    counts = class_counts(frames[k])
    closest = closest_category(frames[k])
    qas = [("perception-instance_count", "How many cars are there in the current scene?", str(counts["car"])),
           ("reasoning-reasoning", "What should the ego car do next and why?",
            "Keep the lane and the speed: nothing blocks the road ahead.")]
    if closest in CLASS_WORDS:
        qas.append(("perception-closest", "What kind of object is closest to the ego car?", CLASS_WORDS[closest]))
    fut_xy, fut_valid = future_xy(frames, k)
    if fut_valid[0]:
        x, y = fut_xy[0]
        qas.append(("prediction-motion_ego", "Where will the ego car be in 0.5 seconds?", f"move to ({x:.2f},{y:.2f})"))
    return qas


def make_nuinstruct(out: Path, clip: int = 3, **kwargs) -> Path:
    """`<out>/annotations/{train,val,test}.json` (clips of `clip` key frames x 6 cameras) +
    `<out>/nuscenes`; the mini_val scene's clips alternate between val and test. Returns `out`."""
    out = Path(out)
    _, scenes = scene_frames(out, **kwargs)
    by_split: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    qa_id = 0
    for split, _scene, frames in scenes:
        for n, end in enumerate(range(clip - 1, len(frames), clip)):
            window = frames[end - clip + 1: end + 1]
            paths = [f["sensors"][c]["filename"] for f in window for c in NUSCENES_ORDER]
            target = split if split == "train" else ("val", "test")[n % 2]
            for task, question, answer in _instruct_qas(frames, end):
                by_split[target].append({"task": task, "qa_id": qa_id, "img_path": paths, "Question": question,
                                         "Answer": answer, "sample_list": [f["token"] for f in window]})
                qa_id += 1
    for split, records in by_split.items():
        write_json(out / "annotations" / f"{split}.json", records)
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, NuInstructOptions]]:
    return [(make_nuinstruct(out), NuInstructOptions(nuscenes_root=str(Path(out) / "nuscenes")))]
