"""Reading source images safely: paths stay under their root, bytes are checked, never re-encoded."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError


@dataclass(frozen=True)
class ImageBlob:
    data: bytes
    width: int
    height: int
    format: str  # "jpg" or "png"


def resolve_under(root: Path, relpath: str) -> Path | None:
    """`root/relpath` when the path the data names stays inside root, else None.

    The check is lexical (absolute paths and `..` that climb out are refused); symlinks an
    operator placed inside the root (e.g. `samples/` on another disk) are followed.
    """
    if not relpath or os.path.isabs(relpath):
        return None
    normal = os.path.normpath(relpath)
    if normal == ".." or normal.startswith(".." + os.sep):
        return None
    return Path(root) / normal


def check_image_bytes(data: bytes) -> tuple[ImageBlob | None, str | None]:
    """Header and end-marker checks: catches truncated JPEG/PNG files without decoding."""
    if data[:3] == b"\xff\xd8\xff":
        fmt = "jpg"
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return None, "truncated JPEG (no end-of-image marker)"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        fmt = "png"
        if b"IEND" not in data[-12:]:
            return None, "truncated PNG (no IEND chunk)"
    else:
        return None, "not a JPEG or PNG file"
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError) as exc:
        return None, f"unreadable image header ({exc})"
    return ImageBlob(data, width, height, fmt), None


def read_image(root: Path, relpath: str) -> tuple[ImageBlob | None, str | None]:
    """Read an image named by the source data; returns (blob, None) or (None, reason)."""
    path = resolve_under(root, relpath)
    if path is None:
        return None, f"path {relpath!r} escapes the dataset root"
    if not path.is_file():
        return None, f"missing image {relpath}"
    return check_image_bytes(path.read_bytes())
