"""A stage's sources resolved against a shard root: which dataset/splits each glob matches,
and the per-sample columns the sampler needs, read from the manifests (never the shards).

A source is the union of the dataset/splits its pattern matches, in sorted order. A
dataset/split matched by two sources of one stage is an error: a sample would have two
weights. A pattern that matches nothing is a missing source: it has no rows, the planner
warns, and the stage mixes the sources that exist.

A source with `tasks` keeps only the samples whose task matches one of its globs
(`planning.*`), so a stage can take one task of a dataset; two sources may then share a
dataset/split as long as no sample is in both.
"""
from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from curricula.spec import StageSpec
from dataengine.errors import UsageError
from dataengine.frames import VIDEO_LAYOUTS, kept_count
from dataengine.manifest import MANIFEST, dataset_splits
from dataengine.tokens import visual_tokens

COLUMNS = ["key", "task", "layout", "n_media", "cameras", "text_tokens", "visual_tokens"]


@dataclass
class SourceRows:
    """One source's samples, as columns (row i of every array is the same sample)."""

    pattern: str
    parts: tuple[tuple[str, str], ...]  # the (dataset, split) pairs the pattern matched
    fingerprint: str                    # sha1 over the matched manifests' bytes
    part: np.ndarray                    # int32: index into `parts`
    keys: np.ndarray                    # object: sample keys
    text_tokens: np.ndarray             # int64
    visual_tokens: np.ndarray           # int64, after keeping `frames_per_video` frames per video
    n_images: np.ndarray                # int64, images the loader will decode

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def tokens(self) -> np.ndarray:
        return self.text_tokens + self.visual_tokens


def match(pattern: str, available: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(p for p in available if fnmatch.fnmatchcase(f"{p[0]}/{p[1]}", pattern))


def _read_part(root: Path, dataset: str, split: str, frames_per_video: int,
               tasks: tuple[str, ...] = ()) -> tuple[dict, bytes]:
    path = root / dataset / split / MANIFEST
    blob = path.read_bytes()
    cols = pq.read_table(path, columns=COLUMNS).to_pydict()
    if tasks:
        keep = [i for i, t in enumerate(cols["task"]) if any(fnmatch.fnmatchcase(t, g) for g in tasks)]
        cols = {name: [values[i] for i in keep] for name, values in cols.items()}
    n_images = [kept_count(lay, cams, frames_per_video) for lay, cams in zip(cols["layout"], cols["cameras"])]
    vis = [v if lay not in VIDEO_LAYOUTS else visual_tokens(lay, n)
           for v, lay, n in zip(cols["visual_tokens"], cols["layout"], n_images)]
    return {"keys": cols["key"], "text_tokens": cols["text_tokens"], "visual_tokens": vis,
            "n_images": n_images}, blob


def read_source(root: Path, pattern: str, parts: tuple[tuple[str, str], ...], frames_per_video: int,
                tasks: tuple[str, ...] = (), label: str | None = None) -> SourceRows:
    digest = hashlib.sha1(f"tasks:{','.join(tasks)};".encode() if tasks else b"")
    cols: dict[str, list] = {"part": [], "keys": [], "text_tokens": [], "visual_tokens": [], "n_images": []}
    for i, (dataset, split) in enumerate(parts):
        part, blob = _read_part(root, dataset, split, frames_per_video, tasks)
        digest.update(f"{dataset}/{split}:{len(blob)}:".encode())
        digest.update(hashlib.sha1(blob).digest())
        cols["part"] += [i] * len(part["keys"])
        for name, values in part.items():
            cols[name] += values
    return SourceRows(label or pattern, parts, digest.hexdigest(), np.asarray(cols["part"], dtype=np.int32),
                      np.asarray(cols["keys"], dtype=object),
                      np.asarray(cols["text_tokens"], dtype=np.int64),
                      np.asarray(cols["visual_tokens"], dtype=np.int64),
                      np.asarray(cols["n_images"], dtype=np.int64))


def resolve(stage: StageSpec, root: Path) -> list[SourceRows]:
    """Every source of `stage` with its rows (empty for a missing source), in spec order."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root}: shard root is not a directory")
    available = dataset_splits(root)
    claimed: dict[tuple[str, str], int] = {}
    out = []
    for i, spec in enumerate(stage.sources):
        parts = match(spec.pattern, available)
        rows = read_source(root, spec.pattern, parts, stage.frames_per_video, spec.tasks, spec.label)
        for p in parts:
            j = claimed.setdefault(p, i)
            other = stage.sources[j]
            if j != i and (not (spec.tasks and other.tasks) or set(rows.keys) & set(out[j].keys)):
                raise UsageError(f"stage {stage.name!r}: {p[0]}/{p[1]} is matched by both source "
                                 f"{other.label!r} and {spec.label!r}; make the patterns or task filters disjoint")
        out.append(rows)
    return out
