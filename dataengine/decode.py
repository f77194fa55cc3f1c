"""Stored images decoded for a model's input (the training loader and evaluation alike):
reduced-size JPEG decoding, then a resize to the model's input size.

A 1600x900 camera frame feeding a 384x384 vision tower never needs full resolution. libjpeg
can decode at 1/2, 1/4 or 1/8 scale in the DCT domain (simplejpeg's `min_width`/`min_height`
pick the smallest scale still covering the target), which skips most of the inverse DCT and
the upsampling, and the smaller picture is cheaper to resize. PNG and other formats decode
at full size through PIL. The resize runs in torch's uint8 antialiased bilinear kernel, which
computes the same filter as PIL's BILINEAR downscale at about a quarter of its cost.
"""
from __future__ import annotations

import io

import numpy as np
import simplejpeg
import torch
from PIL import Image

JPEG_MAGIC = b"\xff\xd8\xff"


def decode_resized(data: bytes, size: tuple[int, int]) -> Image.Image:
    """RGB image of exactly `size` (width, height) from encoded bytes."""
    width, height = size
    if data[:3] == JPEG_MAGIC:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=width, min_height=height)
    else:
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()
    if pixels.shape[:2] != (height, width):
        pixels = resize(pixels, size)
    return Image.fromarray(pixels)


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of an HxWx3 uint8 array to `size` (width, height)."""
    x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
    y = torch.nn.functional.interpolate(x, size=(size[1], size[0]), mode="bilinear", antialias=True,
                                        align_corners=False)
    return y[0].permute(1, 2, 0).contiguous().numpy()


def decode_full(data: bytes) -> Image.Image:
    """Full-resolution RGB decode through PIL (what LLaVA-NeXT's dataset does)."""
    return Image.open(io.BytesIO(data)).convert("RGB")
