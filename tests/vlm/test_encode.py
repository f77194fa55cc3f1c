"""The model layer with the tiny models, without DeepSpeed: labels, placeholders, visual token
counts against the model itself, chat templates, the HF save/load round trip."""
from __future__ import annotations

import pytest
import torch
from vlm_helpers import ANSWER, Sample, color, conv, rendered, runs

from vlm.chat import FORMATS, detect
from vlm.encode import IGNORE, PlaceholderError, TooLong, collate, resample
from vlm.model import build_tiny, load


@pytest.fixture(scope="module")
def tiny():
    return build_tiny("tiny", 0)


@pytest.fixture(scope="module")
def tiny_next():
    return build_tiny("tiny-next", 0)



def test_labels_are_the_assistant_text_and_never_visual_tokens(tiny):
    enc = tiny.encoder()
    sample = rendered(6)
    sample.conversation += [{"role": "user", "content": "And then?"}, {"role": "assistant", "content": "Go."}]
    e = enc.encode(sample)
    trained = e.labels != IGNORE
    assert tiny.tokenizer.decode(e.input_ids[trained]) == ANSWER + "<|im_end|>" + "Go." + "<|im_end|>"
    assert torch.equal(e.labels[trained], e.input_ids[trained])
    visual = (e.input_ids == enc.token_id["image"]) | (e.input_ids == enc.token_id["video"])
    assert visual.sum() == e.visual_tokens > 0 and not trained[visual].any()


def test_labels_match_hf_assistant_mask_from_the_saved_template(tiny):
    """The chat format's segments and its Jinja template agree (text-only, where ids align)."""
    sample = Sample("t", conv("") + [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Rain."}],
                    [], [])
    e = tiny.encoder().encode(sample)
    hf = tiny.tokenizer.apply_chat_template(sample.conversation, chat_template=tiny.chat.jinja(), tokenize=True,
                                            return_dict=True, return_assistant_tokens_mask=True)
    assert hf["input_ids"] == e.input_ids.tolist()
    assert hf["assistant_masks"] == (e.labels != IGNORE).long().tolist()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_chat_template_renders_like_the_segments(tiny, name):
    fmt = FORMATS[name]
    conversation = conv("1: <image> 2: <image>. These two images are the front view and back view. ")
    text = tiny.tokenizer.apply_chat_template(conversation, chat_template=fmt.jinja(), tokenize=False)
    assert text == "".join(t for t, _ in fmt.segments(conversation))
    assert "1: <image> 2: <image>. These two" in text  # interleaved order kept
    prompt = tiny.tokenizer.apply_chat_template(conversation[:1], chat_template=fmt.jinja(), tokenize=False,
                                                add_generation_prompt=True)
    assert prompt == "".join(t for t, _ in fmt.segments(conversation[:1], add_generation_prompt=True))
    assert detect(tiny.tokenizer).name == "chatml"


def test_numbered_views_keep_their_order_and_their_own_images(tiny):
    """Placeholder k takes images[groups[k]]: permuted groups move the pixels with them."""
    sample = rendered(3)
    sample.groups = [[2], [0], [1]]
    e = tiny.encoder().encode(sample)
    text = tiny.tokenizer.decode(e.input_ids)
    assert "1: <image>" in text and "3: <image>" in text and text.index("1: <image>") < text.index("3: <image>")
    means = [float(e.visuals.pixel_values[k, 0].mean()) for k in range(3)]
    expected = [float(tiny.image_processor([[sample.images[g[0]]]], return_tensors="pt")["pixel_values"][0, 0]
                      .mean()) for g in sample.groups]
    assert means == pytest.approx(expected)
    assert means[0] > means[2] > means[1]   # images 2, 0, 1 have colors 40, 0, 20


@pytest.mark.parametrize("change, message", [
    (lambda s: s.groups.pop(), "6 placeholders in the conversation but 5"),
    (lambda s: (s.groups.append([0]), s.kinds.append("image")), "but 7 image/video groups"),
    (lambda s: s.groups.__setitem__(1, [0]), "exactly once"),
    (lambda s: s.images.pop(), "exactly once"),
])
def test_placeholder_mismatch_is_an_error_naming_the_sample(tiny, change, message):
    sample = rendered(6)
    change(sample)
    with pytest.raises(PlaceholderError, match=f"sample multi_view-6: .*{message}"):
        tiny.encoder().encode(sample)


def test_video_on_an_image_only_model_becomes_frames_as_images(tiny_next):
    """LLaVA-NeXT takes no video: each video placeholder becomes one image per kept frame."""
    sample = rendered(2, "multi_view_video", frames=3)
    enc = tiny_next.encoder(frames_per_video=2)
    e = enc.encode(sample)
    assert e.visuals.n_images == 4 and e.visuals.n_videos == 0
    assert runs(e.input_ids, enc.token_id["image"]) == [2 * tiny_next.spec.image_tokens(28, 28, False)] * 2
    assert torch.isfinite(tiny_next.model(**collate([e], enc).inputs, labels=collate([e], enc).labels).loss)
    enc.video_as_frames = False
    with pytest.raises(PlaceholderError, match="sample multi_view_video-2: has a video"):
        enc.encode(sample)


@pytest.mark.parametrize("family", ["tiny", "tiny-next"])
def test_visual_token_counts_match_the_model(family, tiny, tiny_next):
    """One batch with a multi-view, a wide single image, a tall one, a video sample and a
    text-only one: HF raises if any placeholder run differs from the features it makes."""
    bundle = tiny if family == "tiny" else tiny_next
    enc = bundle.encoder()
    samples = [rendered(6), Sample("wide", conv("<image>\n"), [[0]], ["image"], [color(9, (90, 20))]),
               Sample("tall", conv("<image>\n"), [[0]], ["image"], [color(9, (20, 70))]),
               Sample("text", conv(""), [], [])]
    if family == "tiny":
        samples.append(rendered(2, "multi_view_video", frames=3))
    encoded = [enc.encode(s) for s in samples]
    batch = collate(encoded, enc)
    loss = bundle.model(**batch.inputs, labels=batch.labels).loss
    assert torch.isfinite(loss)
    grid = bundle.spec.grid ** 2
    assert runs(encoded[0].input_ids, enc.token_id["image"]) == [
        grid + 1 if family == "tiny" else bundle.spec.image_tokens(28, 28, False)] * 6
    if family == "tiny":
        assert runs(encoded[-1].input_ids, enc.token_id["video"]) == [bundle.spec.video_tokens(3)] * 2
        features = bundle.model.model.get_video_features(batch.inputs["pixel_values_videos"]).pooler_output
        assert features.shape[1] == bundle.spec.video_tokens(3)


def test_over_length_samples_are_refused_never_truncated(tiny):
    """Long through VISUAL tokens: 6 views are 6 x 5 image tokens; the text alone fits."""
    sample = rendered(6)
    fits = tiny.encoder().encode(sample)
    text_only = len(fits.input_ids) - fits.visual_tokens
    with pytest.raises(TooLong, match="multi_view-6: .* exceed max_seq_len"):
        tiny.encoder(max_seq_len=text_only + fits.visual_tokens - 1).encode(sample)
    assert len(tiny.encoder(max_seq_len=len(fits.input_ids)).encode(sample).input_ids) == len(fits.input_ids)


def test_video_frames_are_brought_to_frames_per_video(tiny):
    assert resample([4, 5], 4) == [4, 4, 5, 5] and resample([1, 2, 3, 4, 5], 3) == [1, 3, 5]
    e = tiny.encoder(frames_per_video=4).encode(rendered(2, "multi_view_video", frames=3))
    assert e.visuals.pixel_values_videos.shape[:2] == (2, 4)
    assert runs(e.input_ids, tiny.encoder().token_id["video"]) == [tiny.spec.video_tokens(4)] * 2
    uneven = rendered(2, "multi_view_video", frames=3)
    uneven.groups[1], uneven.images = uneven.groups[1][:2], uneven.images[:5]   # 3 and 2 frames
    with pytest.raises(PlaceholderError, match="different frame counts"):
        tiny.encoder().encode(uneven)
    assert tiny.encoder(frames_per_video=3).encode(uneven).visuals.pixel_values_videos.shape[:2] == (2, 3)


def test_hf_save_and_load_round_trip(tiny, tmp_path):
    from transformers import AutoProcessor, AutoTokenizer

    tiny.save(tmp_path / "m")
    back = load(tmp_path / "m")
    enc, enc2 = tiny.encoder(), back.encoder()
    sample = rendered(6)
    e, e2 = enc.encode(sample), enc2.encode(sample)
    assert torch.equal(e.input_ids, e2.input_ids) and torch.equal(e.labels, e2.labels)
    tiny.model.eval()
    back.model.eval()
    with torch.no_grad():
        a = tiny.model(**collate([e], enc).inputs).logits
        b = back.model(**collate([e2], enc2).inputs).logits
    tiny.model.train()
    assert torch.equal(a, b)
    assert AutoTokenizer.from_pretrained(tmp_path / "m").chat_template == tiny.chat.jinja()
    next_dir = tmp_path / "next"
    build_tiny("tiny-next", 0).save(next_dir)
    assert type(AutoProcessor.from_pretrained(next_dir)).__name__ == "LlavaNextProcessor"
