"""Bytes on disk of a shard root's media: what each dataset references, what the store holds.

Per dataset and for the whole root: distinct media bytes (each image it references, once),
referenced media bytes (what sample/1, one copy per sample, would have stored) and their
ratio, the sharing factor; and the sample contexts the store holds beside the images. Read
from the manifests' `media_sha1` and the media index only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dataengine.manifest import MANIFEST, dataset_splits
from dataengine.mediastore import read_index

ROOT = "(whole root)"


def storage_figures(root: Path) -> dict[str, dict]:
    """{dataset or ROOT: {images, distinct_bytes, referenced_bytes, sharing}}."""
    import pyarrow.parquet as pq

    index = read_index(root)
    sizes = dict(zip((k.ljust(20, b"\0").hex() for k in index.keys), index.size.tolist()))
    per: dict[str, dict] = {}
    everything: set[str] = set()
    for dataset, split in dataset_splits(root):
        sha1s = pq.read_table(Path(root) / dataset / split / MANIFEST, columns=["media_sha1"]).column(0)
        refs = [h for row in sha1s.to_pylist() for h in row]
        d = per.setdefault(dataset, {"refs": [], "distinct": set()})
        d["refs"] += refs
        d["distinct"].update(refs)
        everything.update(refs)
    out = {name: _figures(d["refs"], d["distinct"], sizes) for name, d in per.items()}
    out[ROOT] = _figures([h for d in per.values() for h in d["refs"]], everything, sizes)
    images = index.width > 0  # the store's other entries are sample contexts (dataengine/context.py)
    out[ROOT]["store_bytes"] = int(np.sum(index.size[images]))
    out[ROOT]["contexts"] = int(np.sum(~images))
    out[ROOT]["context_bytes"] = int(np.sum(index.size[~images]))
    return out


def _figures(refs: list[str], distinct: set[str], sizes: dict[str, int]) -> dict:
    referenced = sum(sizes.get(h, 0) for h in refs)
    unique = sum(sizes.get(h, 0) for h in distinct)
    return {"images": len(distinct), "distinct_bytes": unique, "referenced_bytes": referenced,
            "sharing": referenced / unique if unique else 0.0}


def storage_markdown(figures: dict[str, dict]) -> str:
    lines = ["", "## Media storage", "",
             "Distinct: each image the dataset references, once (the media store holds each once per root). "
             "Referenced: one copy per sample, as sample/1 stored them. Sharing factor = referenced / distinct.", "",
             "| dataset | images | distinct MB | referenced MB | sharing factor |", "|---|---|---|---|---|"]
    for name, f in figures.items():
        lines.append(f"| {name} | {f['images']} | {f['distinct_bytes'] / 2**20:.2f} | "
                     f"{f['referenced_bytes'] / 2**20:.2f} | {f['sharing']:.2f} |")
    root = figures.get(ROOT, {})
    if root.get("contexts"):
        lines += ["", f"The store also holds {root['contexts']} sample contexts (the fields a key frame's samples "
                      f"share, stored once): {root['context_bytes'] / 2**20:.2f} MB."]
    return "\n".join(lines) + "\n"
