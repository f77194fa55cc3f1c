"""The trainval-scale generator (benchmarks/trainval_root.py) writes trainval's table ratios in
the devkit's format, and the table index holds it packed: a few KB per key frame, where the
parsed rows took over 100 KB."""
from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from converters.nuscenes.tables import LIDAR, NUSCENES_ORDER, NuScenesTables

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from trainval_root import KEYFRAMES, make_trainval_root  # noqa: E402

SCENES = 2


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("trainval") / "root"
    return out, make_trainval_root(out, scenes=SCENES)


def test_tables_have_trainval_ratios_and_the_devkit_loads_them(root):
    from nuscenes import NuScenes

    path, counts = root
    keyframes = SCENES * KEYFRAMES
    assert counts["sample"] == keyframes and counts["scene"] == SCENES
    assert counts["sample_data"] == counts["ego_pose"] == 77 * keyframes  # trainval: 2.63M / 34,149
    assert 30 <= counts["sample_annotation"] / keyframes <= 40  # trainval: 1.17M / 34,149 = 34
    assert counts["images"] == 6 * keyframes == len(list((path / "samples").rglob("*.jpg")))
    nusc = NuScenes(version="v1.0-trainval", dataroot=str(path), verbose=False)
    sample = nusc.sample[5]
    assert set(sample["data"]) == {LIDAR, *NUSCENES_ORDER, "RADAR_FRONT", "RADAR_FRONT_LEFT", "RADAR_FRONT_RIGHT",
                                   "RADAR_BACK_LEFT", "RADAR_BACK_RIGHT"}
    sd = nusc.get("sample_data", sample["data"]["CAM_FRONT"])
    assert sd["is_key_frame"] and (path / sd["filename"]).is_file()
    sweep = nusc.get("sample_data", sd["next"])
    assert not sweep["is_key_frame"] and sweep["filename"].startswith("sweeps/")
    ann = nusc.get("sample_annotation", sample["anns"][0])
    assert nusc.get("instance", ann["instance_token"])["nbr_annotations"] >= 8


def test_the_index_holds_key_frames_in_a_few_kb_each(root):
    path, _ = root
    tracemalloc.start()
    try:
        tables = NuScenesTables(path, "v1.0-trainval", chunk_bytes=256 * 1024)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    keyframes = len(tables.t["sample"])
    assert held / keyframes < 30_000  # parsed dicts of the same rows: ~120 KB per key frame
    assert len(tables.t["sample_data"]) == 7 * keyframes  # radars and sweeps dropped
    frame = tables.keyframe(tables.t["sample"][3])
    assert frame["problems"] == [] and set(frame["sensors"]) == {LIDAR, *NUSCENES_ORDER}
    assert len(frame["annotations"]) > 10
