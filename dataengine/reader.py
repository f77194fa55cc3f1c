"""Reading shards: iterate a dataset/split in order, or fetch one sample by key.

Random access uses the manifest's byte ranges: one seek and one read per sample, no scan,
plus one `pread` in the root's store for the context its key frame's samples share, when it
has one (`dataengine/context.py`; merged back, so callers see the whole sample). A sample's
images come from the store (`dataengine/mediastore.py`), one `pread` each, only when asked
for. sample/2 shards (no contexts) and sample/1 shards (images as tar members) still read.
"""
from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from dataengine.context import FIELD as CONTEXT
from dataengine.context import resolve
from dataengine.manifest import MANIFEST, read_manifest
from dataengine.mediastore import MediaStore


class StoreMedia(Mapping):
    """A sample's media bytes by member name (`img0.jpg`), read from the store on access."""

    def __init__(self, sample: dict, store: MediaStore):
        self._sha1 = {m["member"]: m["sha1"] for m in sample.get("media", [])}
        self._store = store

    def __getitem__(self, member: str) -> bytes:
        return self._store.read(self._sha1[member])

    def __iter__(self):
        return iter(self._sha1)

    def __len__(self) -> int:
        return len(self._sha1)


@dataclass
class StoredSample:
    """A sample as stored: its JSON and its media bytes keyed by member name."""

    key: str
    sample: dict
    media: Mapping[str, bytes] = field(default_factory=dict)

    def media_bytes(self, index: int) -> bytes:
        return self.media[self.sample["media"][index]["member"]]

    def image(self, index: int, size: tuple[int, int] | None = None):
        """Decode media item `index` to a PIL image; with `size`, JPEG draft mode decodes
        at the smallest DCT scale that still covers it, then resizes."""
        from PIL import Image

        img = Image.open(io.BytesIO(self.media_bytes(index)))
        if size is not None:
            img.draft("RGB", size)
            img = img.convert("RGB").resize(size)
        return img.convert("RGB")


def parse_members(blob: bytes) -> list[tuple[str, bytes]]:
    """The (name, bytes) members of a run of tar records, in order."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
        for info in tar:
            out.append((info.name, tar.extractfile(info).read()))
    return out


def resolve_stored(sample: dict, store: MediaStore | None) -> dict:
    """A sample as its shard holds it, with its context (if any) read from the store and
    merged back: the whole sample, as the converter made it."""
    sha1 = sample.get(CONTEXT)
    if sha1 is None:
        return sample
    if store is None:
        raise ValueError(f"sample {sample.get('id')!r} references context {sha1}: read it with its root's store")
    return resolve(sample, json.loads(store.read(sha1)))


def _to_sample(key: str, members: list[tuple[str, bytes]], store: MediaStore | None = None) -> StoredSample:
    stored = StoredSample(key, {})
    inline = {}
    for name, data in members:
        member_key, _, suffix = name.partition(".")
        if member_key != key:
            raise ValueError(f"member {name!r} does not belong to sample {key!r}")
        if suffix == "json":
            stored.sample = resolve_stored(json.loads(data), store)
        else:
            inline[suffix] = data
    # sample/1 carried its images as members; sample/2 names them by sha1 in the store
    stored.media = inline if inline or store is None else StoreMedia(stored.sample, store)
    return stored


class DatasetReader:
    """Samples of one `<root>/<dataset>/<split>`, through its manifest."""

    def __init__(self, root: Path, dataset: str, split: str):
        self.dir = Path(root) / dataset / split
        self.store = MediaStore(root)
        self.manifest = read_manifest(self.dir / MANIFEST)
        self._rows = {k: i for i, k in enumerate(self.manifest.column("key").to_pylist())}
        self._shards = self.manifest.column("shard").to_pylist()
        self._offsets = self.manifest.column("offset").to_pylist()
        self._sizes = self.manifest.column("size").to_pylist()

    def __len__(self) -> int:
        return self.manifest.num_rows

    def keys(self) -> list[str]:
        return list(self._rows)

    def get(self, key: str) -> StoredSample:
        if key not in self._rows:
            raise KeyError(f"{key!r} is not in {self.dir / MANIFEST}")
        i = self._rows[key]
        with open(self.dir / self._shards[i], "rb") as f:
            f.seek(self._offsets[i])
            blob = f.read(self._sizes[i])
        return _to_sample(key, parse_members(blob), self.store)

    def __iter__(self) -> Iterator[StoredSample]:
        """All samples in manifest order, streaming each shard once."""
        for shard in dict.fromkeys(self._shards):
            yield from iter_shard(self.dir / shard, self.store)


def iter_shard(path: Path, store: MediaStore | None = None) -> Iterator[StoredSample]:
    """Group a shard's members by key, as WebDataset does (key = name up to the first dot);
    with `store`, a sample's media are read from it on access."""
    current: str | None = None
    members: list[tuple[str, bytes]] = []
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            key = info.name.partition(".")[0]
            if current is not None and key != current:
                yield _to_sample(current, members, store)
                members = []
            current = key
            members.append((info.name, tar.extractfile(info).read()))
    if current is not None:
        yield _to_sample(current, members, store)
