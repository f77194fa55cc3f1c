"""A small DriveBench data folder in the official layout (`docs/DATA_PREPAER.md` of
worldbench/drivebench @ 723908f): `drivebench-test.json`, `bright.json`, `nuscenes/samples/`,
`corruption/Bright/` and `corruption/Fog/` (Fog without a JSON of its own, so it reads the
test file, as the inference script does), and `visual_description.json`.

The nuScenes root is generated exactly as DriveLM's fixture generates it (same scenes, same
tokens), and the questions are asked on DriveLM's key frames (every other key frame of each
scene), so the leakage audit finds the frames DriveLM's train file shares with DriveBench,
as it would on the real data. Per key frame: a perception MCQ (moving status, tag 0), a
perception VQA (important objects, tag 2), a prediction VQA (tag 3), a planning VQA (tag 1)
and a behavior MCQ (tag 0), with DriveBench's normalized object coordinates. Corrupted
images are the clean ones brightened or fogged. Deterministic.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, ImageEnhance

from converters.drivebench.converter import DESCRIPTIONS, TEST_JSON, DriveBenchOptions
from converters.drivelm.fixture import BEHAVIOR, VERSION, _key_frame
from converters.nuscenes.fixture import make_nuscenes_root
from converters.nuscenes.tables import NUSCENES_ORDER, NuScenesTables

SIZE = (320, 180)
STATUS = ("Going ahead.", "Turn left.", "Turn right.", "Stopped.")
CORRUPT = {"Bright": lambda im: ImageEnhance.Brightness(im).enhance(1.8),
           "Fog": lambda im: Image.blend(im, Image.new("RGB", im.size, (200, 200, 200)), 0.55)}


def _normalized(tag: str) -> str:
    """DriveLM's pixel tag `<c1,CAM_X,x,y>` with x, y divided by the image size, as DriveBench writes it."""
    ident, cam, x, y = tag.strip("<>").split(",")
    return f"<{ident},{cam},{float(x) / SIZE[0]:.4f},{float(y) / SIZE[1]:.4f}>"


def _options(choices: tuple[str, ...], right: int) -> tuple[str, str]:
    """(the options text, the right letter); the right answer is moved to `right`."""
    letters = "ABCD"
    return " ".join(f"{letters[i]}. {c}" for i, c in enumerate(choices)), letters[right]


def _questions(scene: str, frame: str, k: int, infos: dict, paths: dict) -> list[dict]:
    tags = list(infos)
    t1, t2 = _normalized(tags[0]), _normalized(tags[1])
    status = STATUS if infos[tags[0]]["Status"] == "Moving" else STATUS[::-1]
    mcq, right = _options(status, 0 if status is STATUS else 3)
    beh = tuple(BEHAVIOR[(k + i) % len(BEHAVIOR)] for i in range(4))
    beh_text, beh_right = _options(beh, 0)
    base = {"scene_token": scene, "frame_token": frame, "image_path": paths}
    return [
        {**base, "question_type": "perception", "tag": [0], "answer": right,
         "question": f"What is the moving status of object {t1}? Please select the correct answer from the following "
                     f"options: {mcq}"},
        {**base, "question_type": "perception", "tag": [2],
         "question": "What are the important objects in the current scene? Those objects will be considered for the "
                     "future reasoning and driving decision.",
         "answer": f"There is a {infos[tags[0]]['Visual_description'].lower().rstrip('.')} to the "
                   f"{tags[0].split(',')[1][4:].lower().replace('_', ' ')} of the ego car. "
                   f"The ID of this object is {t1}."},
        {**base, "question_type": "prediction", "tag": [3],
         "question": f"What object should the ego vehicle notice first when the ego vehicle is getting to the next "
                     f"possible location? What is the state of the object that is first noticed by the ego vehicle "
                     f"and what action should the ego vehicle take? Consider {t1} and {t2}.",
         "answer": f"Firstly notice {t1}. The object is {infos[tags[0]]['Status'] or 'static'}, so the ego vehicle "
                   "should keep going ahead at the same speed."},
        {**base, "question_type": "planning", "tag": [1],
         "question": f"What actions could the ego vehicle take based on {t1}? Why take this action and what's the "
                     "probability?",
         "answer": "The action is to keep going at the same speed. The reason is that there is no safety issue, "
                   "high probability."},
        {**base, "question_type": "behavior", "tag": [0], "answer": beh_right,
         "question": f"Predict the behavior of the ego vehicle. Please select the correct answer from the following "
                     f"options: {beh_text}"},
    ]


def _corrupt(root: Path, out: Path, rel: str, folder: str) -> None:
    """corruption/<folder>/CAM_X/<file>: the clean image with the corruption applied."""
    target = out / "corruption" / folder / Path(rel).relative_to("samples")
    target.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    CORRUPT[folder](Image.open(root / rel).convert("RGB")).save(buf, format="JPEG", quality=85)
    target.write_bytes(buf.getvalue())


def make_drivebench_fixture(out: Path, scenes: int = 2, keyframes: int = 4, seed: int = 0) -> Path:
    """Write the data folder `out` (the --src to convert) and return it."""
    out = Path(out)
    root = make_nuscenes_root(out / "nuscenes", version=VERSION, scenes_per_split=(scenes, 1),
                              keyframes=keyframes, width=SIZE[0], height=SIZE[1], objects=3, can_bus=False, seed=seed)
    tables = NuScenesTables(root, VERSION)
    records, descriptions = [], {}
    for si, scene in enumerate(tables.scenes()):
        frames = {}
        for k, sample in enumerate(tables.scene_samples(scene["token"])):
            if k % 2:
                continue
            sensors = tables.keyframe(sample)["sensors"]
            rels = {c: sensors[c]["filename"] for c in NUSCENES_ORDER}
            infos = _key_frame(k, si, {}, SIZE)["key_object_infos"]
            frames[sample["token"]] = {"key_object_infos": infos}
            paths = {c: f"data/nuscenes/{rel}" for c, rel in rels.items()}
            records += _questions(scene["token"], sample["token"], k, infos, paths)
            for rel in rels.values():
                for folder in CORRUPT:
                    _corrupt(root, out, rel, folder)
        descriptions[scene["token"]] = {"scene_description": f"The ego vehicle drives through {scene['name']}.",
                                        "key_frames": frames}
    (out / TEST_JSON).write_text(json.dumps(records, indent=4))
    # the corruption's own file: its paths already point at corruption/Bright/, every other record
    bright = [{**r, "image_path": {c: p.replace("nuscenes/samples", "corruption/Bright")
                                   for c, p in r["image_path"].items()}} for r in records[::2]]
    (out / "bright.json").write_text(json.dumps(bright, indent=4))
    (out / DESCRIPTIONS).write_text(json.dumps(descriptions, indent=4))
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, DriveBenchOptions]]:
    """Every setting of the fixture (clean, bright, fog, text_only) in one conversion."""
    return [(make_drivebench_fixture(out), DriveBenchOptions())]
