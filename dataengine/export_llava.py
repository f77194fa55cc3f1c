"""`dataengine export-llava DIR --out DIR`: shards as the LLaVA-NeXT training format.

So the original LLaVA-NeXT code (`LLaVA-VL/LLaVA-NeXT:llava/train/train.py`,
`LazySupervisedDataset`) can train on our data unchanged. Its conventions, which this
module follows (see docs/export.md):
  - `--data_path` is a JSON list of records; `--image_folder` is the root that every
    record's image path is joined to; the brace form `out/{a_train,b_train}.json` loads
    several files, hence one flat `<dataset>_<split>.json` per dataset/split;
  - `image` is one path (processed with the run's `image_aspect_ratio`, e.g. anyres) or a
    list of paths (multi-image: every image padded to one square crop); each `<image>` in
    the text consumes the next image of the list, so their counts must match;
  - `conversations` is a list of `{"from": "human"|"gpt", "value": str}`.
LLaVA-NeXT reads a `video` only as one video file (decord), and our video frames are JPEG
stills that are never re-encoded, so a video sample exports its frames as a multi-image
list in time order and its one video placeholder becomes one `<image>` per frame;
`frame_groups` records which images form each video for loaders that pool frames.

Image bytes are copied from the shard root's media store as they are (checked against their
sha1), each image once, to `images/<sha1[:2]>/<sha1>.<ext>`: a camera frame that nuScenes,
DriveLM and nuScenes-QA samples all show is one file, as in LLaVA-NeXT's own image folders.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from dataengine.errors import UsageError, ValidationError
from dataengine.jsonfile import write_json
from dataengine.manifest import MANIFEST, dataset_splits
from dataengine.prompts import STYLES, render
from dataengine.reader import DatasetReader, StoredSample

PLACEHOLDER = "<image>"   # LLaVA-NeXT's DEFAULT_IMAGE_TOKEN
SPEAKERS = {"user": "human", "assistant": "gpt"}
IMAGES = "images"
EXPORT_FORMAT = "llava-next/1"
_SENTINEL = "\x00dataengine-image\x00"  # cannot occur in sample text: schema text is JSON strings of prose


@dataclass(frozen=True)
class ExportConfig:
    root: Path
    """Shard root holding `<dataset>/<split>/manifest.parquet`."""
    out: Path
    """Export directory: `<dataset>_<split>.json` files, `images/`, `export.json`."""
    style: str = "robotron"
    """Prompt style of `dataengine.prompts` that places the `<image>` placeholders."""


def image_path(item: dict) -> str:
    """Where a media item's image goes, relative to the export directory (LLaVA-NeXT's
    --image_folder): named by its sha1, so every sample showing it shares one file."""
    return f"{IMAGES}/{item['sha1'][:2]}/{item['sha1']}.{item['member'].rpartition('.')[2]}"


def _expand(text: str, groups: list[list[int]]) -> str:
    """Replace the renderer's i-th placeholder by one `<image>` per image of group i."""
    pieces = text.split(_SENTINEL)
    if len(pieces) - 1 not in (0, len(groups)):
        raise ValueError(f"rendered text has {len(pieces) - 1} placeholders for {len(groups)} media groups")
    out = [pieces[0]]
    for group, piece in zip(groups, pieces[1:]):
        out += [PLACEHOLDER * len(group), piece]
    return "".join(out)


def llava_record(sample: dict, style: str) -> tuple[dict, list[int]]:
    """The LLaVA-NeXT record of a sample, and the media indices in the order of its images."""
    rendered = render(sample, style=style, placeholder=_SENTINEL)
    order = [i for group in rendered.groups for i in group]
    media = sample["media"]
    record: dict = {"id": sample["id"]}
    paths = [image_path(media[i]) for i in order]
    if paths:
        record["image"] = paths[0] if len(paths) == 1 else paths
    record["conversations"] = [{"from": SPEAKERS[t["role"]], "value": _expand(t["content"], rendered.groups)}
                               for t in rendered.conversation]
    record.update({"dataset": sample["dataset"], "split": sample["split"], "task": sample["task"],
                   "layout": sample["layout"], "cameras": [media[i]["camera"] for i in order]})
    if "video" in rendered.kinds:
        starts = [sum(len(g) for g in rendered.groups[:k]) for k in range(len(rendered.groups))]
        record["frame_groups"] = [list(range(s, s + len(g))) for s, g in zip(starts, rendered.groups)]
    return record, order


def _copy_images(stored: StoredSample, order: list[int], out: Path) -> int:
    """Write the images not yet in the export (atomically, so a present file is whole);
    returns how many were written."""
    media, written = stored.sample["media"], 0
    for i in order:
        path = out / image_path(media[i])
        if path.exists():
            continue
        blob = stored.media_bytes(i)
        if hashlib.sha1(blob).hexdigest() != media[i]["sha1"]:
            raise ValidationError(f"sample {stored.key}: {media[i]['member']} does not match its sha1")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        written += 1
    return written


def _records(cfg: ExportConfig, dataset: str, split: str, counts: dict) -> Iterator[dict]:
    for stored in DatasetReader(cfg.root, dataset, split):
        record, order = llava_record(stored.sample, cfg.style)
        counts["files_written"] += _copy_images(stored, order, Path(cfg.out))
        counts["records"] += 1
        counts["images"] += len(order)
        yield record


def export_split(cfg: ExportConfig, dataset: str, split: str) -> dict:
    """Stream one dataset/split into `<out>/<dataset>_<split>.json` (a JSON list, one record per line)."""
    counts = {"dataset": dataset, "split": split, "file": f"{dataset}_{split}.json", "records": 0, "images": 0,
              "files_written": 0}
    with open(Path(cfg.out) / counts["file"], "w") as f:
        f.write("[")
        for n, record in enumerate(_records(cfg, dataset, split, counts)):
            f.write(("\n" if n == 0 else ",\n") + json.dumps(record))
        f.write("\n]\n")
    return counts


def check_config(cfg: ExportConfig) -> list[tuple[str, str]]:
    """Everything that can be checked before writing; returns the dataset/splits to export."""
    if cfg.style not in STYLES:
        raise UsageError(f"--style {cfg.style!r} is unknown; known: {', '.join(STYLES)}")
    root = Path(cfg.root)
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    splits = dataset_splits(root)
    if not splits:
        raise UsageError(f"{root}: no <dataset>/<split>/{MANIFEST} found; convert a dataset first")
    if Path(cfg.out).resolve() == root.resolve():
        raise UsageError("--out must be a directory other than the shard root")
    return splits


def export(cfg: ExportConfig) -> list[dict]:
    """Export every dataset/split; writes `export.json` describing the files last."""
    splits = check_config(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    files = [export_split(cfg, dataset, split) for dataset, split in splits]
    write_json(Path(cfg.out) / "export.json", {
        "format": EXPORT_FORMAT, "style": cfg.style, "placeholder": PLACEHOLDER, "image_folder": ".",
        "files": [{k: v for k, v in f.items() if k != "files_written"} for f in files],  # run-dependent
        "created_by": f"dataengine export-llava {cfg.root} --out {cfg.out} --style {cfg.style}"})
    return files


def main(cfg: ExportConfig) -> int:
    for c in export(cfg):
        print(f"{c['dataset']}/{c['split']}: {c['records']} records, {c['images']} images "
              f"({c['files_written']} new image files) -> {Path(cfg.out) / c['file']}")
    return 0
