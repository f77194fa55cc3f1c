"""`dataengine show`: the rendered prompt printed, the contact sheet laid out as the placeholders go."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from dataengine.cli import main as cli
from dataengine.reader import DatasetReader, StoredSample
from dataengine.show import CELL_W, HEADER_H, LABEL_H, PAD, contact_sheet, sheet_grid

MULTI_VIEW_PREFIX = ("1: <image> 2: <image> 3: <image> 4: <image> 5: <image> 6: <image>. These six images are the "
                     "front view, front left view, front right view, back view, back left view and back right view "
                     "of the ego vehicle. ")


@pytest.fixture(scope="module")
def first_nuscenes(nuscenes_shards) -> StoredSample:
    reader = DatasetReader(nuscenes_shards, "nuscenes", "val")
    return reader.get(reader.keys()[0])


def _cell(sheet: Image.Image, row: int, col: int, cell_h: int) -> np.ndarray:
    left, top = PAD + col * (CELL_W + PAD), HEADER_H + row * (cell_h + LABEL_H + PAD)
    return np.asarray(sheet.crop((left, top, left + CELL_W, top + cell_h)), dtype=float)


def test_show_prints_prompt_and_answer_and_writes_the_sheet(nuscenes_shards, first_nuscenes, tmp_path, capsys):
    key, sample = first_nuscenes.key, first_nuscenes.sample
    png = tmp_path / "sheet.png"
    assert cli(["show", str(nuscenes_shards), key, "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"[user]\n{MULTI_VIEW_PREFIX}{sample['conversations'][0]['content']}\n" in out
    assert f"[assistant]\n{sample['conversations'][1]['content']}\n" in out
    assert "nuscenes/val" in out and str(png) in out
    sheet = Image.open(png)
    # 6 cameras of 320x180: 2 rows x 3 columns of 320-px cells, 180 px high, under a 46-px title
    assert sheet.size == (PAD + 3 * (CELL_W + PAD), HEADER_H + 2 * (180 + LABEL_H + PAD) + PAD) == (992, 470)
    # each cell holds the image its placeholder stands for: row 2 starts with the back camera (img3)
    thumbs = [np.asarray(first_nuscenes.image(j, (CELL_W, 180)), dtype=float) for j in range(6)]
    for index, (row, col) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]):
        errors = [np.abs(_cell(sheet, row, col, 180) - thumb).mean() for thumb in thumbs]
        assert int(np.argmin(errors)) == index and errors[index] < 12, errors  # box outlines and labels are drawn on top


def test_show_style_and_default_output_name(nuscenes_shards, first_nuscenes, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(["show", str(nuscenes_shards), first_nuscenes.key, "--style", "camera_tags"]) == 0
    assert "[user]\n[front image] <image>\n[front left image] <image>\n" in capsys.readouterr().out
    assert (tmp_path / f"{first_nuscenes.key}.png").is_file()


def test_show_unknown_key_or_style_or_root_exits_2(nuscenes_shards, tmp_path, capsys):
    assert cli(["show", str(nuscenes_shards), "nuscenes-nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "no sample 'nuscenes-nope' in any manifest" in capsys.readouterr().err
    assert cli(["show", str(tmp_path), "nuscenes-nope"]) == 2
    assert "no <dataset>/<split>/manifest.parquet found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli(["show", str(nuscenes_shards), "nuscenes-nope", "--style", "llava"])
    assert exc.value.code == 2
    assert not (tmp_path / "x.png").exists()


def _jpeg(shade: int, width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (shade, shade, shade)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _video_sample(layout: str, views: list[tuple[str, float]], width: int = 160, height: int = 90) -> StoredSample:
    blobs = [_jpeg(20 + 30 * i, width, height) for i in range(len(views))]
    media = [{"member": f"img{i}.jpg", "camera": cam, "source_camera": cam, "time_offset_s": t, "width": width,
              "height": height, "sha1": hashlib.sha1(b).hexdigest()}
             for i, ((cam, t), b) in enumerate(zip(views, blobs))]
    sample = {"id": "v", "layout": layout, "task": "t", "media": media, "conversations": []}
    return StoredSample("v", sample, {m["member"]: b for m, b in zip(media, blobs)})


def test_grid_rows_follow_the_placeholders():
    single = _video_sample("single_image", [("front", 0.0)]).sample
    assert sheet_grid(single) == [[0]]
    video = _video_sample("video", [("front", -1.0), ("front", 0.0), ("front", -2.0)]).sample
    assert sheet_grid(video) == [[2, 0, 1]]
    mvv = _video_sample("multi_view_video", [("front", -0.5), ("back", -0.5), ("front", 0.0), ("back", 0.0)]).sample
    assert sheet_grid(mvv) == [[0, 2], [1, 3]]
    seven = _video_sample("multi_view", [("front", 0.0)] * 7).sample
    assert sheet_grid(seven) == [[0, 1, 2], [3, 4, 5], [6]]


def test_video_sheet_is_one_row_in_time_order():
    stored = _video_sample("video", [("front", -1.0), ("front", 0.0), ("front", -2.0), ("front", -1.5)])
    sheet = contact_sheet(stored, ("v", "video"))
    cell_h = round(CELL_W * 90 / 160)
    assert sheet.size == (PAD + 4 * (CELL_W + PAD), HEADER_H + cell_h + LABEL_H + 2 * PAD)
    shades = [_cell(sheet, 0, c, cell_h)[10:-10, 10:-10].mean() for c in range(4)]
    assert shades == pytest.approx([20 + 30 * i for i in (2, 3, 0, 1)], abs=3)  # oldest frame first
