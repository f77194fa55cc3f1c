"""The content-addressed media store of a shard root: every image once, whoever references it.

Six sources annotate the same nuScenes key frames; storing their images per sample repeated
each camera frame in every dataset and every question. Here the bytes live once per shard
root, under `<root>/media/`:

    packs/pack-<40 hex>.tar    GNU tar files of members `<sha1>.<ext>` (the source bytes, as
                               they came; `<sha1>.json`: a sample context, `dataengine/
                               context.py`); the name is the sha1 of the members' sha1 list,
                               so equal packs have equal names and a pack is never rewritten
    index.parquet              sha1 -> pack, offset, size, width, height (0 for a context);
                               sorted by sha1
    .lock                      held (fcntl) while a job merges its packs into the index

A worker stages the new media of its unit (those not in the index, each once) in a pack of
its own; the job's `commit` moves the packs in and merges their entries into the index under
the lock, dropping (and rewriting a pack without) any entry another unit or another job
committed first. So parallel workers and concurrent jobs never lose or double an entry, and a
unit's media become visible only when its split is committed. Reading is one `pread` of the
pack per image, located by a binary search of the sorted index.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from dataengine.context import EXT as CONTEXT_EXT
from dataengine.errors import ValidationError

MEDIA = "media"
PACKS = "packs"
INDEX = "index.parquet"
LOCK = ".lock"
HEADER = 512  # one GNU tar header before each member's data (names are 44 bytes)


@functools.cache
def index_schema():
    import pyarrow as pa

    return pa.schema([("sha1", pa.string()), ("pack", pa.string()), ("offset", pa.int64()),
                      ("size", pa.int64()), ("width", pa.int32()), ("height", pa.int32())])


def media_dir(root: Path) -> Path:
    return Path(root) / MEDIA


def pack_name(sha1s: list[str]) -> str:
    """A pack's name from its members: equal member lists give equal bytes and equal names."""
    return f"pack-{hashlib.sha1(chr(10).join(sha1s).encode()).hexdigest()}.tar"


class MediaIndex:
    """The index as sorted arrays: sha1s as 20-byte keys (binary search), pack ids, ranges."""

    def __init__(self, table=None):
        if table is None or table.num_rows == 0:
            self.keys = np.empty(0, "S20")
            self.packs: list[str] = []
            self.pack_id = np.empty(0, np.int32)
            self.offset = self.size = np.empty(0, np.int64)
            self.width = self.height = np.empty(0, np.int32)
            return
        hexes = table.column("sha1").to_pylist()
        self.keys = np.frombuffer(bytes.fromhex("".join(hexes)), "S20")
        packs = table.column("pack").dictionary_encode().combine_chunks()
        self.packs = packs.dictionary.to_pylist()
        self.pack_id = packs.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        self.offset = table.column("offset").to_numpy()
        self.size = table.column("size").to_numpy()
        self.width = table.column("width").to_numpy()
        self.height = table.column("height").to_numpy()

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, sha1: str) -> int:
        """Row of `sha1`, or -1."""
        key = bytes.fromhex(sha1)
        i = int(np.searchsorted(self.keys, key))
        # numpy's S20 drops trailing NUL bytes when it hands an element back
        return i if i < len(self.keys) and self.keys[i] == key.rstrip(b"\0") else -1

    def __contains__(self, sha1: str) -> bool:
        return self.find(sha1) >= 0

    def rows(self) -> list[dict]:
        return [{"sha1": k.ljust(20, b"\0").hex(), "pack": self.packs[p], "offset": int(o), "size": int(s),
                 "width": int(w), "height": int(h)}
                for k, p, o, s, w, h in zip(self.keys, self.pack_id, self.offset, self.size, self.width,
                                            self.height)]


def read_index(root: Path) -> MediaIndex:
    import pyarrow.parquet as pq

    path = media_dir(root) / INDEX
    return MediaIndex(pq.read_table(path, schema=index_schema()) if path.exists() else None)


_CACHE: dict[str, tuple[tuple, MediaIndex]] = {}


def cached_index(root: Path) -> MediaIndex:
    """The index, read again only when the file changed (workers check it once per unit)."""
    path = media_dir(root) / INDEX
    try:
        st = path.stat()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        stamp = ()
    key = str(path.resolve())
    if key not in _CACHE or _CACHE[key][0] != stamp:
        _CACHE[key] = (stamp, read_index(root))
    return _CACHE[key][1]


class MediaStore:
    """Reads media bytes by sha1: one binary search, one `pread`. File descriptors are opened
    on first use and kept; `pread` has no shared file offset, so forked workers can share them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.index = cached_index(root)
        self._fds: dict[int, int] = {}

    def __contains__(self, sha1: str) -> bool:
        return sha1 in self.index

    def read(self, sha1: str) -> bytes:
        i = self.index.find(sha1)
        if i < 0:
            raise KeyError(f"media {sha1} is not in {media_dir(self.root) / INDEX}")
        p = int(self.index.pack_id[i])
        fd = self._fds.get(p)
        if fd is None:
            fd = self._fds[p] = os.open(media_dir(self.root) / PACKS / self.index.packs[p], os.O_RDONLY)
        size = int(self.index.size[i])
        data = os.pread(fd, size, int(self.index.offset[i]))
        if len(data) != size:
            raise OSError(f"{self.index.packs[p]}: short read of media {sha1}")
        return data

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _fds={})


class StagedMedia:
    """A unit's new media, staged in packs of their own: each image not already in the store's
    index (as it stood when the unit began) and not yet staged by this unit, once."""

    def __init__(self, root: Path, directory: Path, stem: str, pack_bytes: int):
        from dataengine.shards import TarShardWriter

        Path(directory).mkdir(parents=True, exist_ok=True)
        self.index = cached_index(root)
        self.writer = TarShardWriter(directory, stem, pack_bytes)
        self.entries: list[dict] = []
        self._staged: set[str] = set()

    def add(self, sample: dict, blobs: list[bytes]) -> None:
        for item, blob in zip(sample["media"], blobs):
            self.add_blob(item["sha1"], item["member"].rpartition(".")[2], blob, item["width"], item["height"])

    def add_blob(self, sha1: str, ext: str, blob: bytes, width: int = 0, height: int = 0) -> None:
        """One entry by its sha1: an image, or a sample context (`json`, width and height 0)."""
        if sha1 in self._staged or sha1 in self.index:
            return
        self._staged.add(sha1)
        where = self.writer.write_members([(f"{sha1}.{ext}", blob)])
        self.entries.append({"sha1": sha1, "ext": ext, "part": where.part, "offset": where.offset + HEADER,
                             "size": len(blob), "width": width, "height": height})

    def close(self) -> None:
        self.writer.close()

    @property
    def parts(self) -> list[Path]:
        return self.writer.parts


@contextmanager
def locked(root: Path):
    """The store's merge lock (fcntl: released by the kernel if the holder dies)."""
    directory = media_dir(root)
    (directory / PACKS).mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_index(root: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted(rows, key=lambda r: r["sha1"])
    table = pa.Table.from_pydict({name: [r[name] for r in rows] for name in index_schema().names},
                                 schema=index_schema())
    path = media_dir(root) / INDEX
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _copy_members(staged: Path, entries: list[dict], dest: Path) -> list[int]:
    """Write the `entries` of a staged pack into a new pack at `dest`; returns their offsets."""
    from dataengine.shards import TarShardWriter

    writer = TarShardWriter(dest.parent, f".tmp-{dest.stem}", shard_bytes=1 << 62)
    offsets = []
    with open(staged, "rb") as f:
        for e in entries:
            blob = os.pread(f.fileno(), e["size"], e["offset"])
            offsets.append(writer.write_members([(f"{e['sha1']}.{e['ext']}", blob)]).offset + HEADER)
    writer.close()
    os.replace(writer.parts[0], dest)
    return offsets


def commit(root: Path, staged_dir: Path, units: list[dict]) -> dict:
    """Merge the staged packs of `units` (ledger summaries, in unit order) into the store.

    Each summary's `media` lists `{sha1, ext, part, offset, size, width, height}` per staged
    member and `media_parts` the staged pack files. A pack whose members are all new is
    renamed into place; one holding members already indexed (by an earlier unit or another
    job) is rewritten without them. Safe to re-run after an interruption at any point.
    Returns the images and the sample contexts this commit added, and their bytes."""
    added_rows: list[dict] = []
    with locked(root):
        index = read_index(root)
        added: set[str] = set()
        for summary in units:
            for part, staged_name in enumerate(summary.get("media_parts", [])):
                entries = [e for e in summary["media"] if e["part"] == part]
                keep = [e for e in entries if e["sha1"] not in added and e["sha1"] not in index]
                if not keep:
                    continue
                staged = Path(staged_dir) / staged_name
                if len(keep) == len(entries):
                    name, offsets = pack_name([e["sha1"] for e in entries]), [e["offset"] for e in entries]
                    if staged.exists():  # absent when an interrupted commit already moved it
                        os.replace(staged, media_dir(root) / PACKS / name)
                else:
                    name = pack_name([e["sha1"] for e in keep])
                    offsets = _copy_members(staged, keep, media_dir(root) / PACKS / name)
                for e, offset in zip(keep, offsets):
                    added.add(e["sha1"])
                    added_rows.append({"sha1": e["sha1"], "pack": name, "offset": offset, "size": e["size"],
                                       "width": e["width"], "height": e["height"], "ext": e["ext"]})
        if added_rows:
            _write_index(root, index.rows() + added_rows)
    images = [r["size"] for r in added_rows if r["ext"] != CONTEXT_EXT]
    contexts = [r["size"] for r in added_rows if r["ext"] == CONTEXT_EXT]
    return {"media_added": len(images), "media_bytes_added": sum(images),
            "contexts_added": len(contexts), "context_bytes_added": sum(contexts)}


def _check_pack(path: Path, wanted: dict[str, tuple[int, int]]) -> None:
    """The pack holds exactly `wanted` (sha1 -> data offset, size), each hashing to its sha1."""
    import tarfile

    if not path.exists():
        raise ValidationError(f"{path}: named by the index but missing")
    try:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                sha1 = info.name.partition(".")[0]
                if wanted.pop(sha1, None) != (info.offset_data, info.size):
                    raise ValidationError(f"{path}: member {info.name} is not where the index puts it")
                if hashlib.sha1(tar.extractfile(info).read()).hexdigest() != sha1:
                    raise ValidationError(f"{path}: bytes of {info.name} do not match their sha1")
    except tarfile.TarError as exc:
        raise ValidationError(f"{path}: unreadable pack ({exc})") from None
    if wanted:
        raise ValidationError(f"{path}: lacks {len(wanted)} indexed media, e.g. {sorted(wanted)[0]}")


def validate_store(root: Path) -> int:
    """Every pack the index names holds exactly its entries, at their offsets, with bytes that
    hash to their sha1; no pack lies outside the index. Returns the entries checked."""
    directory = media_dir(root)
    if not (directory / INDEX).exists():
        if any((directory / PACKS).glob("*.tar")):
            raise ValidationError(f"{directory / INDEX}: missing, but {directory / PACKS} holds packs")
        return 0
    index = read_index(root)
    if len(index) and not np.all(index.keys[1:] > index.keys[:-1]):
        raise ValidationError(f"{directory / INDEX}: not sorted by sha1, or a sha1 is listed twice")
    by_pack: dict[str, dict[str, tuple[int, int]]] = {}
    for row in index.rows():
        by_pack.setdefault(row["pack"], {})[row["sha1"]] = (row["offset"], row["size"])
    for extra in sorted({p.name for p in (directory / PACKS).glob("*.tar")} - set(by_pack)):
        raise ValidationError(f"{directory / PACKS / extra}: pack not named by the index")
    for name, wanted in sorted(by_pack.items()):
        _check_pack(directory / PACKS / name, wanted)
    return len(index)
