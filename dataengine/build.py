"""`dataengine build corpus.yaml`: a whole corpus into one shard root in one command.

A corpus file lists the sources; `build` converts them in one documented order (nuScenes
first: the datasets annotating its key frames then find every camera image already in the
media store, so the store's packs are the same whichever order the file lists them in),
then validates the root, writes the cards and runs the leakage audit, and ends with one
table of samples, quarantined records and bytes per dataset. A source whose splits are
built and current (same converter version, options and source fingerprint: the job id) is
skipped; when every source is, nothing is rewritten. Relative paths in the file are taken
from `--base` (default: the corpus file's folder).

    out: shards                # optional; --out wins
    sources:
      - dataset: nuscenes
        src: /data/nuscenes
      - dataset: drivelm
        src: /data/DriveLM/v1_1_train_nus.json
        options: {nuscenes_root: /data/nuscenes}
        splits: [train]
      - dataset: talk2car
        fixture: raw/talk2car  # a generated fixture, written there, converted as its jobs say
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from dataengine.converter import get, parse_options
from dataengine.errors import UsageError
from dataengine.jsonfile import write_json

FIRST = ("nuscenes",)  # converted before every other source: the others reference its images
STATE = "build.json"


@dataclass(frozen=True)
class Source:
    dataset: str
    src: Path | None
    options: dict
    splits: tuple[str, ...]
    fixture: Path | None = None


@dataclass(frozen=True)
class BuildConfig:
    corpus: Path
    out: Path | None = None
    base: Path | None = None
    workers: int = 2
    progress: bool = True
    audit: bool = True


def _path(value, base: Path) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def read_corpus(cfg: BuildConfig) -> tuple[Path, list[Source]]:
    """The shard root and the sources in conversion order; a bad file is a UsageError."""
    import yaml

    path = Path(cfg.corpus)
    if not path.is_file():
        raise UsageError(f"{path}: no such corpus file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None
    base = Path(cfg.base) if cfg.base is not None else path.parent
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list) or not data["sources"]:
        raise UsageError(f"{path}: needs a non-empty `sources:` list")
    out = cfg.out if cfg.out is not None else data.get("out")
    if out is None:
        raise UsageError(f"{path}: no `out:` in the file; give --out")
    sources = []
    for i, entry in enumerate(data["sources"]):
        if not isinstance(entry, dict) or "dataset" not in entry or ("src" in entry) == ("fixture" in entry):
            raise UsageError(f"{path}: sources[{i}] needs `dataset` and one of `src` or `fixture`")
        unknown = set(entry) - {"dataset", "src", "fixture", "options", "splits"}
        if unknown:
            raise UsageError(f"{path}: sources[{i}] has unknown keys {sorted(unknown)}")
        get(entry["dataset"])  # an unknown dataset: a UsageError naming the known ones
        sources.append(Source(entry["dataset"], _path(entry["src"], base) if "src" in entry else None,
                              dict(entry.get("options") or {}), tuple(entry.get("splits") or ()),
                              _path(entry["fixture"], base) if "fixture" in entry else None))
    order = sorted(range(len(sources)), key=lambda i: (sources[i].dataset not in FIRST, i))
    return _path(out, Path.cwd()), [sources[i] for i in order]


def _jobs(source: Source, out: Path, workers: int, progress: bool) -> list:
    """The conversion jobs of a source; a fixture is (re)written deterministically and may
    hold several (DriveLM: train and val files)."""
    from dataengine.fixtures import fixture_jobs
    from dataengine.job import JobConfig

    if source.fixture is not None:
        pairs = fixture_jobs(source.dataset, source.fixture)
    else:
        cls = get(source.dataset)
        pairs = [(source.src, parse_options(cls, {k: str(v) for k, v in source.options.items()}))]
    return [JobConfig(dataset=source.dataset, src=src, out=out, options=options, splits=source.splits,
                      workers=workers, progress=progress) for src, options in pairs]


def _split_row(dataset: str, split: str, card: dict, converted: bool) -> dict:
    c = card["counts"]
    return {"dataset": dataset, "split": split, "samples": c["samples"], "quarantined": c["quarantined"],
            "shard_bytes": c["bytes"],  # and what it added to the store: images, sample contexts
            "media_bytes_added": c.get("media_bytes_added", 0) + c.get("context_bytes_added", 0),
            "converted": converted, "job_id": card["job_id"]}


def convert_sources(out: Path, sources: list[Source], workers: int, progress: bool) -> list[dict]:
    """Every source's jobs in order; one row per dataset/split, converted now or skipped."""
    import ray

    from dataengine.job import run_job
    from dataengine.manifest import CARD

    started = not ray.is_initialized()  # one Ray for every job (each would start its own)
    if started:
        ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=128 * 1024 * 1024,
                 configure_logging=False, log_to_driver=progress)
    rows = []
    try:
        for n, source in enumerate(sources, 1):
            jobs = _jobs(source, out, workers, progress)
            print(f"[build {n}/{len(sources)}] {source.dataset}: {len(jobs)} job(s)", file=sys.stderr, flush=True)
            for job in jobs:
                result = run_job(job)
                for split, card in sorted(result.cards.items()):
                    rows.append(_split_row(source.dataset, split, card, True))
                for split in result.skipped_splits:
                    card = json.loads((out / source.dataset / split / CARD).read_text())
                    rows.append(_split_row(source.dataset, split, card, False))
    finally:
        if started:
            ray.shutdown()
    return rows


def summary_table(rows: list[dict]) -> str:
    """Per dataset: samples, quarantined records, bytes written (its shards and the media and
    sample contexts it added to the store), and whether anything was converted in this run."""
    by: dict[str, dict] = {}
    for r in rows:
        d = by.setdefault(r["dataset"], {"samples": 0, "quarantined": 0, "bytes": 0, "converted": False})
        d["samples"] += r["samples"]
        d["quarantined"] += r["quarantined"]
        d["bytes"] += r["shard_bytes"] + r["media_bytes_added"]
        d["converted"] |= r["converted"]
    lines = [f"{'dataset':16s} {'samples':>9s} {'quarantined':>11s} {'MB':>9s}  status"]
    for name, d in by.items():
        lines.append(f"{name:16s} {d['samples']:9d} {d['quarantined']:11d} {d['bytes'] / 2**20:9.2f}  "
                     f"{'converted' if d['converted'] else 'up to date'}")
    total = {k: sum(d[k] for d in by.values()) for k in ("samples", "quarantined", "bytes")}
    lines.append(f"{'total':16s} {total['samples']:9d} {total['quarantined']:11d} {total['bytes'] / 2**20:9.2f}")
    return "\n".join(lines)


def build(cfg: BuildConfig) -> dict:
    """Convert every source; then, unless the root is exactly as the last finished build left
    it (the state file lists every split's job id), validate, write the cards and audit.
    Returns {"rows", "checked", "leak", "up_to_date"}."""
    out, sources = read_corpus(cfg)
    rows = convert_sources(out, sources, cfg.workers, cfg.progress)
    state = {"splits": sorted([r["dataset"], r["split"], r["job_id"]] for r in rows)}
    state_path = out / STATE
    if state_path.exists() and json.loads(state_path.read_text()) == state:
        return {"rows": rows, "checked": {}, "leak": None, "up_to_date": True}
    from dataengine.audit import AuditConfig, LeakageError
    from dataengine.audit_report import main as audit
    from dataengine.cards import write_cards
    from dataengine.validate import validate_root

    print("[build] validating the root", file=sys.stderr, flush=True)
    checked = validate_root(out)
    print("[build] writing the dataset cards", file=sys.stderr, flush=True)
    write_cards(out)
    leak = None
    if cfg.audit:
        print("[build] auditing leakage", file=sys.stderr, flush=True)
        try:
            audit(AuditConfig(root=out))
        except LeakageError as exc:
            leak = str(exc)
    write_json(state_path, state)
    return {"rows": rows, "checked": checked, "leak": leak, "up_to_date": False}


def main(cfg: BuildConfig) -> int:
    result = build(cfg)
    print(summary_table(result["rows"]))
    if result["up_to_date"]:
        print("build: every source is built and current; nothing to do")
    else:
        print(f"build: {len(result['checked'])} dataset/splits validated, {sum(result['checked'].values())} samples")
    if result["leak"]:
        print(f"build: WARNING {result['leak']}", file=sys.stderr)
        return 1
    return 0
