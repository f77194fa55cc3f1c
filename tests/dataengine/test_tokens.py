"""dataengine.tokens.VisualConfig: the exact visual token arithmetic the planner and the
encoder share, checked equal to transformers' own (`select_best_resolution`, the processors'
`_get_number_of_features`) on real checkpoint shapes; tests/vlm checks it against the models."""
from __future__ import annotations

import itertools
import types

import pytest

from dataengine.tokens import VisualConfig, best_resolution

SIGLIP_384_OV = {"model_type": "llava_onevision", "vision_aspect_ratio": "anyres_max_9",
                 "vision_config": {"image_size": 384, "patch_size": 14},
                 "image_grid_pinpoints": [[384 * h, 384 * w] for h in range(1, 7) for w in range(1, 7)]}
CLIP_336_NEXT = {"model_type": "llava_next", "vision_config": {"image_size": 336, "patch_size": 14},
                 "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]}
SIZES = [(900, 1600), (1600, 900), (1080, 1920), (1280, 1920), (886, 1920), (384, 384), (10, 2000), (2000, 10),
         (37, 53), (720, 1280), (1024, 768)]


def _hf_features(processor_cls, config: dict, height: int, width: int) -> int:
    """The HF processor's own count, its method called on a stand-in holding the checkpoint's settings."""
    vc = VisualConfig.from_dict(config)
    grid = vc.grid
    ns = types.SimpleNamespace(image_processor=types.SimpleNamespace(image_grid_pinpoints=config["image_grid_pinpoints"]),
                               num_image_tokens=grid * grid, vision_aspect_ratio=config.get("vision_aspect_ratio"),
                               patch_size=config["vision_config"]["patch_size"], num_additional_image_tokens=0)
    ns._get_unpadded_features = types.MethodType(processor_cls._get_unpadded_features, ns)
    return processor_cls._get_number_of_features(ns, height, width, vc.crop, vc.crop)


def test_best_resolution_equals_transformers():
    from transformers.image_processing_utils import select_best_resolution

    pins = SIGLIP_384_OV["image_grid_pinpoints"]
    for h, w in SIZES + [(a, b) for a, b in itertools.product(range(100, 4000, 370), repeat=2)]:
        assert best_resolution(h, w, pins) == tuple(select_best_resolution([h, w], pins))
        assert best_resolution(h, w, CLIP_336_NEXT["image_grid_pinpoints"]) == tuple(
            select_best_resolution([h, w], CLIP_336_NEXT["image_grid_pinpoints"]))


@pytest.mark.parametrize("height,width", SIZES)
def test_lone_image_tokens_equal_the_hf_processors(height, width):
    from transformers.models.llava_next.processing_llava_next import LlavaNextProcessor
    from transformers.models.llava_onevision.processing_llava_onevision import LlavaOnevisionProcessor

    ov, nxt = VisualConfig.from_dict(SIGLIP_384_OV), VisualConfig.from_dict(CLIP_336_NEXT)
    assert ov.image_tokens(height, width, multi=False) == _hf_features(LlavaOnevisionProcessor, SIGLIP_384_OV,
                                                                       height, width)
    assert nxt.image_tokens(height, width, multi=False) == _hf_features(LlavaNextProcessor, CLIP_336_NEXT,
                                                                        height, width)
    # LLaVA-NeXT tiles every image; OneVision gives a view of a multi-image sample one base crop
    assert nxt.image_tokens(height, width, multi=True) == nxt.image_tokens(height, width, multi=False)
    assert ov.image_tokens(height, width, multi=True) == 27 * 27 + 1


def test_issue_figures_and_sample_totals():
    """The figures of issue 13, from the published SigLIP-384 / CLIP-336 shapes."""
    ov, nxt = VisualConfig.from_dict(SIGLIP_384_OV), VisualConfig.from_dict(CLIP_336_NEXT)
    assert ov.image_tokens(900, 1600, multi=False) == 7269
    six = (("image",) * 6, (((900, 1600),),) * 6)
    assert ov.placeholder_tokens(*six) == 6 * 730 == 4380
    assert ov.video_tokens(5) == 5 * 196 + 1
    assert ov.placeholder_tokens(("video",), (((900, 1600),) * 8,)) == 8 * 196 + 1
    assert nxt.placeholder_tokens(*six) == 6 * nxt.image_tokens(900, 1600, False)
    assert not nxt.has_video and ov.has_video


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="llava_next"):
        VisualConfig.from_dict(dict(CLIP_336_NEXT, model_type="llava"))
