"""Visual inputs: pixel tensors for a sample's images and videos, and how many placeholder
tokens each one becomes in the sequence.

The counts mirror the HF model code that consumes them (`pack_image_features`,
`get_video_features` in transformers' llava_next / llava_onevision), so an expanded prompt
always matches the features the model produces; tests/test_train_encode.py checks them
against the model itself. They are computed here rather than by HF's processor classes
because LlavaOnevisionProcessor cannot be built without torchvision, which has no CPU build
for our torch pin.

- LLaVA-NeXT: every image is anyres: a base crop plus the tiles of the best-fitting grid
  pinpoint, unpadded to the image's aspect ratio, one newline token per row.
- LLaVA-OneVision: a lone image is anyres as above (the grid scaled down past
  `anyres_max_N` crops); each image of a multi-image sample is its base crop only
  (grid^2 + 1 newline), as LLaVA-NeXT's training code forces `pad` for image lists; a
  video is frames x ceil(grid/2)^2 tokens (2x2 pooled) + 1 newline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers.image_processing_utils import select_best_resolution

FAMILIES = ("llava_next", "llava_onevision")


@dataclass(frozen=True)
class VisionSpec:
    family: str                          # one of FAMILIES (the config's model_type)
    crop: int                            # the vision tower's input size in pixels
    grid: int                            # patches per side of one crop
    pinpoints: tuple[tuple[int, int], ...]
    max_crops: int | None                # OneVision's anyres_max_N; None for LLaVA-NeXT

    @classmethod
    def from_config(cls, config) -> "VisionSpec":
        vision = config.vision_config
        aspect = getattr(config, "vision_aspect_ratio", None)
        max_crops = int(aspect.removeprefix("anyres_max_")) if config.model_type == "llava_onevision" else None
        return cls(config.model_type, vision.image_size, vision.image_size // vision.patch_size,
                   tuple(tuple(p) for p in config.image_grid_pinpoints), max_crops)

    @property
    def has_video(self) -> bool:
        return self.family == "llava_onevision"

    def image_tokens(self, height: int, width: int, multi: bool) -> int:
        """Tokens of one image of original size (height, width); `multi`: its sample has others."""
        if multi and self.family == "llava_onevision":
            return self.grid * self.grid + 1
        best_h, best_w = select_best_resolution([height, width], [list(p) for p in self.pinpoints])
        rows, cols = self.grid * (best_h // self.crop), self.grid * (best_w // self.crop)
        if width / height > cols / rows:
            rows -= (rows - int(round(height * (cols / width), 7))) // 2 * 2
        else:
            cols -= (cols - int(round(width * (rows / height), 7))) // 2 * 2
        if self.max_crops is not None:
            ratio = math.sqrt(rows * cols / (self.max_crops * self.grid ** 2))
            if ratio > 1.1:
                rows, cols = int(rows // ratio), int(cols // ratio)
        return self.grid * self.grid + rows * cols + rows

    def video_tokens(self, frames: int) -> int:
        pooled = math.ceil(self.grid / 2)
        return frames * pooled * pooled + 1


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


def image_pixels(image_processor, images: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of one sample's images; passed as one nested list so OneVision's processor
    knows they share a sample (and keeps only the base crop of each)."""
    out = image_processor([images], return_tensors="pt")
    return out["pixel_values"], out["image_sizes"]


def video_pixels(image_processor, frames: list) -> torch.Tensor:
    """(frames, C, H, W): each frame resized to the crop and normalized (the base crop)."""
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
            [video_pixels(image_processor, [images[i] for i in g]) for g in video_groups])
    multi = len(image_groups) > 1
    image_counts = iter([spec.image_tokens(int(h), int(w), multi) for h, w in
                         (visuals.image_sizes.tolist() if image_groups else [])])
    counts = [next(image_counts) if k == "image" else spec.video_tokens(len(g)) for g, k in zip(groups, kinds)]
    return visuals, counts
