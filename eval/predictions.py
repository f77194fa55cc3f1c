"""`predictions.jsonl`: one line per evaluated sample, written as generation goes, read to resume.

Each rank appends to its own part file `parts/rank-<r>.jsonl` (flushed and fsynced per
batch, so a kill loses at most the batch in flight); a later run skips every (benchmark, id)
already in any part file, whatever the world size then was. When all ranks are done the
parts are merged into `predictions.jsonl`, ordered by benchmark (in `--benchmarks` order)
and sample (manifest order), so the file is the same bytes however the work was split.

A line cut short by a kill (the last line of a part without its newline) is dropped and
regenerated; any other unreadable line is an error that names the file and line. A row
made by another model, or under another definition of its benchmark, is refused, never
mixed in.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from dataengine.errors import UsageError

PARTS = "parts"
MERGED = "predictions.jsonl"
REQUIRED = ("benchmark", "id", "prompt_sha1", "prediction", "references", "model", "decoding")


def part_path(out: Path, rank: int) -> Path:
    return Path(out) / PARTS / f"rank-{rank:05d}.jsonl"


def _parse_line(line: str, path: Path, number: int) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{number}: not a JSON line ({exc.msg}); delete the file to regenerate it") from None
    missing = [k for k in REQUIRED if not isinstance(row, dict) or k not in row]
    if missing:
        raise UsageError(f"{path}:{number}: a prediction row needs {', '.join(missing)}")
    if not isinstance(row["prediction"], list) or not all(isinstance(p, str) for p in row["prediction"]):
        raise UsageError(f"{path}:{number}: 'prediction' must be a list of strings (one per question)")
    return row


def read_rows(path: Path, repair: bool = False) -> list[dict]:
    """Rows of a JSONL file. With `repair`, a last line without its newline (a write cut by a
    kill) is cut off the file and left out; without, it is an error like any bad line."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        if not repair:
            raise UsageError(f"{path}: the last line is incomplete (an interrupted write)")
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    lines = data.decode("utf-8").split("\n")[:-1] if data else []
    return [_parse_line(line, path, i + 1) for i, line in enumerate(lines) if line.strip()]


def done_rows(out: Path) -> dict[tuple[str, str], dict]:
    """(benchmark, id) -> row, over every part file (repairing cut-off last lines)."""
    rows: dict[tuple[str, str], dict] = {}
    for path in sorted((Path(out) / PARTS).glob("rank-*.jsonl")):
        for row in read_rows(path, repair=True):
            rows.setdefault((row["benchmark"], row["id"]), row)
    return rows


def check_same_run(row: dict, model: dict, benchmark_sha1: str, decoding: dict, out: Path) -> None:
    """Refuse to resume over predictions of another model, another benchmark definition
    (its prompt, decoding or scorers changed) or other decoding settings (--max-new-tokens)."""
    if row["model"] != model:
        raise UsageError(f"{out}: holds predictions of model {row['model'].get('label')!r} "
                         f"({row['model'].get('digest')}), not {model.get('label')!r}; use another --out")
    if row.get("benchmark_sha1") != benchmark_sha1:
        raise UsageError(f"{out}: {row['benchmark']}/{row['id']} was predicted under another definition of "
                         f"benchmark {row['benchmark']!r} (its YAML changed); use another --out")
    if row["decoding"] != decoding:
        raise UsageError(f"{out}: {row['benchmark']}/{row['id']} was generated with {row['decoding']}, not "
                         f"{decoding} (another --max-new-tokens?); use another --out")


class PartWriter:
    """Appends rows to one rank's part file; `write_batch` makes them durable."""

    def __init__(self, out: Path, rank: int):
        self.path = part_path(out, rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def write_batch(self, rows: list[dict]) -> None:
        for row in rows:
            self._file.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def merge(out: Path, order: list[tuple[str, str]]) -> Path:
    """Write predictions.jsonl from the part files in `order` ((benchmark, id) pairs); rows
    not in `order` (another --limit, dropped benchmarks) stay in the parts but not in the merge."""
    rows = done_rows(out)
    path = Path(out) / MERGED
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for key in order:
            if key in rows:
                f.write(json.dumps(rows[key], sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def load_predictions(path: Path) -> list[dict]:
    """The merged file, strictly (every line must be a complete row)."""
    if not Path(path).is_file():
        raise UsageError(f"{path}: no predictions file; run `python -m eval` without --score-only first")
    return read_rows(path)
