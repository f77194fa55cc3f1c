"""Streaming a large JSON table: same rows as a whole parse, whatever the chunk size; the
nuScenes table index keeps the large tables packed, and reads back the same rows."""
import json
import math

import pytest

from converters.nuscenes.tables import EGO_POSE_FIELDS, SAMPLE_DATA_FIELDS, NuScenesTables, PackedRows
from dataengine.errors import UsageError
from dataengine.json_rows import iter_rows


def test_same_rows_as_a_whole_parse_at_every_chunk_size(tmp_path):
    rows = [{"token": f"t{i}", "is_key_frame": i % 3 == 0, "xy": [i * 0.5, -i], "name": "a}{,\\\"b" * (i % 4)}
            for i in range(200)]
    rows[7]["v"] = float("nan")  # the devkit's json.load reads NaN, so must we
    path = tmp_path / "t.json"
    path.write_text(json.dumps(rows, indent=2))
    keep = lambda r: r["is_key_frame"]  # noqa: E731
    expected = [r for r in json.loads(path.read_text()) if keep(r)]
    for chunk in (1, 2, 7, 64, 1000, 1 << 20):  # every cut: inside values, gaps and commas
        got = [r for r in iter_rows(path, chunk_bytes=chunk) if keep(r)]
        assert json.dumps(got) == json.dumps(expected)
    assert math.isnan(next(r for r in iter_rows(path) if r["token"] == "t7")["v"])


@pytest.mark.parametrize("text", ['{"a": 1}', '[{"a": 1}, {"a": 2', '[{"a": 1}] x', "", '[{"a": 1},, {"a": 2}]',
                                  '[{"a": 1} {"a": 2}]', '[{"a": 1},]', '[, {"a": 1}]', '[{"a": 1}'])
def test_not_an_array_is_a_usage_error_naming_the_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UsageError, match="bad.json"):
        list(iter_rows(path, chunk_bytes=4))


def test_packed_tables_hold_the_rows_as_parsed(nuscenes_root):
    """The index built from 1 KB chunks is the one built from whole chunks, and its key-frame
    sample_data and poses read back as the JSON rows themselves (the fields kept)."""
    whole = NuScenesTables(nuscenes_root, "v1.0-mini")
    small = NuScenesTables(nuscenes_root, "v1.0-mini", chunk_bytes=1024)
    samples = whole.t["sample"]
    assert [small.keyframe(s) for s in samples] == [whole.keyframe(s) for s in samples]
    assert all(whole.keyframe(s)["annotations"] for s in samples[:3])
    raw = json.loads((nuscenes_root / "v1.0-mini" / "sample_data.json").read_text())
    kept = [{k: r[k] for k in SAMPLE_DATA_FIELDS if k in r} for r in raw if r["is_key_frame"]]
    assert list(whole.t["sample_data"]) == kept and len(kept) > 0
    poses = {p["token"]: p for p in json.loads((nuscenes_root / "v1.0-mini" / "ego_pose.json").read_text())}
    assert all(whole.by_token["ego_pose"][sd["ego_pose_token"]] == {k: poses[sd["ego_pose_token"]][k]
                                                                   for k in EGO_POSE_FIELDS} for sd in kept)


def test_packed_rows_keep_missing_fields_missing_and_nan():
    rows = [{"token": "a", "g": "s1", "x": [1, 2.5], "y": float("nan")}, {"token": "b", "g": "s1"}, {"token": "c", "g": "s2"}]
    packed = PackedRows(("token", "x", "y"), rows, group="g")
    back = list(packed)
    assert back[1:] == [{"token": "b"}, {"token": "c"}] and back[0]["x"] == [1, 2.5] and math.isnan(back[0]["y"])
    assert [r["token"] for r in packed.group("s1")] == ["a", "b"] and packed.group("none") == []
    assert "b" in packed.tokens() and packed.tokens()["c"] == {"token": "c"} and "z" not in packed.tokens()


def test_radar_key_frames_are_not_held(tmp_path, nuscenes_root):
    """Key frames of sensors no converter reads (radars) are dropped at load time; a key frame
    whose calibration is unknown is kept, to be reported as a broken link."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(nuscenes_root, root, symlinks=True)
    folder = root / "v1.0-mini"
    tables = {n: json.loads((folder / f"{n}.json").read_text()) for n in ("sensor", "calibrated_sensor", "sample_data")}
    radar = next(s for s in tables["sensor"] if s["channel"].startswith("RADAR"))
    calib = {**tables["calibrated_sensor"][0], "token": "r" * 32, "sensor_token": radar["token"]}
    key = tables["sample_data"][0]
    tables["calibrated_sensor"].append(calib)
    tables["sample_data"] += [{**key, "token": "d" * 32, "calibrated_sensor_token": calib["token"]},
                              {**key, "token": "u" * 32, "calibrated_sensor_token": "x" * 32}]
    for name, rows in tables.items():
        (folder / f"{name}.json").write_text(json.dumps(rows))
    index = NuScenesTables(root, "v1.0-mini")
    assert "d" * 32 not in index.by_token["sample_data"] and "u" * 32 in index.by_token["sample_data"]
    sample = next(s for s in index.t["sample"] if s["token"] == key["sample_token"])
    assert any("u" * 32 in p for p in index.keyframe(sample)["problems"])
