"""Loader benchmark: the curriculum loader against a LLaVA-NeXT-style JSON + image-folder
loader, on the same generated 6-camera samples, in the same run.

Data: a generated nuScenes root with 1600x900 JPEGs (~100 KB each, quality 50), converted
to shards by the real Ray job, then exported to LLaVA-NeXT's format (`dataengine
export-llava`: a JSON list plus an image folder holding the same JPEG bytes).

Measured, all producing six RGB images of 384x384 per sample:
  - baseline: what `LLaVA-VL/LLaVA-NeXT:llava/train/train.py` `LazySupervisedDataset` does
    for a multi-image record: the JSON list in memory, each image `Image.open(path).convert("RGB")`
    at full resolution, `expand2square` with the processor's mean colour, then a bicubic resize
    to 384x384 (SigLIP's processor; its rescale/normalize to a tensor is left out, which
    flatters the baseline); also printed: the same without the pad step (full decode, bilinear
    resize of the 16:9 frame), to show what reduced-size decoding alone brings;
  - curricula: `CurriculumLoader` (plan, random access into the tar by the manifest's byte
    range, reduced-size JPEG decode, bilinear resize, prompt rendering);
  - decode limits: decoding the in-memory JPEG bytes only, at full size (PIL) and at reduced
    size (simplejpeg), no I/O and no resize;
  - workers=0 runs everything in this process on one thread (torch intra-op threads set to 1,
    as DataLoader workers do); workers=N compares both loaders under a torch DataLoader;
  - sampler overhead: building the stage plan from the manifests (uncached) plus the batch
    position arithmetic, against the loader's time; and the plan build rate on a synthetic
    1M-draw stage, per sample, against the loader's per-sample time.

    python benchmarks/loader.py            # 120 samples, workers 0 and 2, best of 3
    python benchmarks/loader.py --quick    # CI-sized
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIZE = (384, 384)
SIGLIP_MEAN = (int(0.5 * 255),) * 3


def build_data(work: Path, scenes: int, keyframes: int, quality: int) -> tuple[Path, Path]:
    """Generated nuScenes root -> shards (Ray job) -> LLaVA export; returns (shards, export)."""
    from converters.nuscenes.fixture import make_nuscenes_root
    from dataengine.export_llava import ExportConfig, export
    from dataengine.job import JobConfig, run_job

    src = make_nuscenes_root(work / "nuscenes", scenes_per_split=(scenes, 1), keyframes=keyframes, width=1600,
                             height=900, quality=quality, image_pool=24)
    shards = work / "shards"
    run_job(JobConfig(dataset="nuscenes", src=src, out=shards, splits=("train",), progress=False))
    export(ExportConfig(root=shards, out=work / "llava"))
    return shards, work / "llava"


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def warm(paths: list[Path]) -> int:
    """Read every file once so both loaders start from the page cache."""
    return sum(len(p.read_bytes()) for p in paths)


# ---------------------------------------------------------------- baseline: LLaVA-NeXT style

def expand2square(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Pad to a square with the background colour, image centred (LLaVA's multi-image path)."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new(img.mode, (side, side), background)
    out.paste(img, ((side - w) // 2, (side - h) // 2))
    return out


class LlavaStyleDataset:
    """A JSON list of records plus an image folder, decoded the way LLaVA-NeXT does it."""

    def __init__(self, json_path: Path, image_folder: Path, pad: bool = True):
        self.records = json.loads(json_path.read_text())
        self.folder = image_folder
        self.pad = pad

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        paths = rec["image"] if isinstance(rec["image"], list) else [rec["image"]]
        images = []
        for p in paths:
            img = Image.open(self.folder / p).convert("RGB")
            if self.pad:
                images.append(expand2square(img, SIGLIP_MEAN).resize(SIZE, Image.Resampling.BICUBIC))
            else:
                images.append(img.resize(SIZE, Image.Resampling.BILINEAR))
        return {"conversations": rec["conversations"], "images": images}


def _identity(x):
    return x


def run_baseline(dataset: LlavaStyleDataset, workers: int) -> tuple[int, float]:
    from torch.utils.data import DataLoader

    start = time.perf_counter()
    if workers == 0:
        n = sum(len(dataset[i]["images"]) > 0 for i in range(len(dataset)))
    else:
        dl = DataLoader(dataset, batch_size=None, num_workers=workers, collate_fn=_identity)
        n = sum(len(item["images"]) > 0 for item in dl)
    return n, time.perf_counter() - start


# ---------------------------------------------------------------- this project's loader

def curriculum(samples: int):
    from curricula.spec import Budget, Curriculum, SourceSpec, StageSpec

    stage = StageSpec("bench", (SourceSpec("nuscenes/train", 1.0),), None, Budget("samples", samples), ("llm",),
                      {"llm": 1e-5}, batch_size=1)
    return Curriculum("bench", 0, (stage,))


def run_curricula(shards: Path, samples: int, workers: int, cache: Path) -> tuple[int, float]:
    from curricula.loader import CurriculumLoader

    loader = CurriculumLoader(curriculum(samples), shards, num_workers=workers, image_size=SIZE, cache_dir=cache)
    loader.plan(0)  # built (and cached) before timing: measured separately as sampler overhead
    start = time.perf_counter()
    n = sum(len(batch) for batch in loader.stage_batches(0))
    return n, time.perf_counter() - start


def sampler_overhead(shards: Path, samples: int) -> dict:
    """Plan build from the manifests (uncached) + all batch positions; and a 1M-draw synthetic plan."""
    from curricula.sampler import batch_positions, build_plan, num_steps
    from curricula.sources import SourceRows, resolve
    from curricula.spec import Budget, SourceSpec, StageSpec

    stage = curriculum(samples).stages[0]
    start = time.perf_counter()
    plan = build_plan(stage, resolve(stage, shards), seed=0)
    for step in range(num_steps(len(plan), 1, 1)):
        batch_positions(len(plan), step, 0, 1, 1)
    small = time.perf_counter() - start
    sizes = {"a/train": 400_000, "b/train": 100_000, "c/train": 20_000}
    rows = [SourceRows(p, ((p.split("/")[0], "train"),), p, np.zeros(n, np.int32),
                       np.array([f"{p[0]}-{i:07d}" for i in range(n)], dtype=object),
                       np.full(n, 120, np.int64), np.full(n, 4374, np.int64), np.full(n, 6, np.int64))
            for p, n in sizes.items()]
    big = StageSpec("big", tuple(SourceSpec(p) for p in sizes), 2.0, Budget("samples", 1_000_000), ("llm",),
                    {"llm": 1e-5})
    start = time.perf_counter()
    build_plan(big, rows, seed=0)
    return {"stage_s": small, "big_plan_s": time.perf_counter() - start, "big_plan_draws": 1_000_000}


# ---------------------------------------------------------------- decode limits

def decode_limits(jpegs: list[bytes], per_sample: int) -> dict:
    import simplejpeg

    start = time.perf_counter()
    for b in jpegs:
        Image.open(io.BytesIO(b)).convert("RGB")
    full = time.perf_counter() - start
    start = time.perf_counter()
    for b in jpegs:
        simplejpeg.decode_jpeg(b, colorspace="RGB", min_width=SIZE[0], min_height=SIZE[1])
    reduced = time.perf_counter() - start
    n = len(jpegs) / per_sample
    return {"full_decode": n / full, "reduced_decode": n / reduced}


# ---------------------------------------------------------------- driver

def measure(shards: Path, llava: Path, workers: list[int], repeats: int) -> dict:
    """Best of `repeats` for every figure; the loaders and the decode limits take turns so
    that load from other processes hits them alike."""
    dataset = LlavaStyleDataset(llava / "nuscenes_train.json", llava)
    n = len(dataset)
    images = [llava / p for r in dataset.records for p in r["image"]]
    mbytes = warm(images + list((shards / "nuscenes" / "train").glob("*.tar"))
                  + list((shards / "media" / "packs").glob("*.tar"))) / 2**20
    disk = {"curricula": tree_bytes(shards) / n,  # shards, manifests and the media store
            "baseline": tree_bytes(llava) / n}    # LLaVA JSON and its image folder
    jpegs = [p.read_bytes() for p in images]
    cache = Path(tempfile.mkdtemp(prefix="plans-"))
    plain = LlavaStyleDataset(llava / "nuscenes_train.json", llava, pad=False)
    runs = {w: {"baseline": 0.0, "baseline_no_pad": 0.0, "curricula": 0.0} for w in workers}
    limits = {"full_decode": 0.0, "reduced_decode": 0.0}
    for _ in range(repeats):
        for w in workers:
            k, t = run_baseline(dataset, w)
            runs[w]["baseline"] = max(runs[w]["baseline"], k / t)
            k, t = run_baseline(plain, w)
            runs[w]["baseline_no_pad"] = max(runs[w]["baseline_no_pad"], k / t)
            k, t = run_curricula(shards, n, w, cache)
            runs[w]["curricula"] = max(runs[w]["curricula"], k / t)
        limits = {k: max(v, limits[k]) for k, v in decode_limits(jpegs, 6).items()}
    shutil.rmtree(cache)
    over = sampler_overhead(shards, n)
    loader_s = n / runs[workers[0]]["curricula"]
    return {"samples": n, "images": len(images), "mean_jpeg_kb": sum(map(len, jpegs)) / len(jpegs) / 1024,
            "warm_mb": mbytes, "runs": runs, "limits": limits, "bytes_per_sample": disk,
            "sampler": dict(over, loader_s=loader_s, stage_fraction=over["stage_s"] / loader_s,
                            big_fraction=(over["big_plan_s"] / over["big_plan_draws"]) / (loader_s / n))}


def report(r: dict) -> str:
    lim = r["limits"]
    lines = [f"loader benchmark: {r['samples']} samples x 6 cameras, 1600x900 JPEG (mean {r['mean_jpeg_kb']:.0f} KB), "
             f"images out {SIZE[0]}x{SIZE[1]}",
             f"decode limit (bytes in memory, decode only): full PIL {lim['full_decode']:.1f} samples/s "
             f"({1e3 / (6 * lim['full_decode']):.1f} ms/image), reduced simplejpeg "
             f"{lim['reduced_decode']:.1f} samples/s "
             f"({1e3 / (6 * lim['reduced_decode']):.1f} ms/image)"]
    for w, best in r["runs"].items():
        ratio = best["curricula"] / best["baseline"]
        lines.append(f"workers={w}: baseline (LLaVA JSON + PIL full decode) {best['baseline']:.1f} samples/s "
                     f"[{best['baseline'] / lim['full_decode']:.0%} of full-decode limit]; curricula "
                     f"{best['curricula']:.1f} samples/s [{best['curricula'] / lim['reduced_decode']:.0%} of "
                     f"reduced-decode limit]; ratio {ratio:.2f}x (target >= 3x); without LLaVA's pad step the "
                     f"baseline does {best['baseline_no_pad']:.1f} samples/s "
                     f"(ratio {best['curricula'] / best['baseline_no_pad']:.2f}x)")
    disk = r["bytes_per_sample"]
    lines.append(f"bytes on disk per sample: curricula shard root {disk['curricula'] / 1024:.1f} KB, baseline LLaVA "
                 f"JSON + image folder {disk['baseline'] / 1024:.1f} KB (both store each distinct image once; the "
                 "generated root reuses 24 pictures)")
    s = r["sampler"]
    lines.append(f"sampler overhead: plan from manifests + batch positions {s['stage_s'] * 1e3:.1f} ms = "
                 f"{s['stage_fraction']:.2%} of the loader's {s['loader_s']:.2f} s; 1M-draw plan built in "
                 f"{s['big_plan_s']:.2f} s = {s['big_fraction']:.3%} of loading those draws (target < 1%)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized: 1 scene of 10 keyframes, best of 2")
    parser.add_argument("--scenes", type=int, default=3, help="train scenes of 40 keyframes (default 3)")
    parser.add_argument("--quality", type=int, default=50, help="JPEG quality (50 gives ~100 KB at 1600x900)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers to compare")
    parser.add_argument("--repeats", type=int, default=3, help="runs per loader; the best is kept")
    parser.add_argument("--work", default=None, help="keep the generated data here (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--write-docs", default=None, help="rewrite the loader section of docs/performance.md")
    args = parser.parse_args()
    # One intra-op thread, as in every DataLoader worker: with workers=0 the loader then uses one
    # core, like the baseline (torch's thread pool thrashes on a shared 2-core machine otherwise).
    torch.set_num_threads(1)
    scenes, keyframes, repeats = (1, 10, 2) if args.quick else (args.scenes, 40, args.repeats)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="loader-bench-"))
    try:
        shards, llava = build_data(work, scenes, keyframes, args.quality)
        result = measure(shards, llava, args.workers, repeats)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(report(result))
    if args.write_docs:
        import platform
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchmarks_docs import rewrite_section

        machine = f"{platform.machine()}, {torch.get_num_threads()} torch thread, Python {platform.python_version()}"
        rewrite_section(Path(args.write_docs), "loader", [f"Machine: {machine}.", "", "```", report(result), "```"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
