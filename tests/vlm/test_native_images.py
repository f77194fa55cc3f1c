"""Images at native resolution through the model's own processor: a 1600x900 lone image is
tiled (anyres) and 6 views of 1600x900 are each padded to a square (OneVision), the
`image_sizes` reaching the model are the originals, and every placeholder run has exactly
the visual tokens the HF model computes for it. OneVision views and video frames decode
smaller (JPEG DCT scaling) only down to the crop."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from vlm_helpers import Sample, conv, rendered, runs

from vlm.encode import collate
from vlm.model import build_tiny
from vlm.vision import MediaDecoder, decode_image, original_size

W, H = 1600, 900


def jpeg(seed: int, size=(W, H)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def bundles():
    return {name: build_tiny(name, 0) for name in ("tiny", "tiny-next")}


def model_inputs(model, batch) -> dict:
    """The keyword arguments the model's forward actually receives."""
    seen = {}

    def hook(module, args, kwargs):
        seen.update(kwargs)

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        loss = model(**batch.inputs, labels=batch.labels).loss
    finally:
        handle.remove()
    assert torch.isfinite(loss)
    return seen


def hf_image_tokens(model, inputs: dict) -> list[int]:
    """Per image, the feature rows the HF model itself makes (its own anyres/unpad/newline code)."""
    kwargs = {"batch_num_images": inputs["batch_num_images"]} if "batch_num_images" in inputs else {}
    feats = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"],
                                           vision_feature_layer=model.config.vision_feature_layer,
                                           vision_feature_select_strategy=model.config.vision_feature_select_strategy,
                                           **kwargs).pooler_output
    return [len(f) for f in feats] if isinstance(feats, (list, tuple)) else [len(feats)]



@pytest.mark.parametrize("name", ["tiny", "tiny-next"])
def test_lone_image_is_tiled_from_its_native_size(bundles, name):
    bundle = bundles[name]
    images = MediaDecoder.for_spec(bundle.spec)([jpeg(1)], [[0]], ["image"])
    assert images[0].size == (W, H)           # a lone image is never shrunk before the processor
    enc = bundle.encoder()
    e = enc.encode(Sample("lone", conv("<image>\n"), [[0]], ["image"], images))
    batch = collate([e], enc)
    seen = model_inputs(bundle.model, batch)
    assert seen["image_sizes"].tolist() == [[H, W]]
    hf = hf_image_tokens(bundle.model, batch.inputs)
    assert runs(e.input_ids, enc.token_id["image"]) == hf == [bundle.spec.image_tokens(H, W, False)]
    assert hf[0] > 2 * bundle.spec.grid ** 2 + 2   # more than the two squashed crops of the old path


@pytest.mark.parametrize("name", ["tiny", "tiny-next"])
def test_six_views_keep_their_original_sizes(bundles, name):
    bundle = bundles[name]
    sample = rendered(6)
    images = MediaDecoder.for_spec(bundle.spec)([jpeg(10 + i) for i in range(6)], sample.groups, sample.kinds)
    assert all(original_size(im) == (W, H) for im in images)
    if name == "tiny":   # padded to a square and resized to one 28 px crop: decoded at 1/8
        assert all(im.size == (W // 8, -(-H // 8)) for im in images)
    else:                # LLaVA-NeXT tiles every image: full size
        assert all(im.size == (W, H) for im in images)
    sample.images = images
    enc = bundle.encoder()
    e = enc.encode(sample)
    batch = collate([e], enc)
    seen = model_inputs(bundle.model, batch)
    assert seen["image_sizes"].tolist() == [[H, W]] * 6
    assert runs(e.input_ids, enc.token_id["image"]) == hf_image_tokens(bundle.model, batch.inputs)
    if name == "tiny":
        assert e.visual_tokens == 6 * (bundle.spec.grid ** 2 + 1)
        # padded to a square, not stretched: the top rows of the crop are the mean-colour pad
        pad = (torch.tensor(bundle.image_processor.image_mean) * 255).round() / 255
        top = e.visuals.pixel_values[0, 0, :, 0, :] * torch.tensor(bundle.image_processor.image_std)[:, None] \
            + torch.tensor(bundle.image_processor.image_mean)[:, None]
        assert torch.allclose(top, pad[:, None].expand_as(top), atol=0.02)


def test_draft_never_goes_below_the_crop():
    data = jpeg(3)
    assert decode_image(data).size == (W, H)
    assert decode_image(data, 384).size == (W // 4, H // 4)              # longer side 400 >= 384
    assert decode_image(data, 384, square=True).size == (W // 2, H // 2)  # shorter side 450 >= 384
    assert decode_image(data, 900, square=True).size == (W, H)
    png = io.BytesIO()
    Image.new("RGB", (W, H)).save(png, "PNG")
    assert decode_image(png.getvalue(), 28).size == (W, H)            # only JPEG scales losslessly
