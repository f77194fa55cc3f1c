"""A small nuScenes-QA release: `questions/NuScenes_{train,val}_questions.json` whose answers
hold for the generated nuScenes root beside them (see `converters/nuscenes/fixture_derived.py`)."""
from __future__ import annotations

from pathlib import Path

from converters.nuscenes.fixture_derived import CLASS_WORDS, class_counts, closest_category, scene_frames, write_json
from converters.nuscenes_qa.converter import NuScenesQAOptions

STATUS_WORDS = {"vehicle.moving": "moving", "vehicle.parked": "parked", "vehicle.stopped": "stopped",
                "pedestrian.moving": "moving", "pedestrian.standing": "standing",
                "pedestrian.sitting_lying_down": "not standing", "cycle.with_rider": "with rider",
                "cycle.without_rider": "without rider"}


def _plural(word: str) -> str:
    return word + ("es" if word.endswith("s") else "s")


def _qa_questions(frame: dict, k: int) -> list[dict]:
    """exist / count / comparison / status / object questions whose answers hold for the frame's boxes."""
    counts = class_counts(frame)
    words = ("car", "truck", "pedestrian", "traffic cone", "bicycle", "bus")
    asked = words[k % len(words)]
    out = [
        {"question": f"Are there any {_plural(asked)}?", "answer": "yes" if counts[asked] else "no",
         "num_hop": 0, "template_type": "exist"},
        {"question": "How many cars are there?", "answer": str(min(counts["car"], 10)), "num_hop": 0,
         "template_type": "count"},
        {"question": "Are there the same number of cars and trucks?",
         "answer": "yes" if counts["car"] == counts["truck"] else "no", "num_hop": 1, "template_type": "comparison"},
    ]
    for ann in frame["annotations"]:
        status = [STATUS_WORDS[a] for a in ann["attributes"] if a in STATUS_WORDS]
        word = CLASS_WORDS.get(ann["category"])
        if word and status and counts[word] == 1:
            out.append({"question": f"What status is the {word}?", "answer": status[0], "num_hop": 0,
                        "template_type": "status"})
            break
    closest = closest_category(frame)
    if closest in CLASS_WORDS:
        out.append({"question": "What is the thing closest to the ego car?", "answer": CLASS_WORDS[closest],
                    "num_hop": 0, "template_type": "object"})
    return [{"sample_token": frame["token"], **q} for q in out]


def make_nuscenes_qa(out: Path, **kwargs) -> Path:
    """`<out>/questions/NuScenes_{train,val}_questions.json` + `<out>/nuscenes`; returns `out`."""
    out = Path(out)
    _, scenes = scene_frames(out, **kwargs)
    by_split: dict[str, list[dict]] = {"train": [], "val": []}
    for split, _scene, frames in scenes:
        for k, frame in enumerate(frames):
            by_split[split] += [{**q, "split": split} for q in _qa_questions(frame, k)]
    for split, questions in by_split.items():
        write_json(out / "questions" / f"NuScenes_{split}_questions.json", {"questions": questions})
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, NuScenesQAOptions]]:
    return [(make_nuscenes_qa(out), NuScenesQAOptions(nuscenes_root=str(Path(out) / "nuscenes")))]
