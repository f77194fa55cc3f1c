"""A shard root as an HF `datasets.IterableDataset`: typed features, images decoded on access.

For users of the HF ecosystem (`Trainer`, `.map`, `.filter`, `.shuffle`, a `DataLoader`),
with no loader of ours. Each row is one sample: its ids, task and layout, the conversation
as `{role, content}` turns, `images` (an HF `Image` list: the store's bytes, decoded to PIL
only when the row is formatted, or kept as bytes after `cast_column("images",
List(Image(decode=False)))`), per image its camera and time offset, and `sample`, the whole
sample JSON (meta, ego, trajectory, objects stay available without a column each).

The generator's `shards` argument is a list of shard files, so `datasets` splits it across
DataLoader workers and `num_shards` equals the number of shard files; order is the
manifest's (deterministic) unless the user shuffles.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from dataengine.errors import UsageError
from dataengine.manifest import MANIFEST, dataset_splits, read_manifest
from dataengine.mediastore import MediaStore
from dataengine.reader import iter_shard

TEXT_FIELDS = ("key", "dataset", "split", "task", "layout", "scene_id", "frame_id")


def features():
    import datasets

    text = datasets.Value("string")
    return datasets.Features({
        **{name: text for name in TEXT_FIELDS},
        "conversations": datasets.List({"role": text, "content": text}),
        "images": datasets.List(datasets.Image()),
        "cameras": datasets.List(text),
        "time_offsets_s": datasets.List(datasets.Value("float64")),
        "sample": text,
    })


def row(key: str, sample: dict, media_bytes) -> dict:
    """One sample as a row of `features()`; `media_bytes(i)` reads image i from the store."""
    media = sample.get("media", [])
    return {
        "key": key, **{name: sample[name] for name in TEXT_FIELDS if name != "key"},
        "conversations": [{"role": t["role"], "content": t["content"]} for t in sample["conversations"]],
        "images": [{"bytes": media_bytes(i), "path": None} for i in range(len(media))],
        "cameras": [m["camera"] for m in media],
        "time_offsets_s": [float(m["time_offset_s"]) for m in media],
        "sample": json.dumps(sample, ensure_ascii=False, sort_keys=True),
    }


def _rows(root: str, shards: list[str]) -> Iterator[dict]:
    store = MediaStore(Path(root))
    for shard in shards:
        for stored in iter_shard(Path(root) / shard, store):
            yield row(stored.key, stored.sample, stored.media_bytes)


def shard_files(root: Path, names: list[str] | None = None, splits: list[str] | None = None) -> list[str]:
    """The shard files (relative to `root`) of the chosen datasets/splits, in manifest order."""
    chosen = [(d, s) for d, s in dataset_splits(root)
              if (names is None or d in names) and (splits is None or s in splits)]
    if not chosen:
        raise UsageError(f"{root}: no <dataset>/<split>/{MANIFEST} matches datasets={names} splits={splits}")
    out = []
    for dataset, split in chosen:
        manifest = read_manifest(Path(root) / dataset / split / MANIFEST)
        out += [f"{dataset}/{split}/{shard}" for shard in dict.fromkeys(manifest.column("shard").to_pylist())]
    return out


def load(root: Path, datasets: list[str] | None = None, splits: list[str] | None = None):
    """The samples of `root` (optionally some datasets and splits) as a `datasets.IterableDataset`."""
    import datasets as hf

    shards = shard_files(Path(root), datasets, splits)
    return hf.IterableDataset.from_generator(_rows, features=features(),
                                             gen_kwargs={"root": str(root), "shards": shards})
