"""A small DriveLM-nuScenes release: the QA JSON in its real layout plus the nuScenes root it
points into.

Layout, as DriveLM's README sets it up: `<out>/QA_dataset_nus/v1_1_train_nus.json` beside
`<out>/nuscenes/` (a generated nuScenes dataroot); image paths are written relative to the
JSON's folder (`../nuscenes/samples/CAM_FRONT/<file>.jpg`). Scene and key frame keys are
the generated nuScenes scene and sample tokens, so the leakage audit can match them with
the nuScenes converter's output. Every other keyframe of each train scene is a key frame
(DriveLM annotates a subset). Deterministic.
"""
from __future__ import annotations

import json
from pathlib import Path

from converters.drivelm.converter import DriveLMOptions
from converters.nuscenes.fixture import make_nuscenes_root
from converters.nuscenes.tables import NUSCENES_ORDER, NuScenesTables, official_scene_names

VERSION = "v1.0-mini"
JSON_PATH = "QA_dataset_nus/v1_1_train_nus.json"
VAL_JSON_PATH = "QA_dataset_nus/v1_1_val_nus.json"  # the val scenes, with answers, for evaluation
BEHAVIOR = ("The ego vehicle is going straight. The ego vehicle is driving fast.",
            "The ego vehicle is steering to the left. The ego vehicle is driving with normal speed.",
            "The ego vehicle is steering to the right. The ego vehicle is driving with normal speed.",
            "The ego vehicle is going straight. The ego vehicle is slowing down.")
# (camera, category, status, description) of the key objects, cycled per key frame
OBJECTS = (("CAM_FRONT", "Vehicle", "Moving", "White sedan."), ("CAM_BACK", "Vehicle", "Stationary", "Red SUV."),
           ("CAM_FRONT_LEFT", "Traffic element", None, "Traffic cone."),
           ("CAM_FRONT_RIGHT", "Pedestrian", "Moving", "Adult in a black jacket."))


def _tag(j: int, camera: str, k: int, width: int, height: int) -> tuple[str, list[float]]:
    x, y = round(width * (0.2 + 0.15 * ((j + k) % 4)), 1), round(height * 0.55, 1)
    box = [round(x - width * 0.06, 1), round(y - height * 0.08, 1), round(x + width * 0.06, 1),
           round(y + height * 0.08, 1)]
    return f"<c{j + 1},{camera},{x},{y}>", box


def _qa(q: str, a: str) -> dict:
    return {"Q": q, "A": a, "C": None, "con_up": None, "con_down": None, "cluster": None, "layer": None}


def _key_frame(k: int, manoeuvre: int, paths: dict, size: tuple[int, int]) -> dict:
    objs = [OBJECTS[(k + j) % len(OBJECTS)] for j in range(3)]
    tags = [_tag(j, cam, k, *size) for j, (cam, *_rest) in enumerate(objs)]
    infos = {tag: {"Category": cat, "Status": status, "Visual_description": desc, "2d_bbox": box}
             for (tag, box), (_cam, cat, status, desc) in zip(tags, objs)}
    t1, t2 = tags[0][0], tags[1][0]
    return {
        "key_object_infos": infos,
        "QA": {
            "perception": [
                _qa("What are the important objects in the current scene? Those objects will be considered for the "
                    "future reasoning and driving decision.",
                    f"There is a {objs[0][3].lower().rstrip('.')} and a {objs[1][3].lower().rstrip('.')}. The IDs of "
                    f"these objects are {t1} and {t2}."),
                _qa(f"What is the moving status of object {t1}?", f"{objs[0][2] or 'Not moving'}."),
                _qa("What are objects to the front of the ego car?", "There is one car to the front of the ego car."),
            ],
            "prediction": [
                _qa(f"Is {t2} a traffic sign or a road barrier?", "No."),
                _qa(f"Would {t1} be in the moving direction of the ego vehicle?", "Yes." if k % 2 == 0 else "No."),
            ],
            "planning": [
                _qa(f"Is {t1} an object that the ego vehicle should consider in the current scene?", "Yes."),
                _qa(f"What actions could the ego vehicle take based on {t1}? Why take this action and what's the "
                    "probability?", "The action is to keep going at the same speed. The reason is that there is "
                    "no safety issue, high probability."),
            ],
            "behavior": [_qa("Predict the behavior of the ego vehicle.", BEHAVIOR[manoeuvre % len(BEHAVIOR)])],
        },
        "image_paths": paths,
    }


def make_drivelm_fixture(out: Path, scenes: int = 2, keyframes: int = 4, width: int = 320,
                         height: int = 180, seed: int = 0) -> Path:
    """Write the fixture under `out`; returns the JSON path (the --src to convert)."""
    out = Path(out)
    root = make_nuscenes_root(out / "nuscenes", version=VERSION, scenes_per_split=(scenes, 1),
                              keyframes=keyframes, width=width, height=height, objects=3, can_bus=False, seed=seed)
    tables = NuScenesTables(root, VERSION)
    train, val = (set(names) for names in official_scene_names(VERSION))
    path = _write_split(out / JSON_PATH, tables, train, width, height)
    _write_split(out / VAL_JSON_PATH, tables, val, width, height)
    return path


def _write_split(path: Path, tables: NuScenesTables, scene_names: set[str], width: int, height: int) -> Path:
    """One DriveLM QA file over the fixture's scenes of one nuScenes split."""
    data = {}
    for si, scene in enumerate(s for s in tables.scenes() if s["name"] in scene_names):
        frames = {}
        for k, sample in enumerate(tables.scene_samples(scene["token"])):
            if k % 2:
                continue
            sensors = tables.keyframe(sample)["sensors"]
            paths = {c: f"../nuscenes/{sensors[c]['filename']}" for c in NUSCENES_ORDER}
            frames[sample["token"]] = _key_frame(k, si, paths, (width, height))
        data[scene["token"]] = {"scene_description": f"The ego vehicle drives through {scene['name']}.",
                                "key_frames": frames}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4))
    return path


def jobs(name: str, out: Path) -> list[tuple[Path, DriveLMOptions]]:
    """The train file, and the val file (nuScenes val scenes) that evaluation reads."""
    train = DriveLMOptions(nuscenes_root=str(Path(out) / "nuscenes"))
    val = DriveLMOptions(nuscenes_root=train.nuscenes_root, drivelm_split="val")
    return [(make_drivelm_fixture(out), train), (Path(out) / VAL_JSON_PATH, val)]
