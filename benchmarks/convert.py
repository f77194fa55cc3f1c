"""Conversion benchmark: nuScenes fixture of N keyframes x 6 JPEGs (~100 KB each) converted
with the Ray job, against the raw limit measured in the same run: `tar` of the same image
files onto the same disk. Peak memory (driver and workers) at 1x and 4x the input.

    python benchmarks/convert.py                  # 2,000 keyframes, then 4x
    python benchmarks/convert.py --quick          # 200 keyframes, then 4x (a smoke run)
    python benchmarks/convert.py --scale trainval [--scenes 85]   # trainval's table sizes (trainval_root.py)

At `--scale trainval` the roots have trainval's tables (77 sample_data and ego_pose rows and
~35 boxes per key frame) and small images; the 2,000-keyframe root of the same generator is
converted in the same run as the per-keyframe baseline, and the job's task timings (time to
first task, the gap between a worker's tasks) and Ray object-store traffic are reported too.
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

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trainval_root import KEYFRAMES, make_trainval_root  # noqa: E402

from converters.nuscenes.fixture import make_nuscenes_root  # noqa: E402
from dataengine.job import INLINE_BYTES, JobConfig, run_job  # noqa: E402

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


class TaskClock:
    """Start and end times of every job task, written by the workers (one file per task), and
    the bytes of its argument: the job's `_task` is wrapped for the run, the job unchanged."""

    def __init__(self, folder: Path):
        self.folder = folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def __enter__(self):
        import dataengine.job as job

        self.job, self.original, self.run_units = job, job._task, job._run_units
        job._task = _timed(self.original, str(self.folder))
        me = psutil.Process()
        self.cpu_start = sum(me.cpu_times()[:2])
        self.listing_cpu = 0.0

        def run_units(*args):  # dispatch begins: the driver has listed every unit
            self.listing_cpu = sum(me.cpu_times()[:2]) - self.cpu_start
            return self.run_units(*args)

        job._run_units = run_units
        return self

    def __exit__(self, *exc):
        self.job._task, self.job._run_units = self.original, self.run_units
        self.driver_cpu = sum(psutil.Process().cpu_times()[:2]) - self.cpu_start

    def tasks(self) -> list[dict]:
        return [orjson.loads(p.read_bytes()) for p in sorted(self.folder.glob("*.json"))]


def _timed(task, folder: str):
    def timed(cls, src, options, batch, shard_bytes):
        start, cpu = time.time(), time.process_time()
        out = task(cls, src, options, batch, shard_bytes)
        record = {"pid": os.getpid(), "start": start, "end": time.time(), "units": len(batch),
                  "cpu": time.process_time() - cpu,
                  "arg_bytes": sum(len(packed.blob) for packed, _ in batch)}
        Path(folder, f"{os.getpid()}-{start:.6f}.json").write_bytes(orjson.dumps(record))
        return out
    return timed


def store_created() -> tuple[int, int]:
    """(objects, bytes) ever created in Ray's object store (0, 0 when Ray does not say)."""
    try:
        from ray._private.internal_api import get_memory_info_reply, get_state_from_address

        stats = get_memory_info_reply(get_state_from_address()).store_stats
        return stats.cumulative_created_objects, stats.cumulative_created_bytes
    except Exception:  # a private API: absent from some Ray versions
        return 0, 0


def run_trainval(work: Path, scenes: int, workers: int, rounds: int) -> dict:
    """One root of `scenes` trainval-sized scenes: generated once (in a child process), then
    `rounds` alternating `tar` and conversion runs (medians), with task timings."""
    import ray

    root = work / f"trainval-{scenes}"
    if not root.exists():  # written under another name, renamed once whole
        print(f"generating {scenes} trainval-sized scenes ...", flush=True)
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        start = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(make_trainval_root, partial, scenes).result()
        partial.rename(root)
        print(f"  generated in {time.perf_counter() - start:.0f} s", flush=True)
    tables = {p.stem: p.stat().st_size for p in (root / "v1.0-trainval").glob("*.json")}
    start = time.perf_counter()
    for attempt in range(3):  # Ray's node gives up after 30 s on an overloaded machine
        try:
            ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=128 * 1024 * 1024,
                     configure_logging=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    startup = time.perf_counter() - start
    out, runs = work / "out", []
    try:
        for _ in range(rounds):
            tar_s = raw_tar(root, work / "raw.tar")
            (work / "raw.tar").unlink()
            shutil.rmtree(out, ignore_errors=True)
            objects0, bytes0 = store_created()
            with TaskClock(work / "tasks") as clock:
                job_start = time.time()
                conv_s, peak, samples = convert(root, out, workers)
            objects1, bytes1 = store_created()
            tasks = sorted(clock.tasks(), key=lambda t: t["start"])
            shutil.rmtree(out)
            gaps = []  # a worker's idle time between two of its tasks
            for pid in {t["pid"] for t in tasks}:
                mine = [t for t in tasks if t["pid"] == pid]
                gaps += [b["start"] - a["end"] for a, b in zip(mine, mine[1:])]
            runs.append({"load": os.getloadavg()[1], "tar_s": tar_s, "conv_s": conv_s, "samples": samples,
                         "driver": peak.driver, "driver_start": peak.start, "worker": peak.worker,
                         "first_task_s": tasks[0]["start"] - job_start, "tasks": len(tasks),
                         "gap_ms": 1e3 * statistics.median(gaps) if gaps else 0.0,
                         "over_inline": sum(t["arg_bytes"] > INLINE_BYTES for t in tasks),
                         "over_mb": sum(t["arg_bytes"] for t in tasks if t["arg_bytes"] > INLINE_BYTES) / 1e6,
                         "arg_mb": sum(t["arg_bytes"] for t in tasks) / 1e6,
                         "store_objects": objects1 - objects0, "store_mb": (bytes1 - bytes0) / 1e6,
                         "listing_cpu": clock.listing_cpu, "driver_cpu": clock.driver_cpu,
                         "worker_cpu": sum(t["cpu"] for t in tasks)})
            print(f"  {scenes} scenes: tar {tar_s:.1f} s, conversion {conv_s:.1f} s, first task after "
                  f"{runs[-1]['first_task_s']:.1f} s, driver peak {peak.driver / 1e6:.0f} MB", flush=True)
    finally:
        ray.shutdown()
    keyframes = scenes * KEYFRAMES
    median = {k: statistics.median(r[k] for r in runs)
              for k in ("tar_s", "conv_s", "first_task_s", "gap_ms", "listing_cpu", "driver_cpu", "worker_cpu")}
    return {**runs[-1], **median, "driver": max(r["driver"] for r in runs), "worker": max(r["worker"] for r in runs),
            "scenes": scenes, "keyframes": keyframes, "startup_s": startup, "rounds": rounds,
            "table_mb": sum(tables.values()) / 1e6, "sample_data_mb": tables["sample_data"] / 1e6,
            "annotation_mb": tables["sample_annotation"] / 1e6}


def cpu_report(rows: list[dict]) -> list[str]:
    """CPU time per key frame: what the conversion costs whatever else runs on the machine."""
    def per_kf(r: dict) -> float:
        return (r["driver_cpu"] + r["worker_cpu"]) / r["keyframes"]

    lines = ["| scenes | driver CPU s: listing, whole job | driver CPU ms per keyframe | worker CPU ms per keyframe "
             "| total CPU ms per keyframe | keyframes per CPU-second vs 2,000-keyframe run (target >= 0.9) |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['scenes']} | {r['listing_cpu']:.1f}, {r['driver_cpu']:.1f} | "
                     f"{1e3 * r['driver_cpu'] / r['keyframes']:.2f} | {1e3 * r['worker_cpu'] / r['keyframes']:.2f} | "
                     f"{1e3 * per_kf(r):.2f} | **{per_kf(rows[0]) / per_kf(r):.2f}** |")
    return lines


def trainval_report(rows: list[dict]) -> list[str]:
    base = rows[0]["keyframes"] / rows[0]["conv_s"]
    lines = ["| scenes | keyframes | tables MB (sample_data, sample_annotation) | keyframes/s | raw tar keyframes/s "
             "| ratio to tar | keyframes/s vs 2,000-keyframe run (target >= 0.9) | time to first task s "
             "| median gap between a worker's tasks ms | tasks (over Ray's inline limit: tasks, MB) "
             "| object store: objects, MB created (Ray's count) | driver RSS MB, start -> peak (target < 2,000) "
             "| peak worker RSS MB |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|"]
    for r in rows:
        kfs, tar = r["keyframes"] / r["conv_s"], r["keyframes"] / r["tar_s"]
        store = f"{r['store_objects']}, {r['store_mb']:.1f}" if r["store_objects"] else "n/a"
        lines.append(
            f"| {r['scenes']} | {r['keyframes']} | {r['table_mb']:.0f} ({r['sample_data_mb']:.0f}, "
            f"{r['annotation_mb']:.0f}) | {kfs:.0f} | {tar:.0f} | {kfs / tar:.2f} | **{kfs / base:.2f}** | "
            f"{r['first_task_s']:.1f} | {r['gap_ms']:.1f} | {r['tasks']} ({r['over_inline']}, {r['over_mb']:.1f}) | "
            f"{store} | {r['driver_start'] / 1e6:.0f} -> {r['driver'] / 1e6:.0f} | "
            f"{r['worker'] / 1e6:.0f} |")
    return lines


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
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating tar/conversion runs per scale (medians; 5, or 1 at --scale trainval)")
    parser.add_argument("--work", default="bench-out/convert")
    parser.add_argument("--keep", action="store_true", help="keep the generated roots for the next run")
    parser.add_argument("--write-docs", default=None, help="rewrite this section of docs/performance.md")
    parser.add_argument("--scale", choices=("fixture", "trainval"), default="fixture",
                        help="trainval: trainval's table sizes with small images (benchmarks/trainval_root.py)")
    parser.add_argument("--scenes", type=int, default=850, help="--scale trainval: scenes of 40 keyframes")
    parser.add_argument("--base-scenes", type=int, default=50,
                        help="--scale trainval: the baseline run's scenes (50: 2,000 keyframes)")
    args = parser.parse_args()
    n = 200 if args.quick else args.keyframes
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.scale == "trainval":
        args.rounds = args.rounds or 1
        return main_trainval(args, work)
    args.rounds = args.rounds or 5
    r1 = run_scale(work, n, args.workers, args.quality, args.rounds)
    r4 = run_scale(work, 4 * n, args.workers, args.quality, args.rounds)
    header = ["| keyframes | image MB | mean JPEG KB | samples/s | convert MB/s | raw tar MB/s | ratio (target >= 0.9) "
              "| first run's ratio | Ray start s (excluded) | driver RSS MB, start -> peak | peak worker RSS MB |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    table = header + report(r1, r4, args.workers)
    machine = machine_line(args.workers)
    print(f"\nconversion benchmark ({machine})")
    print("\n".join(table))
    if not args.keep:
        shutil.rmtree(work)
    if args.write_docs:
        from benchmarks_docs import rewrite_section

        rewrite_section(Path(args.write_docs), "convert", [f"Machine: {machine}.", "", *table])
    return 0


def machine_line(workers: int) -> str:
    return (f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
            f"{workers} Ray workers")


def main_trainval(args, work: Path) -> int:
    rows = []
    for scenes in (args.scenes, args.base_scenes):  # each in a fresh process: a clean driver heap
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows.insert(0, pool.submit(run_trainval, work, scenes, args.workers, args.rounds).result())
    table = trainval_report(rows) + [""] + cpu_report(rows)
    machine = machine_line(args.workers) + ", load average (5 min) during the runs: " + \
        ", ".join(f"{r['load']:.1f}" for r in rows)
    print(f"\ntrainval-scale conversion benchmark ({machine})")
    print("\n".join(table))
    if not args.keep:
        shutil.rmtree(work)
    if args.write_docs:
        from benchmarks_docs import rewrite_section

        rewrite_section(Path(args.write_docs), "convert_trainval", [f"Machine: {machine}.", "", *table])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
