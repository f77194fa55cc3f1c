"""Token estimates stored in manifests, so budgets and length filters need no tokenizer.

Text: about 4 characters per token (Llama-3-style BPE on English). Visual: a SigLIP-384
image is a 27x27 grid = 729 tokens (LLaVA-OneVision/RoboTron-Drive); a lone image also
gets anyres tiles (base + 4 tiles), multi-image samples one grid per image, and video
frames are 2x2 pooled to 196 tokens each. These are ESTIMATES for planning, the same for
every model (a LLaVA-NeXT CLIP-336 model or a 1600x900 lone image under OneVision's anyres
differ by thousands of tokens); the encoder computes the exact count with the model's own
processor configuration, and the trainer skips a sample whose exact length is over
`max_seq_len`, counted with its reason.
"""
from __future__ import annotations

import math

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
