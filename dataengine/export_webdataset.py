"""`dataengine export-webdataset DIR --out DIR`: self-contained WebDataset shards.

Our shards keep each image once in the root's media store and samples name it by sha1;
a user who streams with plain `webdataset` (no project code) needs the bytes inline. Each
dataset/split becomes `<out>/<dataset>/<split>/shard-NNNNNN.tar` holding, per sample, its
`<key>.json` (the sample as stored) followed by `<key>.<member>` for each media item
(`<key>.img0.jpg`: WebDataset's key is the name up to the first dot, so the sample's
fields are `json`, `img0.jpg`, ...), the bytes copied unchanged from the store (checked
against their sha1). The tar is written as the shard writer writes ours: deterministic,
the same root gives the same bytes. An image shared by several samples is repeated, which
is what self-contained means.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from dataengine.errors import UsageError, ValidationError
from dataengine.jsonfile import write_json
from dataengine.manifest import MANIFEST, dataset_splits
from dataengine.reader import DatasetReader, StoredSample
from dataengine.shards import TarShardWriter, sample_json

EXPORT_FORMAT = "webdataset-inline/1"


@dataclass(frozen=True)
class WebDatasetExportConfig:
    root: Path
    """Shard root holding `<dataset>/<split>/manifest.parquet` and `media/`."""
    out: Path
    """Export directory: `<dataset>/<split>/shard-NNNNNN.tar` and `export.json`."""
    shard_mb: float = 256
    """Target shard size in MB."""


def sample_members(stored: StoredSample) -> list[tuple[str, bytes]]:
    """The tar members of one self-contained sample: its JSON, then each image inline."""
    members = [(f"{stored.key}.json", sample_json(stored.sample))]
    for i, item in enumerate(stored.sample.get("media", [])):
        blob = stored.media_bytes(i)
        if hashlib.sha1(blob).hexdigest() != item["sha1"]:
            raise ValidationError(f"sample {stored.key}: {item['member']} does not match its sha1")
        members.append((f"{stored.key}.{item['member']}", blob))
    return members


def export_split(cfg: WebDatasetExportConfig, dataset: str, split: str) -> dict:
    """Write one dataset/split's shards; returns its counts."""
    directory = Path(cfg.out) / dataset / split
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("shard-*.tar"):  # a re-export with fewer shards leaves none behind
        old.unlink()
    writer = TarShardWriter(directory, ".part", int(cfg.shard_mb * 1024 * 1024))
    counts = {"dataset": dataset, "split": split, "samples": 0, "images": 0, "bytes": 0}
    for stored in DatasetReader(cfg.root, dataset, split):
        members = sample_members(stored)
        writer.write_members(members)
        counts["samples"] += 1
        counts["images"] += len(members) - 1
    writer.close()
    shards = []
    for n, part in enumerate(writer.parts):
        final = directory / f"shard-{n:06d}.tar"
        os.replace(part, final)
        shards.append(final.name)
        counts["bytes"] += final.stat().st_size
    counts["shards"] = shards
    return counts


def check_config(cfg: WebDatasetExportConfig) -> list[tuple[str, str]]:
    """Everything that can be checked before writing; returns the dataset/splits to export."""
    root = Path(cfg.root)
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    if cfg.shard_mb <= 0:
        raise UsageError("--shard-mb must be positive")
    splits = dataset_splits(root)
    if not splits:
        raise UsageError(f"{root}: no <dataset>/<split>/{MANIFEST} found; convert a dataset first")
    out = Path(cfg.out).resolve()
    if out == root.resolve() or root.resolve() in out.parents:
        raise UsageError("--out must be a directory outside the shard root")
    return splits


def export(cfg: WebDatasetExportConfig) -> list[dict]:
    """Export every dataset/split; writes `export.json` describing the shards last."""
    splits = check_config(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    files = [export_split(cfg, dataset, split) for dataset, split in splits]
    write_json(Path(cfg.out) / "export.json", {
        "format": EXPORT_FORMAT, "splits": files,
        "created_by": f"dataengine export-webdataset {cfg.root} --out {cfg.out} --shard-mb {cfg.shard_mb:g}"})
    return files


def main(cfg: WebDatasetExportConfig) -> int:
    for c in export(cfg):
        shards = c["shards"] or ["(no shard)"]
        first, last = shards[0], shards[-1]
        pattern = first if first == last else f"shard-{{{first[6:12]}..{last[6:12]}}}.tar"
        print(f"{c['dataset']}/{c['split']}: {c['samples']} samples, {c['images']} images inline, "
              f"{c['bytes'] / 1e6:.1f} MB -> {Path(cfg.out) / c['dataset'] / c['split'] / pattern}")
    return 0
