"""The conversion job: a converter's units run as Ray tasks that write shards themselves.

Embedded local Ray by default; `address` (or RAY_ADDRESS) joins an existing cluster, whose
workers must see the output directory (shared storage). Only small summaries travel back
through the object store; image bytes go straight from the source files into the tars.
"""
from __future__ import annotations

import errno
import gc
import hashlib
import importlib
import json
import os
import pickle
import socket
import sys
import time
import zlib
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dataengine import SCHEMA_VERSION
from dataengine.converter import Converter, Unit, check_unit_id, get, options_dict
from dataengine.errors import DataEngineError, UsageError
from dataengine.shards import DEFAULT_SHARD_BYTES
from dataengine.staging import convert_unit, finalize, is_up_to_date, prepare

# Ray passes a task argument under this size inline with the task (its
# `max_direct_call_object_size`, 100 KiB), a larger one through the object store
INLINE_BYTES = 100 * 1024 - 4096


@dataclass(frozen=True)
class JobConfig:
    dataset: str
    src: Path
    out: Path
    options: Any = None
    splits: tuple[str, ...] = ()
    workers: int = 2
    address: str | None = None
    limit: int | None = None
    shard_bytes: int = DEFAULT_SHARD_BYTES
    max_retries: int = 2
    progress: bool = True


@dataclass
class JobResult:
    cards: dict[str, dict] = field(default_factory=dict)
    skipped_splits: list[str] = field(default_factory=list)
    units_run: int = 0


@dataclass(frozen=True)
class PackedUnit:
    """A unit as the driver holds it from listing to dispatch: the payload pickled and
    zlib-compressed (a nuScenes scene: ~1 MB of Python objects, 104 KB pickled, 25 KB
    compressed, which Ray then ships inline with the task instead of through its object
    store), and the sha1 of its canonical JSON, which the job id is made of."""

    id: str
    split: str
    blob: bytes
    digest: bytes

    @classmethod
    def pack(cls, unit: Unit) -> PackedUnit:
        canonical = orjson.dumps([unit.id, unit.split, unit.payload], default=str,
                                 option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        blob = zlib.compress(pickle.dumps(unit.payload, protocol=5), 1)
        return cls(unit.id, unit.split, blob, hashlib.sha1(canonical).digest())

    def unpack(self) -> Unit:
        return Unit(self.id, self.split, pickle.loads(zlib.decompress(self.blob)))


def _task(cls: type[Converter], src: str, options: Any, batch: list[tuple[PackedUnit, str]],
          shard_bytes: int) -> list[dict]:
    """Convert a batch of units in one Ray task; each unit still reaches the ledger on its own."""
    converter = cls(Path(src), options)
    out = []
    for packed, split_dir in batch:
        unit = packed.unpack()
        summary = convert_unit(converter, unit, Path(split_dir), shard_bytes)
        out.append({"unit": unit.id, "samples": summary["samples"], "quarantined": len(summary["quarantine"]),
                    "bytes": summary["bytes"]})
    return out


def _batches(todo: list[tuple[PackedUnit, Path]], cpus: int,
             inline_bytes: int = INLINE_BYTES) -> list[list[tuple[PackedUnit, str]]]:
    """Group units so there are about 16 tasks per CPU: thousands of tiny units (BDD-X rows)
    would otherwise pay Ray's per-task cost each. A batch also stays under Ray's inline
    limit, so it travels with the task; a unit over the limit alone (a trainval scene with
    35 boxes per key frame: ~100 KB packed) is its own task, whose argument Ray passes
    through the object store, one scene at a time rather than 26 scenes per task."""
    size = max(1, min(64, len(todo) // (16 * cpus)))
    batches: list[list[tuple[PackedUnit, str]]] = []
    held = inline_bytes + 1
    for unit, split_dir in todo:
        if held + len(unit.blob) > inline_bytes or len(batches[-1]) >= size:
            batches.append([])
            held = 0
        batches[-1].append((unit, str(split_dir)))
        held += len(unit.blob)
    return batches


def _job_id(converter: Converter, units: list[PackedUnit], shard_bytes: int) -> str:
    """Hash of everything the output depends on: converter, options, every unit's metadata."""
    digest = hashlib.sha1(json.dumps([converter.name, converter.version, SCHEMA_VERSION,
                                      options_dict(converter.options), shard_bytes], sort_keys=True).encode())
    for u in units:
        digest.update(u.digest)
    return digest.hexdigest()


def _created_by(cfg: JobConfig, converter: Converter) -> str:
    parts = ["dataengine", "convert", cfg.dataset, "--src", str(cfg.src), "--out", str(cfg.out)]
    for split in cfg.splits:
        parts += ["--split", split]
    if cfg.limit is not None:
        parts += ["--limit", str(cfg.limit)]
    for key, value in options_dict(converter.options).items():
        parts += [f"--{key.replace('_', '-')}", str(value)]
    return " ".join(parts)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A `host:port` that nothing answers on is one line at once (ray.init would retry for
    a minute, then raise a traceback); "auto" and "ray://" addresses are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})") from None


def _init_ray(cfg: JobConfig) -> bool:
    """Start or join Ray; returns True when this call started it (and must stop it)."""
    import ray

    if ray.is_initialized():
        return False
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=True)
        except (ConnectionError, RuntimeError, PermissionError, ValueError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cannot join the Ray cluster at {address}: {message}") from None
    else:
        try:
            ray.init(num_cpus=cfg.workers, include_dashboard=False, object_store_memory=128 * 1024 * 1024,
                     log_to_driver=True, configure_logging=False)
        except Exception as exc:  # Ray raises a bare Exception when its node misses the 30 s startup wait
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataEngineError(f"could not start the embedded Ray: {message}; run the same command again "
                                  "(an overloaded machine), or join a cluster with --address") from None
    return True


class _Progress:
    """Units done, samples written, samples/s and ETA on stderr: a live bar on a terminal,
    a plain line every 10% of the units in a log (CI, `ray job submit`)."""

    def __init__(self, total: int, enabled: bool):
        from tqdm import tqdm

        self.total, self.done, self.samples = total, 0, 0
        self.live = enabled and sys.stderr.isatty()
        self.logged = enabled and not self.live
        self.bar = tqdm(total=total, unit="unit", disable=not self.live or total == 0, file=sys.stderr,
                        dynamic_ncols=True)
        self.start = time.perf_counter()

    def update(self, summary: dict) -> None:
        self.done += 1
        self.samples += summary["samples"]
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.samples / elapsed
        self.bar.set_postfix_str(f"{self.samples} samples, {rate:.1f} samples/s")
        self.bar.update(1)
        if self.logged and (self.done == self.total or self.done % max(1, self.total // 10) == 0):
            eta = elapsed / self.done * (self.total - self.done)
            print(f"convert: {self.done}/{self.total} units, {self.samples} samples, {rate:.1f} samples/s, "
                  f"ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


def _import(module: str) -> None:
    importlib.import_module(module)


def _warm_workers(cls: type[Converter]) -> list:
    """When this process already has Ray up (a joined cluster, a notebook, the demo), have
    the workers import the converter (numpy, pyarrow, ...) while the driver lists the units,
    so the first tasks start at once. Returns the refs, checked when the job ends."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return []
    cpus = max(1, min(128, int(ray.cluster_resources().get("CPU", 1))))
    remote = ray.remote(num_cpus=1)(_import)
    return [remote.remote(cls.__module__) for _ in range(cpus)]


class _ListingGC:
    """Listing units builds a large acyclic heap (a table index) that the cyclic GC would
    rescan as it grows (40% of listing time) and on every later collection (0.1 s of a
    2,000-keyframe job's finish). Collect nothing while listing; once `listed`, freeze what
    was built for the rest of the job (`gc.freeze`); give it back to the GC at the end."""

    def __enter__(self) -> _ListingGC:
        self.enabled = gc.isenabled()
        gc.disable()
        return self

    def listed(self) -> None:
        gc.freeze()
        if self.enabled:
            gc.enable()

    def __exit__(self, *exc) -> None:
        gc.unfreeze()
        if self.enabled:
            gc.enable()


@contextmanager
def _source_errors(cfg: JobConfig):
    """Listing reads the source's index files: one that breaks the reader (not UTF-8, a
    table of the wrong shape) refuses the whole source, as one line, like check_source.
    Records are checked later, one by one, in the workers, and quarantined there."""
    try:
        yield
    except UsageError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError) as exc:
        what = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise UsageError(f"{cfg.src}: not a readable {cfg.dataset} source ({what})") from None


def run_job(cfg: JobConfig) -> JobResult:
    with _ListingGC() as listing_gc:
        return _run_job(cfg, listing_gc)


def _run_job(cfg: JobConfig, listing_gc: _ListingGC) -> JobResult:
    cls = get(cfg.dataset)
    converter = cls(cfg.src, cfg.options)
    with _source_errors(cfg):
        converter.check_source()
    warming = _warm_workers(cls)
    by_split: dict[str, list[PackedUnit]] = {}
    with _source_errors(cfg):
        for unit in converter.units():  # packed as they come: a generator's payloads never pile up
            check_unit_id(unit)
            if not cfg.splits or unit.split in cfg.splits:
                by_split.setdefault(unit.split, []).append(PackedUnit.pack(unit))
    by_split = {split: sorted(units, key=lambda u: u.id) for split, units in by_split.items()}
    listing_gc.listed()
    if cfg.limit is not None:
        by_split = {s: us[: cfg.limit] for s, us in by_split.items()}

    result = JobResult()
    todo: list[tuple[PackedUnit, Path]] = []
    plans = {}
    for split, units in sorted(by_split.items()):
        split_dir = Path(cfg.out) / cfg.dataset / split
        job_id = _job_id(converter, units, cfg.shard_bytes)
        if is_up_to_date(split_dir, job_id):
            result.skipped_splits.append(split)
            continue
        split_dir.mkdir(parents=True, exist_ok=True)
        done = prepare(split_dir, job_id)
        todo += [(u, split_dir) for u in units if u.id not in done]
        plans[split] = (split_dir, units, job_id)

    if todo:
        _run_units(cfg, converter, todo)
        result.units_run = len(todo)
    for split, (split_dir, units, job_id) in plans.items():
        card = {
            "dataset": cfg.dataset, "split": split, "schema_version": SCHEMA_VERSION,
            "converter": {"name": converter.name, "version": converter.version,
                          "options": options_dict(converter.options)},
            "source": {"root": str(cfg.src), "fingerprint": job_id},
            "job_id": job_id, "created_by": _created_by(cfg, converter),
        }
        result.cards[split] = finalize(split_dir, [u.id for u in units], card)
    if warming:
        sys.modules["ray"].get(warming)
    return result


def _raise_disk_full(exc: Exception, out: Path) -> None:
    """A full output disk is the operator's to fix, not a bug: one line (exit 1), and the
    rerun resumes from the ledger, which kept every unit that finished."""
    cause = getattr(exc, "cause", exc)
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DataEngineError(f"no space left on the output disk ({out}): free some and run the same "
                              "command again; finished units are kept") from None


def _run_units(cfg: JobConfig, converter: Converter, todo: list[tuple[PackedUnit, Path]]) -> None:
    import ray

    started = _init_ray(cfg)
    try:
        remote = ray.remote(num_cpus=1, max_retries=cfg.max_retries, retry_exceptions=[OSError])(_task)
        # bounded in-flight work: two tasks per CPU of the (local or joined) cluster
        cpus = max(1, int(ray.cluster_resources().get("CPU", cfg.workers)))
        pending, in_flight = deque(_batches(todo, cpus)), {}
        progress = _Progress(len(todo), cfg.progress)
        try:
            while pending or in_flight:
                while pending and len(in_flight) < 2 * cpus:
                    batch = pending.popleft()
                    ref = remote.remote(type(converter), str(cfg.src), converter.options, batch, cfg.shard_bytes)
                    in_flight[ref] = batch
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                ready, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=0) if len(in_flight) > 1 \
                    else (ready, None)
                for ref in ready:
                    in_flight.pop(ref)
                    try:
                        summaries = ray.get(ref)
                    except Exception as exc:
                        # let the running units finish and reach the ledger, then fail
                        pending.clear()
                        ray.wait(list(in_flight), num_returns=len(in_flight))
                        _raise_disk_full(exc, cfg.out)
                        raise
                    for summary in summaries:
                        progress.update(summary)
        finally:
            progress.close()
    finally:
        if started:
            ray.shutdown()
