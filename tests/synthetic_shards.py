"""Small synthetic shard roots, written through the real staging path.

`write_split` runs the same code a conversion job runs for one unit (`staging.prepare`,
`staging.convert_unit`, `staging.finalize`), so the shards, manifest, quarantine and card
are exactly what the audit, the exporter and the cards read in production. Tests choose
scene ids, frame ids and image bytes freely, which is how they plant overlaps.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

from PIL import Image

from dataengine.converter import Converter, Quarantined, Record, Unit
from dataengine.staging import convert_unit, finalize, prepare


def jpeg(seed: int, size: tuple[int, int] = (48, 32)) -> bytes:
    """A small JPEG whose bytes differ for every seed (a 2-colour pattern)."""
    img = Image.new("RGB", size, (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))
    img.paste((255 - seed % 256, seed // 256 % 256, 17), (0, 0, size[0] // 2, size[1] // 3))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def png(seed: int, size: tuple[int, int] = (40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (seed % 256, 200, seed * 7 % 256)).save(buf, format="PNG")
    return buf.getvalue()


def _format(blob: bytes) -> str:
    return "png" if blob.startswith(b"\x89PNG") else "jpg"


def record(dataset: str, split: str, name: str, scene: str, frame: str, images: list[bytes],
           layout: str = "single_image", task: str = "vqa.perception", cameras: list[str] | None = None,
           offsets: list[float] | None = None, turns: list[str] | None = None) -> Record:
    """A schema-v1 sample with the given ids and image bytes (sizes read from the bytes)."""
    cameras = cameras or ["front"] * len(images)
    offsets = offsets or [0.0] * len(images)
    media = []
    for i, (blob, cam, dt) in enumerate(zip(images, cameras, offsets)):
        width, height = Image.open(io.BytesIO(blob)).size
        media.append({"member": f"img{i}.{_format(blob)}", "camera": cam, "source_camera": cam,
                      "time_offset_s": dt, "width": width, "height": height})
    turns = turns or [f"What is in {name}?", f"Answer about {name}."]
    roles = ["user", "assistant"] * len(turns)
    return Record({
        "schema": "sample/1", "id": f"{dataset}-{name}", "dataset": dataset, "split": split, "task": task,
        "scene_id": scene, "frame_id": frame, "layout": layout, "media": media,
        "conversations": [{"role": r, "content": t} for r, t in zip(roles, turns)], "meta": {},
    }, list(images))


class _ListConverter(Converter):
    """Yields a fixed list of records and quarantines (never registered)."""

    name = "synthetic"
    version = "0"

    def __init__(self, items: list):
        super().__init__(Path("."))
        self.items = items

    def check_source(self) -> None:
        pass

    def units(self) -> list[Unit]:
        return []

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        yield from self.items


def write_split(root: Path, dataset: str, split: str, items: list[Record | Quarantined]) -> Path:
    """Write one `<root>/<dataset>/<split>/` through staging; returns the split directory."""
    split_dir = Path(root) / dataset / split
    split_dir.mkdir(parents=True, exist_ok=True)
    unit = Unit(id="u0", split=split)
    prepare(split_dir, job_id=f"synthetic-{dataset}-{split}")
    convert_unit(_ListConverter(items), unit, split_dir, shard_bytes=1 << 30)
    finalize(split_dir, [unit.id], {"dataset": dataset, "split": split, "converter": {"name": "synthetic", "version": "0"},
                                  "created_by": f"synthetic_shards.write_split {dataset} {split}"})
    return split_dir
