"""Per dataset/split metadata files: manifest.parquet, card.json, quarantine.jsonl."""
from __future__ import annotations

import functools
import io
import json
import re
from pathlib import Path

import orjson

from dataengine.tokens import text_tokens, visual_tokens

MANIFEST = "manifest.parquet"
CARD = "card.json"
QUARANTINE = "quarantine.jsonl"

_DETAIL_RE = re.compile(r"'[^']*'|\"[^\"]*\"|\S*[\d/\\]\S*")


@functools.cache
def manifest_schema():
    """The manifest's Arrow schema. pyarrow is imported here, not at module level: workers
    only build rows, and pyarrow is 80 ms of every Ray worker's start-up."""
    import pyarrow as pa

    return pa.schema([
        ("key", pa.string()),
        ("shard", pa.string()),
        ("offset", pa.int64()),          # byte offset of the sample's first tar header in the shard
        ("size", pa.int64()),            # bytes of all its members, headers and padding included
        ("unit", pa.string()),           # the conversion work unit that produced it
        ("task", pa.string()),
        ("layout", pa.string()),
        ("n_media", pa.int32()),
        ("cameras", pa.list_(pa.string())),
        ("members", pa.list_(pa.string())),
        ("media_sha1", pa.list_(pa.string())),
        ("text_chars", pa.int64()),
        ("text_tokens", pa.int64()),
        ("visual_tokens", pa.int64()),
        ("scene_id", pa.string()),
        ("frame_id", pa.string()),
    ])


def manifest_row(sample: dict, unit: str, offset: int, size: int, shard: str = "") -> dict:
    media = sample["media"]
    chars = sum(len(turn["content"]) for turn in sample["conversations"])
    return {
        "key": sample["id"], "shard": shard, "offset": offset, "size": size, "unit": unit,
        "task": sample["task"], "layout": sample["layout"], "n_media": len(media),
        "cameras": [m["camera"] for m in media], "members": [m["member"] for m in media],
        "media_sha1": [m["sha1"] for m in media], "text_chars": chars,
        "text_tokens": text_tokens(chars), "visual_tokens": visual_tokens(sample["layout"], len(media)),
        "scene_id": sample["scene_id"], "frame_id": sample["frame_id"],
    }


def write_manifest(rows: list[dict], path: Path) -> None:
    """Rows in order to parquet. They go through Arrow's C++ JSON reader against the schema:
    pyarrow's Python-object conversion (`Table.from_pylist`) imports pandas, about 0.2 s of
    every conversion job's finish."""
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    if rows:
        lines = b"\n".join(orjson.dumps(row) for row in rows)
        table = pa_json.read_json(io.BytesIO(lines), parse_options=pa_json.ParseOptions(
            explicit_schema=manifest_schema(), unexpected_field_behavior="error"))
    else:
        table = manifest_schema().empty_table()
    pq.write_table(table, path, compression="zstd")


def read_manifest(path: Path):
    """The manifest as a pyarrow Table."""
    import pyarrow.parquet as pq

    return pq.read_table(path, schema=manifest_schema())


def write_quarantine(entries: list[dict], path: Path) -> None:
    with open(path, "w") as f:
        for entry in entries:
            f.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")


def reason_category(reason: str) -> str:
    """Group quarantine reasons: the text before the first ':' or '(', with quoted values and
    words holding digits or slashes (paths, ids, counts) replaced by '…'.
    'missing image samples/CAM_FRONT/x.jpg' -> 'missing image …'."""
    head = re.split(r"[:(]", reason, maxsplit=1)[0]
    head = re.sub(r"…(\s*…)+", "…", _DETAIL_RE.sub("…", head))
    return " ".join(head.split()) or "(no reason given)"


def read_quarantine(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def dataset_splits(root: Path) -> list[tuple[str, str]]:
    """Every (dataset, split) under a shard root that has a manifest, sorted."""
    root = Path(root)
    return sorted((p.parent.parent.name, p.parent.name) for p in root.glob(f"*/*/{MANIFEST}"))
