"""`dataengine show DIR KEY`: look at one sample the way the model will see it.

Prints the rendered conversation (placeholders placed by the chosen prompt style) and
writes a PNG contact sheet of the sample's images, each labelled with its camera and time
offset, in the order the placeholders take them: multi-view images in camera order
(wrapped at three per row), video layouts one row per camera with its frames in time
order. Each label starts with the number of the placeholder that image stands behind. 2D
boxes the sample carries (`objects[].box_2d`) are outlined in their camera.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

from dataengine.errors import UsageError
from dataengine.manifest import MANIFEST, dataset_splits
from dataengine.prompts import STYLES, media_groups, render
from dataengine.reader import DatasetReader, StoredSample

CELL_W = 320          # thumbnail width; height follows the tallest image's aspect ratio
IMAGE_COLUMNS = 3     # multi-view images per row (nuScenes: front row, back row)
PAD = 8
LABEL_H = 20
HEADER_H = 46        # two title lines
MIN_COLUMNS = 2       # a single image still leaves room for the title
BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
MUTED = (160, 160, 170)
BOX = (255, 200, 0)


def find_sample(root: Path, key: str) -> tuple[str, str, StoredSample]:
    """(dataset, split, sample) for `key`, searched across every manifest under root."""
    splits = dataset_splits(root)
    if not splits:
        raise UsageError(f"{root}: no <dataset>/<split>/{MANIFEST} found")
    for dataset, split in splits:
        keys = pq.read_table(Path(root) / dataset / split / MANIFEST, columns=["key"]).column("key")
        if key in set(keys.to_pylist()):
            return dataset, split, DatasetReader(root, dataset, split).get(key)
    raise UsageError(f"no sample {key!r} in any manifest under {root} ({len(splits)} dataset/splits searched)")


def sheet_grid(sample: dict) -> list[list[int]]:
    """Rows of media indices: images wrapped at IMAGE_COLUMNS, or one row per video camera."""
    groups, _, _ = media_groups(sample)
    if sample["layout"] in ("video", "multi_view_video"):
        return groups
    order = [i for g in groups for i in g]
    return [order[i:i + IMAGE_COLUMNS] for i in range(0, len(order), IMAGE_COLUMNS)]


def cell_height(sample: dict) -> int:
    return max((round(CELL_W * m["height"] / m["width"]) for m in sample["media"]), default=0)


def sheet_size(rows: int, columns: int, cell_h: int) -> tuple[int, int]:
    return PAD + max(columns, MIN_COLUMNS) * (CELL_W + PAD), HEADER_H + rows * (cell_h + LABEL_H + PAD) + PAD


def _label(number: int, item: dict) -> str:
    source = f" ({item['source_camera']})" if item["source_camera"] != item["camera"] else ""
    return f"{number}: {item['camera']}{source}  t={item['time_offset_s']:+.3f} s"


def _boxes(sample: dict, index: int) -> list[tuple[str, list[float]]]:
    """(name, xyxy) of every 2D box in this image's camera; the name is the object's `label`
    (how the text refers to it, e.g. DriveLM's `c1`) or the last part of its category."""
    camera = sample["media"][index]["camera"]
    return [(obj.get("label") or obj["category"].split(".")[-1], view["xyxy"])
            for obj in sample.get("objects", []) for view in obj.get("box_2d", []) if view["camera"] == camera]


def _thumbnail(stored: StoredSample, index: int, font) -> Image.Image:
    item = stored.sample["media"][index]
    size = (CELL_W, round(CELL_W * item["height"] / item["width"]))
    img = stored.image(index, size)
    scale = CELL_W / item["width"]
    draw = ImageDraw.Draw(img)
    for name, (x0, y0, x1, y1) in _boxes(stored.sample, index):
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale, y1 * scale], outline=BOX, width=2)
        tx = min(max(x0 * scale, 0), img.width - 40)
        ty = max(y0 * scale - 15, 0)
        draw.rectangle(draw.textbbox((tx, ty), name, font=font), fill=BACKGROUND)
        draw.text((tx, ty), name, fill=BOX, font=font)
    return img


def contact_sheet(stored: StoredSample, title: tuple[str, str]) -> Image.Image:
    """The sample's images on a labelled grid (see sheet_grid)."""
    grid, cell_h = sheet_grid(stored.sample), cell_height(stored.sample)
    width, height = sheet_size(len(grid), max((len(r) for r in grid), default=0), cell_h)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=13)
    draw.text((PAD, 6), title[0], fill=TEXT, font=font)
    draw.text((PAD, 25), title[1], fill=MUTED, font=small)
    placeholder = {i: n + 1 for n, group in enumerate(media_groups(stored.sample)[0]) for i in group}
    for r, row in enumerate(grid):
        top = HEADER_H + r * (cell_h + LABEL_H + PAD)
        for c, index in enumerate(row):
            left = PAD + c * (CELL_W + PAD)
            thumb = _thumbnail(stored, index, small)
            sheet.paste(thumb, (left, top + (cell_h - thumb.height) // 2))
            label = _label(placeholder[index], stored.sample["media"][index])
            draw.text((left + 2, top + cell_h + 3), label, fill=MUTED, font=small)
    return sheet


def format_conversation(conversation: list[dict]) -> str:
    return "\n\n".join(f"[{turn['role']}]\n{turn['content']}" for turn in conversation)


def show(root: Path, key: str, style: str, out: Path) -> str:
    """Write the contact sheet to `out`; returns the text to print."""
    dataset, split, stored = find_sample(Path(root), key)
    sample = stored.sample
    rendered = render(sample, style)
    title = (key, f"{dataset}/{split}   task {sample['task']}   layout {sample['layout']}   "
                  f"{len(sample['media'])} images")
    contact_sheet(stored, title).save(out, format="PNG")
    header = f"{key}: {dataset}/{split}, task {sample['task']}, layout {sample['layout']}, style {style}"
    return f"{header}\n\n{format_conversation(rendered.conversation)}\n\ncontact sheet: {out}"


def _cmd_show(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(f"{args.key}.png")
    print(show(Path(args.dir), args.key, args.style, out))
    return 0


def add_parser(sub) -> None:
    """The `show` subcommand (called by dataengine.cli.build_parser)."""
    p = sub.add_parser("show", help="print a sample's rendered prompt and answer; write a PNG contact sheet")
    p.add_argument("dir", help="shard root (searched across every dataset/split manifest)")
    p.add_argument("key", help="the sample key")
    p.add_argument("--style", default="robotron", choices=sorted(STYLES), help="prompt style (default robotron)")
    p.add_argument("--out", default=None, help="contact sheet PNG (default <KEY>.png)")
    p.set_defaults(fn=_cmd_show)
