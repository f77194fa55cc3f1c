"""Token estimates stored in manifests, so budgets and length filters need no tokenizer.

Text: about 4 characters per token (Llama-3-style BPE on English). Visual: a SigLIP-384
image is a 27x27 grid = 729 tokens (LLaVA-OneVision/RoboTron-Drive); a lone image also
gets anyres tiles (base + 4 tiles), multi-image samples one grid per image, and video
frames are 2x2 pooled to 196 tokens each. These are ESTIMATES for planning, the same for
every model (a LLaVA-NeXT CLIP-336 model or a 1600x900 lone image under OneVision's anyres
differ by thousands of tokens). `VisualConfig` below is the exact count for one model, from
its `config.json`: `curricula plan --model` and the encoder (`vlm.vision`) both use it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TOKENS_PER_IMAGE = 729
ANYRES_TILES = 5
TOKENS_PER_VIDEO_FRAME = 196


def text_tokens(n_chars: int) -> int:
    return math.ceil(n_chars / 4)


def visual_tokens(layout: str, n_media: int) -> int:
    if n_media == 0:
        return 0
    if layout == "single_image":
        return TOKENS_PER_IMAGE * ANYRES_TILES * n_media
    if layout == "multi_view":
        return TOKENS_PER_IMAGE * n_media
    return TOKENS_PER_VIDEO_FRAME * n_media


# ---------------------------------------------------------------- exact visual tokens per model

VISUAL_FAMILIES = ("llava_next", "llava_onevision")


def best_resolution(height: int, width: int, pinpoints) -> tuple[int, int]:
    """The anyres grid pinpoint (height, width) an image is tiled into: the one that keeps the
    most of the image's pixels when scaled to fit, ties going to the least padding (the rule
    of transformers' `select_best_resolution`, which tests check this against)."""
    best, best_kept, best_waste = None, -1, math.inf
    for ph, pw in pinpoints:
        scale = min(pw / width, ph / height)
        kept = min(int(width * scale) * int(height * scale), width * height)
        waste = pw * ph - kept
        if kept > best_kept or (kept == best_kept and waste < best_waste):
            best, best_kept, best_waste = (int(ph), int(pw)), kept, waste
    return best


@dataclass(frozen=True)
class VisualConfig:
    """How many placeholder tokens a model family gives an image or a video: pure arithmetic
    from the model's `config.json`, so planning needs no torch. The counts follow the HF
    model code that packs the features (`pack_image_features`, `get_video_features` in
    transformers' llava_next / llava_onevision); `vlm.vision` uses this same arithmetic.

    - LLaVA-NeXT: every image is anyres: a base crop plus the tiles of the best pinpoint,
      unpadded to the image's aspect ratio, one newline token per row.
    - LLaVA-OneVision: a lone image is anyres as above (scaled down past `anyres_max_N`
      crops); an image of a multi-image sample is its base crop (grid^2 + 1 newline); a
      video is frames x ceil(grid/2)^2 (2x2 pooled) + 1 newline.
    """

    family: str                          # one of VISUAL_FAMILIES (the config's model_type)
    crop: int                            # the vision tower's input size in pixels
    grid: int                            # patches per side of one crop
    pinpoints: tuple[tuple[int, int], ...]
    max_crops: int | None                # OneVision's anyres_max_N; None for LLaVA-NeXT

    @classmethod
    def from_dict(cls, config: dict) -> "VisualConfig":
        """From a parsed `config.json` (model_type, vision_config, image_grid_pinpoints)."""
        family = config["model_type"]
        if family not in VISUAL_FAMILIES:
            raise ValueError(f"model_type {family!r} is not one of {', '.join(VISUAL_FAMILIES)}")
        vision = config["vision_config"]
        aspect = config.get("vision_aspect_ratio") or "anyres_max_9"
        max_crops = int(aspect.removeprefix("anyres_max_")) if family == "llava_onevision" else None
        return cls(family, int(vision["image_size"]), int(vision["image_size"]) // int(vision["patch_size"]),
                   tuple(tuple(int(v) for v in p) for p in config["image_grid_pinpoints"]), max_crops)

    @property
    def has_video(self) -> bool:
        return self.family == "llava_onevision"

    def image_tokens(self, height: int, width: int, multi: bool) -> int:
        """Tokens of one image of original size (height, width); `multi`: its sample has others."""
        if multi and self.family == "llava_onevision":
            return self.grid * self.grid + 1
        best_h, best_w = best_resolution(height, width, self.pinpoints)
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

    def placeholder_tokens(self, kinds: tuple[str, ...], sizes: tuple[tuple[tuple[int, int], ...], ...]) -> int:
        """Visual tokens of a sample whose k-th placeholder is `kinds[k]` over the images of
        (height, width) `sizes[k]` (one for an image, the frames for a video)."""
        multi = sum(k == "image" for k in kinds) > 1
        return sum(self.image_tokens(*s[0], multi) if k == "image" else self.video_tokens(len(s))
                   for k, s in zip(kinds, sizes))
