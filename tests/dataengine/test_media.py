"""Image checks without decoding: sizes from headers agree with PIL; bad files are named."""
import io

import pytest
from PIL import Image

from dataengine.media import check_image_bytes, read_image, resolve_under


def encode(fmt: str, size, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, size, kw", [
    ("JPEG", (1600, 900), {}), ("JPEG", (33, 17), {"progressive": True}),
    ("JPEG", (640, 480), {"exif": Image.Exif().tobytes(), "quality": 50}), ("PNG", (455, 256), {}),
])
def test_header_size_matches_pil(fmt, size, kw):
    data = encode(fmt, size, **kw)
    blob, reason = check_image_bytes(data)
    assert reason is None
    assert (blob.width, blob.height) == Image.open(io.BytesIO(data)).size == size
    assert blob.format == ("jpg" if fmt == "JPEG" else "png") and blob.data is data


@pytest.mark.parametrize("data, reason", [
    (encode("JPEG", (64, 64))[:300], "truncated JPEG"),
    (encode("PNG", (64, 64))[:-20], "truncated PNG"),
    (b"GIF89a" + b"\0" * 100, "not a JPEG or PNG"),
    (b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9", "unreadable JPEG header"),
])
def test_bad_bytes_have_a_reason(data, reason):
    blob, why = check_image_bytes(data)
    assert blob is None and reason in why


def test_paths_from_data_stay_under_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(encode("JPEG", (8, 8)))
    assert resolve_under(tmp_path, "a/../a/x.jpg") == tmp_path / "a" / "x.jpg"
    for bad in ("../x.jpg", "a/../../x.jpg", "/etc/passwd", ""):
        assert resolve_under(tmp_path, bad) is None
    assert read_image(tmp_path, "../../etc/passwd")[1].startswith("path '../../etc/passwd' escapes")
    assert read_image(tmp_path, "a/missing.jpg")[1] == "missing image a/missing.jpg"
