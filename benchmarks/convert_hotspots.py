"""The conversion hot spots found by profiling one worker (cProfile on `convert_unit`), each
timed before and after the performance pass, in the same run, on the same generated data:

  - image size: PIL `Image.open(...).size` (before) vs the JPEG start-of-frame header walk
    `dataengine.media.check_image_bytes` (after);
  - tar members: `tarfile.TarFile.addfile` through a file object (before) vs
    `dataengine.shards.TarShardWriter`'s direct GNU header + data writes (after);
  - box projection: one `box_2d_in_image` call per box and camera (before) vs one batched
    `boxes_2d_in_image` call per camera (after).

    python benchmarks/convert_hotspots.py [--write-docs docs/performance.md]
"""
from __future__ import annotations

import argparse
import io
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

from converters.nuscenes_fixture import render_jpeg  # noqa: E402
from dataengine.geometry import box_2d_in_image, box_corners, boxes_2d_in_image, yaw_to_quat  # noqa: E402
from dataengine.media import check_image_bytes  # noqa: E402
from dataengine.shards import _member, _tarinfo  # noqa: E402


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

    def with_members():  # what TarShardWriter.write does per member
        with open(work / "after.tar", "wb") as f:
            for k in range(0, len(jpegs) - 5, 6):
                for i, blob in enumerate(jpegs[k:k + 6]):
                    f.write(_member(f"s{k}.img{i}.jpg", blob))

    n = len(jpegs)
    return best_of(with_tarfile) / n, best_of(with_members) / n


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
        rows = [("image size per image", *image_sizes(jpegs)),
                ("tar member per image (~120 KB)", *tar_members(jpegs, Path(tmp))),
                ("box projection per box, 6 cameras", *projections(boxes=30, cameras=6))]
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
