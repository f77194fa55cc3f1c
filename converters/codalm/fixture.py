"""A small CODA-LM root in its real layout: per-image annotation JSONs and CODA2022 images.

Layout, as CODA-LM's README sets it up: `<out>/CODA-LM/{Train,Val,Test,Mini}/<imgdir>_<imgid>.json`
beside `<out>/val/images/*.jpg` (Train's images) and `<out>/test/images/*.jpg` (Val/Test/Mini's).
Keys keep the spaces of the real files (`traffic signs`, `description and explanation`); Test
files have empty texts with real boxes, as released; Mini repeats one Val file. Images vary in
size like CODA's mixed sources. Deterministic.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from converters.codalm.converter import ANNOTATIONS, PERCEPTION_LISTS, SUMMARY
from converters.fixture_images import render_jpeg
from dataengine.converter import NoOptions

SIZES = ((640, 360), (560, 298), (800, 450))
# (category list, category_name of a region, description, explanation), cycled per image
OBJECTS = (
    ("vehicles", "bus", "A white bus stopped in the right lane ahead",
     "It blocks the lane, so the ego car may need to slow down or change lanes."),
    ("traffic cones", "traffic_cone", "Orange traffic cones narrowing the left lane",
     "They mark a work zone the ego car must steer around."),
    ("vulnerable_road_users", "pedestrian", "A pedestrian crossing in front of the parked cars",
     "The pedestrian may step into the ego car's path."),
    ("barriers", "barrier", "A concrete barrier on the right side of the road",
     "It limits the space available to the ego car."),
    ("other objects", "bollard", "A row of bollards separating the bicycle lane",
     "They keep the ego car out of the bicycle lane."),
)


def _annotation(i: int, size: tuple[int, int], empty: bool) -> dict:
    picked = [OBJECTS[(i + j) % len(OBJECTS)] for j in range(2)]
    general = {k: [] for k in PERCEPTION_LISTS}
    for cat, _name, desc, expl in picked:
        general[cat].append({"description": "" if empty else desc, "explanation": "" if empty else expl})
    general[SUMMARY] = "" if empty else " ".join(f"{d}. {e}" for _c, _n, d, e in picked)
    w, h = size
    regions = {}
    for j, (_cat, name, desc, expl) in enumerate(picked):
        x, y = int(w * (0.15 + 0.4 * j)), int(h * (0.45 + 0.05 * j))
        regions[str(j + 1)] = {SUMMARY: "" if empty else f"This is a {name.replace('_', ' ')}. {expl}",
                               "box": [x, y, int(w * 0.12), int(h * 0.2)], "category_name": name}
    suggestion = "" if empty else f"Slow down and keep a safe distance; {picked[0][3][0].lower()}{picked[0][3][1:]}"
    return {"general_perception": general, "region_perception": regions, "driving_suggestion": suggestion}


def make_codalm_root(out: Path, train: int = 3, val: int = 3, test: int = 2, seed: int = 0) -> Path:
    """Write a CODA-LM root under `out`; returns `out`."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    plan = ([("Train", "val", i + 1) for i in range(train)] + [("Val", "test", i + 1) for i in range(val)]
            + [("Test", "test", 101 + i) for i in range(test)])
    for n, (folder, imgdir, num) in enumerate(plan):
        size = SIZES[n % len(SIZES)]
        image = out / imgdir / "images" / f"{num:04d}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(render_jpeg(rng, *size, f"CODA {imgdir} {num:04d}", 85))
        ann = out / ANNOTATIONS / folder / f"{imgdir}_{num:04d}.json"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(json.dumps(_annotation(n, size, folder == "Test"), indent=4))
    if val:
        mini = out / ANNOTATIONS / "Mini" / "test_0001.json"
        mini.parent.mkdir(parents=True, exist_ok=True)
        mini.write_bytes((out / ANNOTATIONS / "Val" / "test_0001.json").read_bytes())
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, NoOptions]]:
    return [(make_codalm_root(out), NoOptions())]
