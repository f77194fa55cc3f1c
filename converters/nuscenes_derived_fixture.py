"""Small raw-format fixtures of the datasets that annotate nuScenes frames: nuScenes-QA,
OmniDrive-nuScenes, NuInstruct and Talk2Car.

Each writes its annotation files in the owner's layout next to a generated nuScenes root
(`<out>/nuscenes`, from `make_nuscenes_root`), and computes its answers from that root's
tables (object counts, attributes, ego motion, projected boxes), so what a sample says is
true of its scene. Scenes keep their devkit split (mini_train -> train, mini_val -> val)
unless a dataset has its own. Deterministic: same arguments, same bytes.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from converters.nuscenes_fixture import make_nuscenes_root, token
from converters.nuscenes_tables import LIDAR, NuScenesTables, official_splits
from dataengine.cameras import NUSCENES_ORDER
from dataengine.geometry import apply, box_2d_in_image, box_corners, invert, pose_matrix, quat_to_matrix
from dataengine.trajectory import command_from_future

VERSION = "v1.0-mini"
# nuScenes category / attribute -> nuScenes-QA's answer words (src/datasets/answer_dict.json)
CLASS_WORDS = {"vehicle.car": "car", "vehicle.truck": "truck", "human.pedestrian.adult": "pedestrian",
               "movable_object.trafficcone": "traffic cone", "vehicle.bicycle": "bicycle",
               "movable_object.barrier": "barrier", "vehicle.bus.rigid": "bus", "vehicle.trailer": "trailer",
               "vehicle.construction": "construction vehicle", "vehicle.motorcycle": "motorcycle"}
STATUS_WORDS = {"vehicle.moving": "moving", "vehicle.parked": "parked", "vehicle.stopped": "stopped",
                "pedestrian.moving": "moving", "pedestrian.standing": "standing",
                "pedestrian.sitting_lying_down": "not standing", "cycle.with_rider": "with rider",
                "cycle.without_rider": "without rider"}
ACTIONS = {"go_straight": "Keep going straight along the current lane.",
           "turn_left": "Turn left at the junction ahead.", "turn_right": "Turn right at the junction ahead."}


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def _frames(out: Path, **kwargs) -> tuple[Path, list[tuple[str, dict, list[dict]]]]:
    """The generated nuScenes root and, per scene in table order, (split, scene, key frames)."""
    root = make_nuscenes_root(Path(out) / "nuscenes", version=VERSION, **kwargs)
    tables = NuScenesTables(root, VERSION)
    splits = official_splits(VERSION)
    scenes = [(splits[s["name"]], s, [tables.keyframe(x) for x in tables.scene_samples(s["token"])])
              for s in tables.scenes()]
    return root, scenes


def _future(frames: list[dict], k: int) -> tuple[list[list[float]], list[bool]]:
    """The next 6 key frames' ego positions in frame k's ego frame (x forward, y left); past
    the scene's end a point repeats the last one and is invalid."""
    poses = [f["sensors"][LIDAR]["ego_pose"] for f in frames]
    world_to_ego = invert(pose_matrix(**poses[k]))
    xy, valid, last = [], [], [0.0, 0.0]
    for j in range(k + 1, k + 7):
        if j < len(poses):
            p = apply(world_to_ego, np.array([poses[j]["translation"]], dtype=float))[0]
            last = [round(float(p[0]), 4) + 0.0, round(float(p[1]), 4) + 0.0]
        xy.append(list(last))
        valid.append(j < len(poses))
    return xy, valid


def _closest(frame: dict) -> str | None:
    """Category of the annotation nearest the ego vehicle (None without annotations)."""
    ego = np.array(frame["sensors"][LIDAR]["ego_pose"]["translation"][:2])
    anns = sorted(frame["annotations"], key=lambda a: float(np.linalg.norm(np.array(a["translation"][:2]) - ego)))
    return anns[0]["category"] if anns else None


def _counts(frame: dict) -> Counter:
    return Counter(CLASS_WORDS[a["category"]] for a in frame["annotations"] if a["category"] in CLASS_WORDS)


# ---------------------------------------------------------------- nuScenes-QA

def _plural(word: str) -> str:
    return word + ("es" if word.endswith("s") else "s")


def _qa_questions(frame: dict, k: int) -> list[dict]:
    """exist / count / comparison / status / object questions whose answers hold for the frame's boxes."""
    counts = _counts(frame)
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
    closest = _closest(frame)
    if closest in CLASS_WORDS:
        out.append({"question": "What is the thing closest to the ego car?", "answer": CLASS_WORDS[closest],
                    "num_hop": 0, "template_type": "object"})
    return [{"sample_token": frame["token"], **q} for q in out]


def make_nuscenes_qa(out: Path, **kwargs) -> Path:
    """`<out>/questions/NuScenes_{train,val}_questions.json` + `<out>/nuscenes`; returns `out`."""
    out = Path(out)
    _, scenes = _frames(out, **kwargs)
    by_split: dict[str, list[dict]] = {"train": [], "val": []}
    for split, _scene, frames in scenes:
        for k, frame in enumerate(frames):
            by_split[split] += [{**q, "split": split} for q in _qa_questions(frame, k)]
    for split, questions in by_split.items():
        _write_json(out / "questions" / f"NuScenes_{split}_questions.json", {"questions": questions})
    return out


# ---------------------------------------------------------------- OmniDrive-nuScenes

def _signed(v: float) -> str:
    """A number as OmniDrive's `format_number(v, 2)` prints it: signed, or 0.0 when it rounds to 0."""
    return "0.0" if abs(round(v, 2)) <= 1e-2 else f"{v:+.2f}"


def _pt(xy) -> str:
    return "[PT, " + ", ".join(f"({_signed(x)}, {_signed(y)})" for x, y in xy) + "]"


def _omnidrive_files(scene: dict, frames: list[dict], k: int) -> dict:
    """The four per-token files of key frame k (conv only on even frames, planning only with a
    complete 3 s future)."""
    counts = _counts(frames[k])
    fut_xy, fut_valid = _future(frames, k)
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
    root, scenes = _frames(out, **kwargs)
    for split, scene, frames in scenes:
        for k, frame in enumerate(frames):
            for kind, content in _omnidrive_files(scene, frames, k).items():
                _write_json(root / kind / split / f"{frame['token']}.json", content)
    return root


# ---------------------------------------------------------------- NuInstruct

def _instruct_qas(frames: list[dict], k: int) -> list[dict]:
    """QA about the last frame of a clip ending at key frame k."""
    counts = _counts(frames[k])
    closest = _closest(frames[k])
    qas = [("perception-instance_count", "How many cars are there in the current scene?", str(counts["car"])),
           ("reasoning-reasoning", "What should the ego car do next and why?",
            "Keep the lane and the speed: nothing blocks the road ahead.")]
    if closest in CLASS_WORDS:
        qas.append(("perception-closest", "What kind of object is closest to the ego car?", CLASS_WORDS[closest]))
    fut_xy, fut_valid = _future(frames, k)
    if fut_valid[0]:
        x, y = fut_xy[0]
        qas.append(("prediction-motion_ego", "Where will the ego car be in 0.5 seconds?", f"move to ({x:.2f},{y:.2f})"))
    return qas


def make_nuinstruct(out: Path, clip: int = 3, **kwargs) -> Path:
    """`<out>/annotations/{train,val,test}.json` (clips of `clip` key frames x 6 cameras) +
    `<out>/nuscenes`; the mini_val scene's clips alternate between val and test. Returns `out`."""
    out = Path(out)
    _, scenes = _frames(out, **kwargs)
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
        _write_json(out / "annotations" / f"{split}.json", records)
    return out


# ---------------------------------------------------------------- Talk2Car

def _matrix_to_quat(m: np.ndarray) -> list[float]:
    """(w, x, y, z) of a rotation matrix (Shepperd's method)."""
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2 * math.sqrt(1 + trace)
        return [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    i = int(np.argmax([m[0, 0], m[1, 1], m[2, 2]]))
    j, k = (i + 1) % 3, (i + 2) % 3
    s = 2 * math.sqrt(1 + m[i, i] - m[j, j] - m[k, k])
    q = [0.0] * 4
    q[0] = (m[k, j] - m[j, k]) / s
    q[1 + i] = s / 4
    q[1 + j] = (m[j, i] + m[i, j]) / s
    q[1 + k] = (m[k, i] + m[i, k]) / s
    return q


def _front_boxes(frame: dict) -> list[dict]:
    """Boxes of the frame's annotations seen by CAM_FRONT, in its camera frame (Talk2Car's
    convention), with the 2D box as [x, y, w, h] pixels."""
    cam = frame["sensors"]["CAM_FRONT"]
    calib = cam["calibration"]
    world_to_cam = invert(pose_matrix(calib["translation"], calib["rotation"])) @ invert(pose_matrix(**cam["ego_pose"]))
    out = []
    for ann in frame["annotations"]:
        corners = apply(world_to_cam, box_corners(ann["translation"], ann["size"], ann["rotation"]))
        xyxy = box_2d_in_image(corners, calib["camera_intrinsic"], cam["width"], cam["height"])
        if xyxy is None or ann["category"] not in CLASS_WORDS:
            continue
        x1, y1 = int(xyxy[0]), int(xyxy[1])
        out.append({"ann": ann, "translation": apply(world_to_cam, np.array([ann["translation"]]))[0].tolist(),
                    "rotation": _matrix_to_quat(world_to_cam[:3, :3] @ quat_to_matrix(ann["rotation"])),
                    "2d_box": [x1, y1, max(1, round(xyxy[2]) - x1), max(1, round(xyxy[3]) - y1)]})
    return out


def _command(box: dict, n: int) -> str:
    word = CLASS_WORDS[box["ann"]["category"]]
    side = "left" if box["translation"][0] < 0 else "right"
    return (f"pull over behind the {word} on the {side}", f"follow that {word}",
            f"stop next to the {word} over there on the {side}")[n % 3]


def make_talk2car(out: Path, **kwargs) -> Path:
    """Talk2Car's `data/` layout: `<out>/commands/{train,val,test}_commands.json` + `<out>/nuscenes`.
    Commands refer to boxes seen by CAM_FRONT; `sample_token` is the CAM_FRONT sample_data token,
    as the devkit reads it. Train scenes give train commands on every other key frame; the
    val scene's key frames alternate between val and test (so no evaluation frame is in a
    training scene). Returns `out`."""
    out = Path(out)
    _, scenes = _frames(out, **kwargs)
    by_split: dict[str, dict] = {s: {"scene_tokens": [], "commands": []} for s in ("train", "val", "test")}
    for split, scene, frames in scenes:
        parts = [("train", frames[::2])] if split == "train" else [("val", frames[::2]), ("test", frames[1::2])]
        for target, chosen in parts:
            data = by_split[target]
            data["scene_tokens"].append(scene["token"])
            for frame in chosen:
                data["commands"] += [_talk2car_command(target, scene, frame, box, len(data["commands"]) + i)
                                     for i, box in enumerate(_front_boxes(frame))]
    for split, data in by_split.items():
        _write_json(out / "commands" / f"{split}_commands.json", data)
    return out


def _talk2car_command(split: str, scene: dict, frame: dict, box: dict, n: int) -> dict:
    ann = box["ann"]
    return {"scene_token": scene["token"], "sample_token": frame["sensors"]["CAM_FRONT"]["sample_data_token"],
            "translation": box["translation"], "size": ann["size"],
            "rotation": [repr(float(v)) for v in box["rotation"]], "command": _command(box, n),
            "obj_name": ann["category"], "box_token": ann["token"],
            "command_token": token("command", split, ann["token"], n), "2d_box": box["2d_box"],
            "t2c_img": f"img_{split}_{n}.jpg"}
