"""`dataengine validate DIR`: re-read every shard and check it against its manifest and card.

Checks the root's media store first (every pack's members at their indexed offsets, hashing
to their sha1s; no pack outside the index). Then, per dataset/split: every shard the
manifest names exists and no other shard is there; each sample's context (if it has one)
resolves in the store and the merged sample passes the schema (sample/3); byte ranges and
media sha1s agree with the manifest, and every sha1 resolves in the store; counts agree with
the card and the quarantine; keys are unique across the whole root. The first problem raises
ValidationError naming the file.
"""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

from dataengine import SCHEMA_VERSION
from dataengine.context import FIELD as CONTEXT
from dataengine.errors import SchemaError, ValidationError
from dataengine.manifest import CARD, MANIFEST, QUARANTINE, dataset_splits, read_manifest, read_quarantine
from dataengine.mediastore import MediaStore, validate_store
from dataengine.reader import resolve_stored
from dataengine.schema import SHA1_RE, validate_sample


def _fail(path: Path, message: str) -> None:
    raise ValidationError(f"{path}: {message}")


def _scan_shard(path: Path) -> dict[str, dict]:
    """key -> {offset, end, members: {suffix: bytes}} for every sample in a shard."""
    found: dict[str, dict] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                key, _, suffix = info.name.partition(".")
                entry = found.setdefault(key, {"offset": info.offset, "members": {}})
                if suffix in entry["members"]:
                    _fail(path, f"member {info.name} appears twice")
                entry["members"][suffix] = tar.extractfile(info).read()
                entry["end"] = info.offset_data + -(-info.size // 512) * 512
    except tarfile.TarError as exc:
        _fail(path, f"unreadable tar ({exc})")
    return found


def _check_sample(path: Path, key: str, entry: dict, row: dict, store: MediaStore) -> None:  # noqa: C901 (one branch per check)
    members = entry["members"]
    index = store.index
    if "json" not in members:
        _fail(path, f"sample {key} has no .json member")
    try:
        sample = json.loads(members["json"])
        context = sample.get(CONTEXT) if isinstance(sample, dict) else None
        if context is not None and (not isinstance(context, str) or not SHA1_RE.fullmatch(context)
                                    or context not in index):
            _fail(path, f"sample {key}: context {context!r} is not in the media store")
        sample = resolve_stored(sample, store)
        validate_sample(sample)
    except (ValueError, SchemaError) as exc:
        _fail(path, f"sample {key}: {exc}")
    if sample["schema"] != SCHEMA_VERSION:
        _fail(path, f"sample {key} is {sample['schema']}, this engine writes {SCHEMA_VERSION}: rerun its "
                    "`dataengine convert` (docs/format.md, Migration)")
    if sample["id"] != key:
        _fail(path, f"sample {key}: JSON id is {sample['id']!r}")
    if (entry["offset"], entry["end"] - entry["offset"]) != (row["offset"], row["size"]):
        _fail(path, f"sample {key}: byte range differs from the manifest")
    names = [m["member"] for m in sample["media"]]
    if sorted(members) != ["json"] or row["members"] != names:
        _fail(path, f"sample {key}: members {sorted(members)} (only its json expected), manifest lists "
                    f"{row['members']} for media {names}")
    for i, item in enumerate(sample["media"]):
        if item["sha1"] != row["media_sha1"][i]:
            _fail(path, f"sample {key}: {item['member']} has sha1 {item['sha1']}, manifest {row['media_sha1'][i]}")
        if item["sha1"] not in index:
            _fail(path, f"sample {key}: {item['member']} (sha1 {item['sha1']}) is not in the media store")


def validate_split(split_dir: Path, seen_keys: dict[str, Path], store: MediaStore) -> int:  # noqa: C901 (one branch per check, each naming the bad file)
    manifest_path = split_dir / MANIFEST
    rows = read_manifest(manifest_path).to_pylist()
    card_path = split_dir / CARD
    if not card_path.exists():
        _fail(card_path, "missing")
    counts = json.loads(card_path.read_text()).get("counts", {})
    quarantine = read_quarantine(split_dir / QUARANTINE)
    if counts.get("samples") != len(rows):
        _fail(card_path, f"card counts {counts.get('samples')} samples, manifest has {len(rows)}")
    if counts.get("quarantined") != len(quarantine):
        _fail(card_path, f"card counts {counts.get('quarantined')} quarantined, quarantine.jsonl has {len(quarantine)}")
    if counts.get("records_in") != len(rows) + len(quarantine):
        _fail(card_path, "records_in != samples + quarantined")
    by_shard: dict[str, list[dict]] = {}
    for row in rows:
        by_shard.setdefault(row["shard"], []).append(row)
        if row["key"] in seen_keys:
            _fail(manifest_path, f"key {row['key']} also in {seen_keys[row['key']]}")
        seen_keys[row["key"]] = manifest_path
    on_disk = {p.name for p in split_dir.glob("*.tar")}
    for extra in sorted(on_disk - set(by_shard)):
        _fail(split_dir / extra, "shard not named by the manifest")
    for shard, shard_rows in by_shard.items():
        path = split_dir / shard
        if not path.exists():
            _fail(path, "named by the manifest but missing")
        found = _scan_shard(path)
        for row in shard_rows:
            if row["key"] not in found:
                _fail(path, f"sample {row['key']} missing")
            _check_sample(path, row["key"], found.pop(row["key"]), row, store)
        if found:
            _fail(path, f"samples not in the manifest: {sorted(found)[:3]}")
    return len(rows)


def validate_root(root: Path) -> dict[str, int]:
    """Validate every dataset/split under root; returns samples checked per dataset/split."""
    root = Path(root)
    splits = dataset_splits(root)
    if not splits:
        raise ValidationError(f"{root}: no <dataset>/<split>/{MANIFEST} found")
    validate_store(root)  # every stored sha1 against its bytes, before any reference to it
    store = MediaStore(root)
    seen: dict[str, Path] = {}
    try:
        return {f"{d}/{s}": validate_split(root / d / s, seen, store) for d, s in splits}
    finally:
        store.close()
