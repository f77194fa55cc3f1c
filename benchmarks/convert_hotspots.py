"""The conversion hot spots found by profiling one worker (cProfile on `convert_unit`), each
timed before and after the performance pass, in the same run, on the same generated data:

  - image size: PIL `Image.open(...).size` (before) vs the JPEG start-of-frame header walk
    `dataengine.media.check_image_bytes` (after);
  - tar members: `tarfile.TarFile.addfile` through a file object (before) vs
    `dataengine.shards.TarShardWriter`'s path: template headers and one `writev` per sample
    of six images (after);
  - tar member header: `tarfile.TarInfo.tobuf` (before) vs the filled-in template
    `dataengine.shards._header` (after), byte-identical;
  - sample JSON: the stdlib's sorted compact encoder (before) vs orjson (after), on the
    samples of a generated nuScenes scene;
  - box projection: one `box_2d_in_image` call per box and camera (before) vs one batched
    `boxes_2d_in_image` call per camera (after);
  - keyframe geometry (ego windows, every box in the 6 cameras): one `SceneGeometry` per
    keyframe (before) vs one per 40-keyframe scene (after).

    python benchmarks/convert_hotspots.py [--write-docs docs/performance.md]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from converters.fixture_images import render_jpeg  # noqa: E402
from converters.nuscenes.converter import NuScenesConverter  # noqa: E402
from converters.nuscenes.fixture import make_nuscenes_root  # noqa: E402
from converters.nuscenes.scene import SceneGeometry  # noqa: E402
from dataengine.geometry import box_2d_in_image, box_corners, boxes_2d_in_image, yaw_to_quat  # noqa: E402
from dataengine.media import check_image_bytes  # noqa: E402
from dataengine.shards import _header, _member, _tarinfo, _write_all, sample_json  # noqa: E402


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def image_sizes(jpegs: list[bytes]) -> tuple[float, float]:
    before = best_of(lambda: [Image.open(io.BytesIO(b)).size for b in jpegs])
    after = best_of(lambda: [check_image_bytes(b)[0].width for b in jpegs])
    return before / len(jpegs), after / len(jpegs)


def tar_members(jpegs: list[bytes], work: Path) -> tuple[float, float]:
    def with_tarfile():
        with tarfile.open(work / "before.tar", "w", format=tarfile.GNU_FORMAT) as tar:
            for k in range(0, len(jpegs) - 5, 6):
                for i, blob in enumerate(jpegs[k:k + 6]):
                    tar.addfile(_tarinfo(f"s{k}.img{i}.jpg", len(blob)), io.BytesIO(blob))

    def with_members():  # what TarShardWriter.write does per sample
        fd = os.open(work / "after.tar", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        for k in range(0, len(jpegs) - 5, 6):
            _write_all(fd, [c for i, blob in enumerate(jpegs[k:k + 6]) for c in _member(f"s{k}.img{i}.jpg", blob)])
        os.close(fd)

    n = len(jpegs)
    return best_of(with_tarfile) / n, best_of(with_members) / n


def headers(n: int) -> tuple[float, float]:
    names = [(f"nuscenes-{i:032x}.img{i % 6}.jpg", 100_000 + i) for i in range(n)]
    assert all(_header(*x) == _tarinfo(*x).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") for x in names)
    before = best_of(lambda: [_tarinfo(*x).tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") for x in names])
    after = best_of(lambda: [_header(*x) for x in names])
    return before / n, after / n


def scene_frames(work: Path) -> tuple[list[dict], list[dict]]:
    """One generated 40-keyframe scene: its keyframes, and its samples as the converter writes them."""
    root = make_nuscenes_root(work / "nuscenes", version="v1.0-trainval", scenes_per_split=(1, 0), keyframes=40,
                              width=160, height=90, objects=12, can_bus=False, image_pool=4)
    converter = NuScenesConverter(root, None)
    unit = next(iter(converter.units()))
    return unit.payload["frames"], [item.sample for item in converter.convert_unit(unit)]


def json_encoding(samples: list[dict]) -> tuple[float, float]:
    def stdlib():
        for s in samples:
            json.dumps(s, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    return best_of(stdlib) / len(samples), best_of(lambda: [sample_json(s) for s in samples]) / len(samples)


def scene_geometry(frames: list[dict]) -> tuple[float, float]:
    before = best_of(lambda: [SceneGeometry([f], [0]) for f in frames])
    after = best_of(lambda: SceneGeometry(frames, list(range(len(frames)))))
    return before / len(frames), after / len(frames)


def projections(boxes: int, cameras: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    centers = np.c_[rng.uniform(5, 40, boxes), rng.uniform(-10, 10, boxes), rng.uniform(-1, 1, boxes)]
    sizes = np.tile([1.9, 4.5, 1.6], (boxes, 1))
    rots = np.array([yaw_to_quat(y) for y in rng.uniform(-3, 3, boxes)])
    to_cam = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)  # ego -> OpenCV camera axes
    k = [[1266.0, 0, 800], [0, 1266.0, 450], [0, 0, 1]]

    def per_box():
        for _ in range(cameras):
            for c, s, r in zip(centers, sizes, rots):
                box_2d_in_image(box_corners(c, s, r) @ to_cam.T, k, 1600, 900)

    def batched():
        corners = box_corners(centers, sizes, rots)
        for _ in range(cameras):
            boxes_2d_in_image(corners @ to_cam.T, k, 1600, 900)

    return best_of(per_box) / boxes, best_of(batched) / boxes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=240, help="generated 1600x900 JPEGs")
    parser.add_argument("--write-docs", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    jpegs = [render_jpeg(rng, 1600, 900, f"cam {i}", 68) for i in range(args.images)]
    with tempfile.TemporaryDirectory() as tmp:
        frames, samples = scene_frames(Path(tmp))
        rows = [("image size per image", *image_sizes(jpegs)),
                ("tar member per image (~120 KB)", *tar_members(jpegs, Path(tmp))),
                ("tar member header", *headers(2000)),
                ("sample JSON per keyframe sample (12 boxes)", *json_encoding(samples)),
                ("box projection per box, 6 cameras", *projections(boxes=30, cameras=6)),
                ("keyframe geometry per keyframe (12 boxes)", *scene_geometry(frames))]
    table = ["| hot spot | before (us) | after (us) | speed-up |", "|---|---:|---:|---:|"]
    table += [f"| {name} | {b * 1e6:.1f} | {a * 1e6:.1f} | {b / a:.1f}x |" for name, b, a in rows]
    machine = f"{platform.machine()}, Python {platform.python_version()}, best of 5"
    print(f"conversion hot spots, before and after the performance pass ({machine})")
    print("\n".join(table))
    if args.write_docs:
        from benchmarks_docs import rewrite_section

        rewrite_section(Path(args.write_docs), "convert_hotspots", [f"Machine: {machine}.", "", *table])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
