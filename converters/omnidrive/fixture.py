"""A small OmniDrive-nuScenes release: OmniDrive's per-token desc/conv/vqa/keywords files inside
the generated nuScenes root they describe (see `converters/nuscenes/fixture_derived.py`)."""
from __future__ import annotations

from pathlib import Path

from converters.nuscenes.fixture_derived import class_counts, future_xy, scene_frames, write_json
from converters.omnidrive.converter import OmniDriveOptions
from dataengine.trajectory import command_from_future

ACTIONS = {"go_straight": "Keep going straight along the current lane.",
           "turn_left": "Turn left at the junction ahead.", "turn_right": "Turn right at the junction ahead."}


def _signed(v: float) -> str:
    """A number as OmniDrive's `format_number(v, 2)` prints it: signed, or 0.0 when it rounds to 0."""
    return "0.0" if abs(round(v, 2)) <= 1e-2 else f"{v:+.2f}"


def _pt(xy) -> str:
    return "[PT, " + ", ".join(f"({_signed(x)}, {_signed(y)})" for x, y in xy) + "]"


def _omnidrive_files(scene: dict, frames: list[dict], k: int) -> dict:
    """The four per-token files of key frame k (conv only on even frames, planning only with a
    complete 3 s future)."""
    counts = class_counts(frames[k])
    fut_xy, fut_valid = future_xy(frames, k)
    action = ACTIONS[command_from_future(fut_xy, fut_valid)]
    objects = ", ".join(f"{n} {w}{'s' if n > 1 else ''}" for w, n in sorted(counts.items())) or "no objects"
    files = {
        "keywords": action,
        "desc": {"description": f"The ego car drives on a clear road ({scene['description']}); around it there "
                                f"are {objects}.", "action": action},
        "vqa": [
            {"question": "Are there traffic elements that may affect your driving behavior?",
             "answer": f"In this scenario, there are {objects} around us; none blocks our lane."},
            {"question": "What's your next action and why?", "answer": f"{action} The lane ahead is free."},
            {"question": f"If you follow the trajectory {_pt([(2.0 * i, 0.6 * i) for i in range(1, 7)])}, "
                         f"what would happen?", "answer": "This trajectory leaves the drivable area to the left."},
        ],
    }
    if all(fut_valid):
        files["vqa"].append({"question": "Please provide the planning trajectory for the ego car without reasons.",
                             "answer": f"Here is the planning trajectory {_pt(fut_xy)}."})
    if k % 2 == 0:
        files["conv"] = [{"question": "How many cars are around you?", "answer": f"There are {counts['car']} cars."},
                         {"question": "Is the road wet?", "answer": "No, the road is dry."}]
    return files


def make_omnidrive(out: Path, **kwargs) -> Path:
    """OmniDrive's `data/nuscenes/` layout: `<out>/nuscenes/{desc,conv,vqa,keywords}/{train,val}/<token>.json`
    inside the generated nuScenes root; returns `<out>/nuscenes` (the --src and the nuScenes root)."""
    root, scenes = scene_frames(out, **kwargs)
    for split, scene, frames in scenes:
        for k, frame in enumerate(frames):
            for kind, content in _omnidrive_files(scene, frames, k).items():
                write_json(root / kind / split / f"{frame['token']}.json", content)
    return root


def jobs(name: str, out: Path) -> list[tuple[Path, OmniDriveOptions]]:
    return [(make_omnidrive(out), OmniDriveOptions(nuscenes_root=str(Path(out) / "nuscenes")))]
