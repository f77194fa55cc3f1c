"""Rows of an HF parquet dataset with embedded images, read through `datasets`.

HF writes an `Image` column as a struct of `bytes` and `path`, and records the column's
feature type in the parquet schema's metadata; `datasets` reads that metadata, so a column
is an image because the dataset says so, not because we guess. Decoding is turned off
(`Image(decode=False)`): the published bytes are stored as they are, never re-encoded.
The file is read one row group at a time into an in-memory `datasets.Dataset` (no Arrow
cache on disk; `load_dataset(..., streaming=True)` would import torch in every Ray worker,
15 s on a loaded 2-core machine, for no use here).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from dataengine.media import ImageBlob, check_image_bytes


def _image_columns(features) -> dict[str, bool]:
    """Image columns -> whether the column is a list of images (`images`) or one (`image`)."""
    import datasets

    out = {}
    for name, feature in (features or {}).items():
        if isinstance(feature, datasets.Image):
            out[name] = False
        elif isinstance(feature, (datasets.Sequence, datasets.List)) and isinstance(feature.feature, datasets.Image):
            out[name] = True
    return out


def _undecoded(feature):
    import datasets

    if isinstance(feature, datasets.Image):
        return datasets.Image(decode=False)
    return datasets.List(datasets.Image(decode=False))


def _blobs(row: dict, columns: dict[str, bool]) -> tuple[list[ImageBlob], str | None]:
    values = []
    for name, is_list in columns.items():
        value = row.get(name)
        if value is None:
            continue
        values += list(value) if is_list else [value]
    blobs = []
    for i, value in enumerate(values):
        data = value.get("bytes") if isinstance(value, dict) else None
        if not data:
            where = value.get("path") if isinstance(value, dict) else None
            return [], f"image {i} is not embedded (path {where!r})"
        blob, reason = check_image_bytes(data)
        if reason:
            return [], f"image {i}: {reason}"
        blobs.append(blob)
    return blobs, None


def parquet_rows(path: Path) -> Iterator[tuple[int, dict, list[ImageBlob], str | None]]:
    """(row index, the row without its image columns, image blobs in column order, reason)."""
    import datasets
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    index = 0
    for group in range(file.num_row_groups):
        ds = datasets.Dataset(file.read_row_group(group))  # features from the schema's HF metadata
        columns = _image_columns(ds.features)
        for name in columns:
            ds = ds.cast_column(name, _undecoded(ds.features[name]))
        for row in ds:
            blobs, reason = _blobs(row, columns)
            yield index, {k: v for k, v in row.items() if k not in columns}, blobs, reason
            index += 1
