"""Units grouped into Ray tasks: about 16 tasks per CPU, and no batch over Ray's inline limit
unless it is one unit alone (a trainval scene, ~100 KB packed), which then travels through
the object store by itself."""
from __future__ import annotations

from pathlib import Path

from dataengine.converter import Unit
from dataengine.job import INLINE_BYTES, PackedUnit, _batches


def _unit(i: int, size: int) -> PackedUnit:
    packed = PackedUnit.pack(Unit(f"u{i:04d}", "train", {"i": i}))
    return PackedUnit(packed.id, packed.split, b"x" * size, packed.digest)


def test_small_units_batch_by_count_large_ones_by_bytes():
    small = [(_unit(i, 100), Path("out")) for i in range(640)]
    batches = _batches(small, cpus=2)
    assert [len(b) for b in batches] == [20] * 32  # 640 // (16 * 2)
    assert [u.id for b in batches for u, _ in b] == [u.id for u, _ in small]

    sizes = [30_000, 30_000, 30_000, 30_000, INLINE_BYTES + 1, 10, 60_000, 60_000]
    mixed = [(_unit(i, s), Path("out")) for i, s in enumerate(sizes)] * 20
    batches = _batches(mixed, cpus=1)
    assert [u.id for b in batches for u, _ in b] == [u.id for u, _ in mixed]
    for batch in batches:
        held = sum(len(u.blob) for u, _ in batch)
        assert held <= INLINE_BYTES or len(batch) == 1
        assert all(d == "out" for _, d in batch)
    assert any(len(b) == 1 and len(b[0][0].blob) > INLINE_BYTES for b in batches)
    assert max(len(b) for b in batches) <= len(mixed) // 16
