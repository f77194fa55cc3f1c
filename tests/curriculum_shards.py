"""Shard roots with several sources for the curriculum tests, written through the real
staging path (`synthetic_shards.write_split`), plus in-memory `SourceRows` for sampler tests.

Each sample's text length varies with its index, so token counts differ; `long_every=k`
makes every k-th sample far longer than 8192 tokens (for the over-length tests); `video`
sources hold 2 cameras x 6 frames each (for frames_per_video).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from synthetic_shards import jpeg, record, write_split

from curricula.sources import SourceRows


def _turns(dataset: str, i: int, long: bool) -> list[str]:
    words = " ".join(f"w{j}" for j in range(5 + (i * 7) % 40))
    if long:
        words += " filler" * 6000   # ~36k characters, ~9k tokens: over 8192
    return [f"Question {i} about {dataset}: {words}?", f"Answer {i}."]


def _sample(dataset: str, split: str, i: int, layout: str, long: bool):
    name = f"s{i:04d}"
    scene = f"{dataset}:scene{i // 4}"
    if layout == "video":
        cams = ["front"] * 6 + ["back"] * 6
        offsets = [-(5 - k) * 0.5 for k in range(6)] * 2
        images = [jpeg(1000 * i + k) for k in range(12)]
        return record(dataset, split, name, scene, f"{dataset}:{name}", images, layout="multi_view_video",
                      cameras=cams, offsets=offsets, turns=_turns(dataset, i, long))
    images = [jpeg(1000 * i + k) for k in range(2 if layout == "multi_view" else 1)]
    cams = ["front", "back"] if layout == "multi_view" else ["front"]
    return record(dataset, split, name, scene, f"{dataset}:{name}", images, layout=layout, cameras=cams,
                  turns=_turns(dataset, i, long))


def write_source(root: Path, dataset: str, n: int, split: str = "train", layout: str = "single_image",
                 long_every: int = 0) -> Path:
    items = [_sample(dataset, split, i, layout, bool(long_every) and i % long_every == long_every - 1)
             for i in range(n)]
    return write_split(root, dataset, split, items)


def mixture_root(root: Path) -> Path:
    """alpha/train 24 single images (every 6th over-length), beta/train 12 two-view samples,
    gamma/train 6 multi-view videos, alpha/val 4."""
    write_source(root, "alpha", 24, long_every=6)
    write_source(root, "beta", 12, layout="multi_view")
    write_source(root, "gamma", 6, layout="video")
    write_source(root, "alpha", 4, split="val")
    return root


def rows(pattern: str, n: int, tokens=None, images=None, prefix: str | None = None) -> SourceRows:
    """In-memory source: n samples with the given per-sample tokens (text part) and image counts."""
    prefix = prefix or pattern.split("/")[0]
    tokens = np.asarray(tokens if tokens is not None else [100 + (i * 37) % 200 for i in range(n)], dtype=np.int64)
    images = np.asarray(images if images is not None else [1] * n, dtype=np.int64)
    return SourceRows(pattern, ((pattern.split("/")[0], pattern.split("/")[1]),), f"fp-{pattern}-{n}",
                      np.zeros(n, dtype=np.int32), np.asarray([f"{prefix}-{i:05d}" for i in range(n)], dtype=object),
                      tokens, np.zeros(n, dtype=np.int64), images)
