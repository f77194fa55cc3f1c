"""Streaming a large JSON table: same rows as a whole parse, whatever the chunk size."""
import json
import math

import pytest

from converters.nuscenes.tables import NuScenesTables
from dataengine.errors import UsageError
from dataengine.json_rows import stream_rows


def test_same_rows_as_a_whole_parse_at_every_chunk_size(tmp_path):
    rows = [{"token": f"t{i}", "is_key_frame": i % 3 == 0, "xy": [i * 0.5, -i], "name": "a}{,\\\"b" * (i % 4)}
            for i in range(200)]
    rows[7]["v"] = float("nan")  # the devkit's json.load reads NaN, so must we
    path = tmp_path / "t.json"
    path.write_text(json.dumps(rows, indent=2))
    keep = lambda r: r["is_key_frame"]  # noqa: E731
    expected = [r for r in json.loads(path.read_text()) if keep(r)]
    for chunk in (1, 2, 7, 64, 1000, 1 << 20):  # every cut: inside values, gaps and commas
        got = stream_rows(path, keep, chunk_chars=chunk)
        assert json.dumps(got) == json.dumps(expected)
    assert math.isnan(stream_rows(path, lambda r: r["token"] == "t7")[0]["v"])


@pytest.mark.parametrize("text", ['{"a": 1}', '[{"a": 1}, {"a": 2', '[{"a": 1}] x', "", '[{"a": 1},, {"a": 2}]',
                                  '[{"a": 1} {"a": 2}]', '[{"a": 1},]', '[, {"a": 1}]', '[{"a": 1}'])
def test_not_an_array_is_a_usage_error_naming_the_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UsageError, match="bad.json"):
        stream_rows(path, lambda r: True, chunk_chars=4)


def test_streamed_tables_equal_whole_tables(nuscenes_root):
    """The table index built by streaming (forced with a zero threshold) is the one built
    from whole parses: same key frames, same poses, same keyframe records."""
    whole = NuScenesTables(nuscenes_root, "v1.0-mini")
    streamed = NuScenesTables(nuscenes_root, "v1.0-mini", stream_bytes=0)
    assert streamed.t["sample_data"] == whole.t["sample_data"] and streamed.t["ego_pose"] == whole.t["ego_pose"]
    assert len(whole.t["sample_data"]) > 0
    samples = whole.t["sample"]
    assert [streamed.keyframe(s) for s in samples] == [whole.keyframe(s) for s in samples]
