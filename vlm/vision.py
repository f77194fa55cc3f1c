"""Visual inputs: pixel tensors for a sample's images and videos, and how many placeholder
tokens each one becomes in the sequence.

The counts are `dataengine.tokens.VisualConfig`'s (one copy, shared with the planner): they
mirror the HF model code that consumes them (`pack_image_features`, `get_video_features` in
transformers' llava_next / llava_onevision), so an expanded prompt always matches the
features the model produces; tests/vlm/test_encode.py checks them against the model itself.
They are computed rather than taken from HF's processor classes because
LlavaOnevisionProcessor cannot be built without torchvision, which has no CPU build for our
torch pin.

- LLaVA-NeXT: every image is anyres: a base crop plus the tiles of the best-fitting grid
  pinpoint, unpadded to the image's aspect ratio, one newline token per row.
- LLaVA-OneVision: a lone image is anyres as above (the grid scaled down past
  `anyres_max_N` crops); each image of a multi-image sample is its base crop only
  (grid^2 + 1 newline), as LLaVA-NeXT's training code forces `pad` for image lists; a
  video is frames x ceil(grid/2)^2 tokens (2x2 pooled) + 1 newline.

Images reach the processor at their native resolution (`MediaDecoder`): the processor
itself tiles a lone image (anyres), pads each view of a multi-image sample to a square
(OneVision) and resizes video frames to the crop. Decoding is shortened only where the
processor would shrink the image anyway (JPEG DCT scaling, PIL `draft`, never below the
crop), and `image_sizes` always carry the original size.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import torch
from PIL import Image

from dataengine.tokens import VISUAL_FAMILIES, VisualConfig

FAMILIES = VISUAL_FAMILIES


class VisionSpec(VisualConfig):
    """The model's visual token arithmetic (`dataengine.tokens.VisualConfig`, shared with the
    planner), built from a loaded HF config object."""

    @classmethod
    def from_config(cls, config) -> "VisionSpec":
        return cls.from_dict(config.to_dict())


@dataclass
class Visuals:
    """One sample's pixels, in placeholder order within each kind."""

    pixel_values: torch.Tensor | None = None         # (images, crops, C, H, W)
    image_sizes: torch.Tensor | None = None          # (images, 2), original (H, W)
    pixel_values_videos: torch.Tensor | None = None  # (videos, frames, C, H, W)

    @property
    def n_images(self) -> int:
        return 0 if self.pixel_values is None else len(self.pixel_values)

    @property
    def n_videos(self) -> int:
        return 0 if self.pixel_values_videos is None else len(self.pixel_values_videos)


ORIGINAL_SIZE = "original_size"   # key in a decoded PIL image's `info`: (width, height) before any draft


def original_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of the image as stored, whatever size it was decoded at."""
    return image.info.get(ORIGINAL_SIZE, image.size)


def decode_image(data: bytes, shrink_to: int | None = None, *, square: bool = False) -> Image.Image:
    """RGB image from encoded bytes, at native resolution unless `shrink_to` is given: then a
    JPEG is DCT-scaled (by 2, 4 or 8) as long as the processor still gets at least
    `shrink_to` pixels where it resizes to the crop: the longer side for an image padded to
    a square, both sides (`square`) for a frame resized to a square."""
    image = Image.open(io.BytesIO(data))
    size = image.size
    if shrink_to and image.format == "JPEG":
        factor = (min(size) if square else max(size)) / shrink_to
        if factor >= 2:
            image.draft("RGB", (math.ceil(size[0] / factor), math.ceil(size[1] / factor)))
    image = image.convert("RGB")
    image.info[ORIGINAL_SIZE] = size
    return image


@dataclass(frozen=True)
class MediaDecoder:
    """Decodes one sample's media for a model family (picklable: loader workers run it).

    A lone image and every LLaVA-NeXT image are tiled from the full image (anyres); a
    OneVision multi-image view is padded to a square and resized to one crop, and a OneVision
    video frame is resized to one crop, so those may be decoded smaller."""

    family: str
    crop: int

    @classmethod
    def for_spec(cls, spec: VisionSpec) -> "MediaDecoder":
        return cls(spec.family, spec.crop)

    def __call__(self, payloads: list[bytes], groups: list[list[int]], kinds: list[str]) -> list[Image.Image]:
        multi = sum(k == "image" for k in kinds) > 1 and self.family == "llava_onevision"
        video = self.family == "llava_onevision"   # LLaVA-NeXT tiles video frames as images (anyres)
        shrink = {i: k for g, k in zip(groups, kinds) for i in g if (k == "video" and video) or multi}
        return [decode_image(data, self.crop if i in shrink else None, square=shrink.get(i) == "video")
                for i, data in enumerate(payloads)]


def image_pixels(image_processor, images: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of one sample's images; passed as one nested list so OneVision's processor
    knows they share a sample (and pads each to a square, base crop only). `image_sizes`
    are the originals (a view may have been decoded smaller, see `MediaDecoder`)."""
    out = image_processor([images], return_tensors="pt")
    sizes = torch.tensor([[h, w] for w, h in map(original_size, images)], dtype=out["image_sizes"].dtype)
    return out["pixel_values"], sizes


def video_pixels(image_processor, frames: list, crop: int) -> torch.Tensor:
    """(frames, C, H, W): each frame resized to the crop (not padded: HF's video processors
    and LLaVA-NeXT's video path resize frames as they are) and normalized."""
    frames = [f if f.size == (crop, crop) else f.resize((crop, crop), Image.Resampling.BICUBIC) for f in frames]
    return image_processor([frames], return_tensors="pt")["pixel_values"][:, 0]


def sample_visuals(spec: VisionSpec, image_processor, images: list, kinds: list[str],
                   groups: list[list[int]]) -> tuple[Visuals, list[int]]:
    """Pixels for a sample and the token count of each placeholder (in placeholder order)."""
    image_groups = [g for g, k in zip(groups, kinds) if k == "image"]
    video_groups = [g for g, k in zip(groups, kinds) if k == "video"]
    visuals = Visuals()
    if image_groups:
        visuals.pixel_values, visuals.image_sizes = image_pixels(image_processor, [images[g[0]] for g in image_groups])
    if video_groups:
        visuals.pixel_values_videos = torch.stack(
            [video_pixels(image_processor, [images[i] for i in g], spec.crop) for g in video_groups])
    multi = len(image_groups) > 1
    image_counts = iter([spec.image_tokens(int(h), int(w), multi) for h, w in
                         (visuals.image_sizes.tolist() if image_groups else [])])
    counts = [next(image_counts) if k == "image" else spec.video_tokens(len(g)) for g, k in zip(groups, kinds)]
    return visuals, counts
