"""Prompt encoding for training, without DeepSpeed: labels, placeholders, visual token counts
against the model itself, dummy visuals, chat templates, the HF save/load round trip."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from PIL import Image

from dataengine.prompts import render
from train.chat import FORMATS, detect
from train.encode import IGNORE, PlaceholderError, collate, resample
from train.model import build_tiny, load, part_of, set_trainable
from train.step import forward_loss

QUESTION = "What should the ego vehicle do?"
ANSWER = "Slow down: a pedestrian is crossing."
CPU = torch.device("cpu")


@dataclass
class Sample:
    """LoadedSample-shaped (curricula/loader.py)."""

    key: str
    conversation: list[dict]
    groups: list[list[int]]
    kinds: list[str]
    images: list = field(default_factory=list)
    source: str = "test/train"


def color(value: int, size=(28, 28)) -> Image.Image:
    return Image.new("RGB", size, (value, value, value))


def conv(prefix: str, answer: str = ANSWER) -> list[dict]:
    return [{"role": "user", "content": prefix + QUESTION}, {"role": "assistant", "content": answer}]


def rendered(n_views: int, layout: str = "multi_view", frames: int = 1) -> Sample:
    """A sample through the real prompt renderer (dataengine.prompts)."""
    cams = ["front", "front_left", "front_right", "back", "back_left", "back_right"][:n_views]
    media = [{"camera": c, "time_offset_s": -0.5 * (frames - 1 - t)} for c in cams for t in range(frames)]
    r = render({"layout": layout, "media": media, "conversations": conv("")})
    return Sample(f"{layout}-{n_views}", r.conversation, r.groups, r.kinds,
                  [color(20 * i) for i in range(len(media))])


@pytest.fixture(scope="module")
def tiny():
    return build_tiny("tiny", 0)


@pytest.fixture(scope="module")
def tiny_next():
    return build_tiny("tiny-next", 0)


def runs(ids: torch.Tensor, token: int) -> list[int]:
    """Lengths of the runs of `token` in a sequence."""
    out, n = [], 0
    for t in ids.tolist() + [-1]:
        if t == token:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out


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


def test_video_on_an_image_only_model_is_an_error(tiny_next):
    with pytest.raises(PlaceholderError, match="sample multi_view_video-2: has a video"):
        tiny_next.encoder().encode(rendered(2, "multi_view_video", frames=3))


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
    loss = forward_loss(bundle.model, batch, CPU, torch.float32).loss
    assert torch.isfinite(loss)
    grid = bundle.spec.grid ** 2
    assert runs(encoded[0].input_ids, enc.token_id["image"]) == [
        grid + 1 if family == "tiny" else bundle.spec.image_tokens(28, 28, False)] * 6
    if family == "tiny":
        assert runs(encoded[-1].input_ids, enc.token_id["video"]) == [bundle.spec.video_tokens(3)] * 2
        features = bundle.model.model.get_video_features(batch.inputs["pixel_values_videos"]).pooler_output
        assert features.shape[1] == bundle.spec.video_tokens(3)


def test_over_length_samples_train_untruncated_and_are_named(tiny):
    enc = tiny.encoder(max_seq_len=50)
    e = enc.encode(rendered(6))
    assert len(e.input_ids) > 50 and (e.labels != IGNORE).sum() > 0 and enc.over_length == ["multi_view-6"]


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


def test_text_only_batch_gets_a_dummy_that_runs_vision_and_changes_nothing(tiny):
    """need_image/need_video: the vision tower runs (ZeRO-3 needs every rank to), the loss is
    the text-only loss, and no gradient reaches the vision weights."""
    enc = tiny.encoder()
    texts = [enc.encode(Sample(f"t{i}", conv("", ANSWER * (i + 1)), [], [])) for i in range(2)]
    model = tiny.model.eval()
    calls = []
    hook = model.model.vision_tower.register_forward_hook(lambda *a: calls.append(1))
    plain = forward_loss(model, collate(texts, enc), CPU, torch.float32).loss
    assert calls == []
    dummy = collate(texts, enc, need_image=True, need_video=True)
    model.zero_grad()
    loss = forward_loss(model, dummy, CPU, torch.float32).loss
    loss.backward()
    hook.remove()
    assert len(calls) == 2   # the image path and the video path
    assert loss.item() == pytest.approx(plain.item(), rel=1e-5)
    added = enc.spec.image_tokens(28, 28, False) + enc.spec.video_tokens(1)
    assert dummy.inputs["attention_mask"][0].sum() == len(texts[0].input_ids) + added
    vision = [p.grad for n, p in model.named_parameters() if "vision_tower" in n]
    assert all(g is None or not g.any() for g in vision)
    model.train()


def test_every_parameter_has_a_part_and_freezing_follows_it(tiny):
    names = [n for n, _ in tiny.model.named_parameters()]
    parts = {part_of(n) for n in names}
    assert parts == {"vision", "projector", "llm"}
    assert part_of("model.image_newline") == "projector" and part_of("lm_head.weight") == "llm"
    counts = set_trainable(tiny.model, ("projector",))
    trainable = {n for n, p in tiny.model.named_parameters() if p.requires_grad}
    assert trainable == {n for n in names if part_of(n) == "projector"} and set(counts) == {"projector"}
    set_trainable(tiny.model, ("projector", "vision", "llm"))


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
