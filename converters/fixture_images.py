"""Camera-like pictures for the fixture writers: one drawing, so every fixture's images look alike.

Only fixture modules import this; discovery skips it (it is a module, not a dataset package).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def render_jpeg(rng: np.random.Generator, width: int, height: int, label: str, quality: int,
                objects: list[tuple[list[float], tuple[int, int, int]]] = ()) -> bytes:
    """A camera-like picture: sky/road gradient, texture noise, the camera's name, and each
    annotated object as a block where its box projects (drawn far to near), so a contact
    sheet shows whether boxes land on their objects."""
    rows = np.linspace(0, 1, height)[:, None]
    base = np.where(rows < 0.45, 200 - 80 * rows, 90 + 40 * rows)
    img = np.repeat(np.broadcast_to(base, (height, width))[:, :, None], 3, axis=2).astype(np.float32)
    # texture at a quarter resolution: real camera JPEGs are 70-170 KB at 1600x900, not noise-sized
    coarse = rng.normal(128, 40, size=(max(height // 6, 2), max(width // 6, 2))).clip(0, 255).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR), dtype=np.float32)
    img += (smooth[:, :, None] - 128) * 0.5
    img[:, :, 2] += 25 * (rows < 0.45)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for xyxy, color in objects:
        draw.rectangle(xyxy, fill=color, outline=(0, 0, 0))
    draw.rectangle([width * 0.05, height * 0.05, width * 0.6, height * 0.16], fill=(20, 20, 20))
    draw.text((width * 0.07, height * 0.07), label, fill=(255, 255, 0))
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
