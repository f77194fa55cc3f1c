"""One unit's output on disk, the ledger of finished units, and the final commit.

A worker writes a unit's samples into `_work/staged/<unit>-<part>.tar`, its new images and
sample contexts (`dataengine/context.py`) into `_work/media/<unit>-<part>.tar` (media packs,
`dataengine/mediastore.py`) and then, last, its ledger entry `_work/done/<unit>.json`
(atomically), so a unit is either finished or redone. When every unit of a split is
finished, `finalize` merges the staged media into the root's store, then renames the staged
parts to `shard-000000.tar ...` in unit order (a rename, no copy) and writes the manifest,
the quarantine and the card. The shard numbering depends only on the units, never on which
worker finished first, so the output is the same whatever the worker count.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import orjson

from dataengine.context import EXT as CONTEXT_EXT
from dataengine.context import FIELD as CONTEXT
from dataengine.context import reference
from dataengine.converter import Converter, Quarantined, Record, Unit
from dataengine.jsonfile import write_json
from dataengine.manifest import (
    CARD,
    MANIFEST,
    QUARANTINE,
    manifest_row,
    reason_category,
    write_manifest,
    write_quarantine,
)
from dataengine.mediastore import StagedMedia, commit
from dataengine.shards import TarShardWriter, sample_json, seal

WORK = "_work"
MEDIA_STAGED = "media"  # a unit's new media packs, under WORK until the split commits


def _atomic_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)


def convert_unit(converter: Converter, unit: Unit, split_dir: Path, shard_bytes: int) -> dict:
    """Convert one unit into staged shards and record it in the ledger; returns its summary."""
    work = split_dir / WORK
    writer = TarShardWriter(work / "staged", unit.id, shard_bytes)
    media = StagedMedia(split_dir.parent.parent, work / MEDIA_STAGED, unit.id, shard_bytes)
    rows, quarantine, keys = [], [], set()
    try:
        for item in converter.convert_unit(unit):
            if isinstance(item, Quarantined):
                quarantine.append({"unit": unit.id, "record_id": item.record_id, "reason": item.reason})
                continue
            if not isinstance(item, Record):
                raise TypeError(f"{converter.name}.convert_unit yielded {type(item).__name__}")
            sample = seal(item)
            if sample["split"] != unit.split:
                raise ValueError(f"sample {sample['id']}: split {sample['split']!r} in unit of split {unit.split!r}")
            if sample["id"] in keys:
                raise ValueError(f"sample key {sample['id']!r} repeated in unit {unit.id}")
            keys.add(sample["id"])
            media.add(sample, item.media)
            stored = sample
            if item.context is not None:  # the shared fields once in the store, a sha1 in the sample
                context = sample_json(item.context)
                stored = reference(item.sample, context)
                media.add_blob(stored[CONTEXT], CONTEXT_EXT, context)
            where = writer.write(sample["id"], stored)
            row = manifest_row(sample, unit.id, where.offset, where.size)
            row["part"] = where.part
            rows.append(row)
    finally:
        writer.close()
        media.close()
    summary = {"unit": unit.id, "parts": [p.name for p in writer.parts], "rows": rows,
               "quarantine": quarantine, "samples": len(rows),
               "bytes": sum(p.stat().st_size for p in writer.parts),
               "media": media.entries, "media_parts": [p.name for p in media.parts]}
    _atomic_json(work / "done" / f"{unit.id}.json", summary)
    return summary


def prepare(split_dir: Path, job_id: str) -> set[str]:
    """Set up the work dir for `job_id`; returns the units already finished (the ledger).
    A ledger of another job (other source, options or converter version) is discarded."""
    work = split_dir / WORK
    job_file = work / "job.json"
    if work.exists() and (not job_file.exists() or json.loads(job_file.read_text())["job_id"] != job_id):
        shutil.rmtree(work)
    if not work.exists():
        for old in split_dir.glob("*"):
            if old.is_file():
                old.unlink()
        (work / "staged").mkdir(parents=True)
        (work / "done").mkdir()
        _atomic_json(job_file, {"job_id": job_id})
    return {p.stem for p in (work / "done").glob("*.json")}


def is_up_to_date(split_dir: Path, job_id: str) -> bool:
    """The split was finished by this job and its shards are still whole: a shard truncated
    or lost since (a full disk, a bad copy) has other sizes than the card's, and the split
    is converted again (`dataengine validate` names the damaged file)."""
    card_path = split_dir / CARD
    if not card_path.exists() or (split_dir / WORK).exists():
        return False
    card = json.loads(card_path.read_text())
    counts = card.get("counts", {})
    shards = [split_dir / f"shard-{i:06d}.tar" for i in range(counts.get("shards", 0))]
    return (card.get("job_id") == job_id and all(p.exists() for p in shards)
            and sum(p.stat().st_size for p in shards) == counts.get("bytes"))


def _commit_media(split_dir: Path, summaries: list[dict]) -> dict:
    """The units' staged media into the root's store (before the manifest names them); what
    it added is kept in the work dir, so an interrupted finalize reports it on its rerun."""
    done = split_dir / WORK / "media_commit.json"
    if done.exists():
        return orjson.loads(done.read_bytes())
    media = commit(split_dir.parent.parent, split_dir / WORK / MEDIA_STAGED, summaries)
    _atomic_json(done, media)
    return media


def finalize(split_dir: Path, unit_ids: list[str], card: dict) -> dict:
    """Commit the staged parts of the units (in this order) as numbered shards and write the
    manifest, quarantine and card."""
    work = split_dir / WORK
    rows, quarantine, seen, summaries = [], [], {}, []
    shard_index = 0
    for unit_id in unit_ids:
        summary = orjson.loads((work / "done" / f"{unit_id}.json").read_bytes())
        summaries.append(summary)
        names = []
        for part in summary["parts"]:
            name = f"shard-{shard_index:06d}.tar"
            staged = work / "staged" / part
            if staged.exists():  # absent when an interrupted finalize already moved it
                os.replace(staged, split_dir / name)
            names.append(name)
            shard_index += 1
        for row in summary["rows"]:
            if row["key"] in seen:
                raise ValueError(f"sample key {row['key']!r} produced by units {seen[row['key']]} and {unit_id}")
            seen[row["key"]] = unit_id
            row["shard"] = names[row.pop("part")]
            rows.append(row)
        quarantine.extend(summary["quarantine"])
    media = _commit_media(split_dir, summaries)
    write_manifest(rows, split_dir / MANIFEST)
    write_quarantine(quarantine, split_dir / QUARANTINE)
    card = dict(card)
    card["counts"] = {
        "units": len(unit_ids), "samples": len(rows), "quarantined": len(quarantine),
        "records_in": len(rows) + len(quarantine), "shards": shard_index,
        "bytes": sum((split_dir / f"shard-{i:06d}.tar").stat().st_size for i in range(shard_index)),
        **media,
    }
    card["tasks"] = dict(sorted(Counter(r["task"] for r in rows).items()))
    card["layouts"] = dict(sorted(Counter(r["layout"] for r in rows).items()))
    card["quarantine_reasons"] = dict(sorted(Counter(reason_category(q["reason"]) for q in quarantine).items()))
    write_json(split_dir / CARD, card)
    shutil.rmtree(work)
    return card
