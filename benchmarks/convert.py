"""Conversion benchmark: nuScenes fixture of N keyframes x 6 JPEGs (~100 KB each) converted
with the Ray job, against the raw limit measured in the same run: `tar` of the same image
files onto the same disk. Peak memory (driver and workers) at 1x and 4x the input.

    python benchmarks/convert.py                  # 2,000 keyframes, then 4x
    python benchmarks/convert.py --quick          # 200 keyframes, then 4x (a smoke run)
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from converters.nuscenes.fixture import make_nuscenes_root  # noqa: E402
from dataengine.job import JobConfig, run_job  # noqa: E402

KEYFRAMES_PER_SCENE = 40


class PeakRSS:
    """Peak RSS of this process (sampled every 20 ms: one /proc read) and of the Ray workers
    (their kernel high-water mark, VmHWM, read once at the end), so that measuring costs the
    conversion next to nothing. `start` is this process's RSS when the conversion begins."""

    def __init__(self):
        self.start = psutil.Process().memory_info().rss
        self.driver = 0
        self.worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            self.driver = max(self.driver, me.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        for child in psutil.Process().children(recursive=True):
            try:
                if "ray::" in " ".join(child.cmdline()):
                    status = Path(f"/proc/{child.pid}/status").read_text()
                    hwm_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
                    self.worker = max(self.worker, hwm_kb * 1024)
            except (psutil.Error, FileNotFoundError):  # a process that ended meanwhile
                continue


def image_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "samples").rglob("*.jpg"))


def raw_tar(root: Path, dest: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["tar", "cf", str(dest), "-C", str(root), "samples"], check=True)
    os.sync()
    return time.perf_counter() - start


def convert(root: Path, out: Path, workers: int) -> tuple[float, PeakRSS, int]:
    with PeakRSS() as peak:
        start = time.perf_counter()
        result = run_job(JobConfig(dataset="nuscenes", src=root, out=out, workers=workers, progress=False,
                                   options=None))
        os.sync()
        elapsed = time.perf_counter() - start
    samples = sum(c["counts"]["samples"] for c in result.cards.values())
    return elapsed, peak, samples


def run_scale(work: Path, keyframes: int, workers: int, quality: int, rounds: int) -> dict:
    """`rounds` alternating runs of the raw `tar` and of the conversion; medians are reported
    (a shared virtual disk's speed drifts by 2-4x within minutes, so one run of each can
    compare a slow moment with a fast one)."""
    import ray

    root = work / f"nuscenes-{keyframes}"
    if not root.exists():
        print(f"generating {keyframes} keyframes x 6 cameras ...", flush=True)
        # in a child process: the generator's tables would otherwise stay in this process's
        # RSS and count as the conversion driver's memory
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(make_nuscenes_root, root, version="v1.0-trainval",
                        scenes_per_split=(keyframes // KEYFRAMES_PER_SCENE, 0), keyframes=KEYFRAMES_PER_SCENE,
                        width=1600, height=900, quality=quality, objects=6, can_bus=False, image_pool=48).result()
    data = image_bytes(root)
    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=128 * 1024 * 1024,
             configure_logging=False, log_to_driver=False)
    startup = time.perf_counter() - start
    out = work / "out"
    tar_times, conv_times, driver, worker, driver_start = [], [], 0, 0, None
    try:
        for _ in range(rounds):
            tar_times.append(raw_tar(root, work / "raw.tar"))
            (work / "raw.tar").unlink()
            shutil.rmtree(out, ignore_errors=True)
            conv_s, peak, samples = convert(root, out, workers)
            conv_times.append(conv_s)
            driver, worker = max(driver, peak.driver), max(worker, peak.worker)
            driver_start = driver_start or peak.start
            shutil.rmtree(out)
            print(f"  {keyframes} keyframes: tar {tar_times[-1]:.2f} s, conversion {conv_s:.2f} s", flush=True)
    finally:
        ray.shutdown()
    return {"keyframes": keyframes, "samples": samples, "mb": data / 1e6, "tar_s": statistics.median(tar_times),
            "conv_s": statistics.median(conv_times), "rounds": rounds,
            "first_ratio": tar_times[0] / conv_times[0],
            "startup_s": startup, "driver_mb": driver / 1e6, "driver_start_mb": driver_start / 1e6,
            "worker_mb": worker / 1e6,
            "mean_jpeg_kb": data / (keyframes * 6) / 1e3}


def report(r1: dict, r4: dict, workers: int) -> list[str]:
    lines = []
    for r in (r1, r4):
        tar_mbs, conv_mbs = r["mb"] / r["tar_s"], r["mb"] / r["conv_s"]
        lines.append(
            f"| {r['keyframes']} | {r['mb']:.0f} | {r['mean_jpeg_kb']:.0f} | {r['samples'] / r['conv_s']:.1f} | "
            f"{conv_mbs:.0f} | {tar_mbs:.0f} | **{conv_mbs / tar_mbs:.2f}** | {r['first_ratio']:.2f} | "
            f"{r['startup_s']:.1f} | "
            f"{r['driver_start_mb']:.0f} -> {r['driver_mb']:.0f} | {r['worker_mb']:.0f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keyframes", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quality", type=int, default=68, help="JPEG quality of the generated images")
    parser.add_argument("--quick", action="store_true", help="200 keyframes (a smoke run)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating tar/conversion runs per scale (medians)")
    parser.add_argument("--work", default="bench-out/convert")
    parser.add_argument("--keep", action="store_true", help="keep the generated roots for the next run")
    parser.add_argument("--write-docs", default=None, help="rewrite this section of docs/performance.md")
    args = parser.parse_args()
    n = 200 if args.quick else args.keyframes
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    r1 = run_scale(work, n, args.workers, args.quality, args.rounds)
    r4 = run_scale(work, 4 * n, args.workers, args.quality, args.rounds)
    header = ["| keyframes | image MB | mean JPEG KB | samples/s | convert MB/s | raw tar MB/s | ratio (target >= 0.9) "
              "| first run's ratio | Ray start s (excluded) | driver RSS MB, start -> peak | peak worker RSS MB |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    table = header + report(r1, r4, args.workers)
    machine = (f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
               f"{args.workers} Ray workers")
    print(f"\nconversion benchmark ({machine})")
    print("\n".join(table))
    if not args.keep:
        shutil.rmtree(work)
    if args.write_docs:
        from benchmarks_docs import rewrite_section

        rewrite_section(Path(args.write_docs), "convert", [f"Machine: {machine}.", "", *table])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
