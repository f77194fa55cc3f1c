"""Encoding and batching details the model tests do not pin down: the error of each placeholder
rule, the generation prompt, the filler, right padding, the dummy image/video a rank without
one gets, and the batch's token and crop counts. Tiny models only (fast: mutation tests run
this file once per mutant of vlm/encode.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from vlm_helpers import Sample, color, conv, rendered, runs

from vlm.encode import IGNORE, Encoded, Encoder, PlaceholderError, TooLong, check_groups, collate, video_as_frames
from vlm.model import build_tiny
from vlm.vision import Visuals


@pytest.fixture(scope="module")
def tiny():
    return build_tiny("tiny", 0)


@pytest.mark.parametrize("n, groups, kinds, n_images, video, message", [
    (2, [[0]], ["image"], 1, True, "2 placeholders in the conversation but 1 image/video groups"),
    (1, [[0]], ["image", "image"], 1, True, r"\(2 kinds\)"),
    (1, [[0, 1]], ["image"], 2, True, r"group \[0, 1\] of kind 'image' \(an image group holds one image\)"),
    (1, [[0]], ["audio"], 1, True, "of kind 'audio'"),
    (1, [[1]], ["image"], 2, True, "must use each of its 2 images exactly once"),
    (1, [[0, 1]], ["video"], 2, False,
     r"has a video but this model family takes no video input \(use a LLaVA-OneVision model\)$"),
])
def test_each_placeholder_rule_names_the_sample(n, groups, kinds, n_images, video, message):
    with pytest.raises(PlaceholderError, match=f"sample k: .*{message}"):
        check_groups("k", n, groups, kinds, n_images, video)


def test_pairing_rules_accept_what_they_should():
    check_groups("k", 2, [[0], [1, 2]], ["image", "video"], 3, True)
    check_groups("k", 0, [], [], 0, False)


def test_an_empty_group_is_refused():
    with pytest.raises(PlaceholderError, match=r"group \[\] of kind 'video'"):
        check_groups("k", 2, [[0], []], ["image", "video"], 1, True)


def test_a_video_placeholder_on_an_image_group_is_refused(tiny):
    sample = Sample("v", conv("<video>\n"), [[0]], ["image"], [color(9)])
    with pytest.raises(PlaceholderError, match="sample v: placeholder 1 is <video> but its group is an image"):
        tiny.encoder().encode(sample)


def test_a_sample_without_assistant_text_is_refused(tiny):
    sample = Sample("q", [{"role": "user", "content": "<image>\nWhat now?"}], [[0]], ["image"], [color(9)])
    with pytest.raises(PlaceholderError, match="sample q: no assistant tokens to train on"):
        tiny.encoder().encode(sample)


def test_the_generation_prompt_is_the_training_sequence_up_to_the_answer(tiny):
    enc = tiny.encoder()
    sample = rendered(2)
    full = enc.encode(sample)
    prompt = enc.encode_prompt(Sample(sample.key, sample.conversation[:1], sample.groups, sample.kinds,
                                      sample.images))
    n = len(prompt.input_ids)
    assert torch.equal(full.input_ids[:n], prompt.input_ids)
    assert (prompt.labels == IGNORE).all() and (full.labels[:n] == IGNORE).all() and (full.labels[n:] != IGNORE).any()
    assert prompt.visual_tokens == full.visual_tokens > 0 and prompt.key == sample.key
    assert prompt.visuals.n_images == 2 and torch.equal(prompt.visuals.pixel_values, full.visuals.pixel_values)
    assert tiny.tokenizer.decode(prompt.input_ids).endswith("<|im_start|>assistant\n")   # the generation header
    assert prompt.source == "test/train" and full.source == "test/train"
    # a prompt is never refused for its length: generation has no max_seq_len
    assert len(tiny.encoder(max_seq_len=1).encode_prompt(Sample("p", sample.conversation[:1], sample.groups,
                                                                sample.kinds, sample.images)).input_ids) == n


def test_a_sample_without_a_source_gets_an_empty_one(tiny):
    sample = rendered(1)
    bare = SimpleNamespace(key="b", conversation=sample.conversation, groups=sample.groups, kinds=sample.kinds,
                           images=sample.images)
    enc = tiny.encoder()
    assert enc.encode(bare).source == "" and enc.encode_prompt(
        SimpleNamespace(**{**vars(bare), "conversation": sample.conversation[:1]})).source == ""


def test_the_filler_is_one_unlabelled_eos(tiny):
    f = tiny.encoder().filler()
    assert f.key == "<skipped>" and f.source == "" and f.visual_tokens == 0
    assert f.input_ids.tolist() == [tiny.tokenizer.eos_token_id] and f.labels.tolist() == [IGNORE]
    assert f.visuals.n_images == 0 and f.visuals.n_videos == 0


def test_a_batch_is_right_padded_and_counts_tokens_and_crops(tiny):
    enc = tiny.encoder()
    short = enc.encode(Sample("s", conv("", "Go."), [], []))
    views = enc.encode(rendered(2))
    batch = collate([short, views], enc)
    n0, n1 = len(short.input_ids), len(views.input_ids)
    assert n0 < n1
    pad = tiny.tokenizer.pad_token_id
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    assert ids.shape == batch.labels.shape == mask.shape == (2, n1)
    assert torch.equal(ids[0, :n0], short.input_ids) and (ids[0, n0:] == pad).all()
    assert torch.equal(batch.labels[0, :n0], short.labels) and (batch.labels[0, n0:] == IGNORE).all()
    assert mask[0].tolist() == [1] * n0 + [0] * (n1 - n0) and mask[1].tolist() == [1] * n1
    assert batch.keys == ["s", "multi_view-2"] and batch.sources == ["test/train", "test/train"]
    assert batch.tokens == n0 + n1
    pixels = batch.inputs["pixel_values"]
    assert pixels.shape[0] == 2 and batch.crops == pixels.shape[0] * pixels.shape[1]
    assert batch.inputs["image_sizes"].shape == (2, 2)
    assert batch.inputs["batch_num_images"].tolist() == [0, 2]     # LLaVA-OneVision: images per sequence
    assert "pixel_values_videos" not in batch.inputs


def test_a_text_only_batch_gets_the_dummy_it_needs_and_no_other(tiny):
    enc = tiny.encoder()
    text = enc.encode(Sample("t", conv(""), [], []))
    other = enc.encode(Sample("u", conv("", "Stop."), [], []))
    plain = collate([text, other], enc)
    assert set(plain.inputs) == {"input_ids", "attention_mask"} and plain.crops == 0

    image = collate([text, other], enc, need_image=True)
    _, count = enc.dummy("image")
    n = len(text.input_ids)
    ids, labels = image.inputs["input_ids"], image.labels
    assert ids.shape[1] == n + count                                   # appended to the first sequence only
    assert torch.equal(ids[0, :n], text.input_ids)
    assert runs(ids[0], enc.token_id["image"]) == [count] and (labels[0, n:] == IGNORE).all()
    assert torch.equal(labels[0, :n], text.labels)
    assert image.inputs["attention_mask"][0].sum() == n + count
    assert image.inputs["batch_num_images"].tolist() == [1, 0]
    assert image.inputs["pixel_values"].shape[0] == 1 and "pixel_values_videos" not in image.inputs
    assert image.tokens == len(text.input_ids) + len(other.input_ids)  # the dummy is not counted
    assert image.crops == image.inputs["pixel_values"].shape[1]
    with torch.no_grad():   # the model itself checks the dummy's token count against its features
        assert torch.isfinite(tiny.model(**image.inputs, labels=image.labels).loss)

    video = collate([text], enc, need_video=True)
    _, vcount = enc.dummy("video")
    assert runs(video.inputs["input_ids"][0], enc.token_id["video"]) == [vcount] == [tiny.spec.video_tokens(1)]
    assert video.inputs["pixel_values_videos"].shape[:2] == (1, 1) and "pixel_values" not in video.inputs
    assert video.crops == 1 and (video.labels[0, n:] == IGNORE).all()
    assert video.inputs["pixel_values_videos"].shape[2:] == image.inputs["pixel_values"].shape[2:]
    with torch.no_grad():
        assert torch.isfinite(tiny.model(**video.inputs, labels=video.labels).loss)


def test_a_batch_that_has_an_image_gets_no_dummy(tiny):
    enc = tiny.encoder()
    e = enc.encode(rendered(1))
    assert torch.equal(collate([e], enc, need_image=True).inputs["input_ids"], collate([e], enc).inputs["input_ids"])


def test_videos_of_different_frame_counts_cannot_share_a_batch(tiny):
    a = tiny.encoder(frames_per_video=2).encode(rendered(1, "multi_view_video", frames=3))
    b = tiny.encoder(frames_per_video=3).encode(rendered(1, "multi_view_video", frames=3))
    with pytest.raises(PlaceholderError, match=r"^one batch holds videos of \[2, 3\] frames; the model stacks videos, "
                                               r"so a batch needs one frame count \(the stage's frames_per_video\)$"):
        collate([a, b], tiny.encoder())
    both = collate([a, a], tiny.encoder())
    assert both.inputs["pixel_values_videos"].shape[:2] == (2, 2) and both.crops == 4
    assert collate([a], tiny.encoder()).crops == 2                # one video of 2 frames


def test_videos_become_frames_as_images_by_hand():
    """Frames picked by `spaced` (nearest of linspace(0, n - 1, count), halves up): of 4 frames
    keep 2 -> positions 0, 3; of 3 keep 2 -> 0, 2. Images never repeat, unused ones are dropped."""
    turns = [{"role": "user", "content": "<image> front, <video> left, <video> right. Go?"},
             {"role": "assistant", "content": "Yes."}, {"role": "tool", "content": None}, {"role": "user"}]
    sample = SimpleNamespace(key="k", source="s", conversation=turns, groups=[[0], [1, 2, 3, 4], [5, 6, 7]],
                             kinds=["image", "video", "video"], images=[f"i{i}" for i in range(8)])
    out = video_as_frames(sample, 2)
    assert out.conversation[0] == {"role": "user", "content": "<image> front, <image><image> left, <image><image> right. Go?"}
    assert out.conversation[1:] == turns[1:] and out.conversation[2] is turns[2] and out.conversation[3] is turns[3]
    assert (out.groups, out.kinds) == ([[0], [1], [2], [3], [4]], ["image"] * 5)
    assert out.images == ["i0", "i1", "i4", "i5", "i7"] and (out.key, out.source) == ("k", "s")
    assert turns[0]["content"] == "<image> front, <video> left, <video> right. Go?"   # the input is left alone

    # without frames_per_video every frame is kept; a sample without a source gets ""
    bare = SimpleNamespace(**{k: v for k, v in vars(sample).items() if k != "source"})
    whole = video_as_frames(bare, None)
    assert whole.conversation[0]["content"] == "<image> front, " + "<image>" * 4 + " left, " + "<image>" * 3 + " right. Go?"
    assert whole.groups == [[i] for i in range(8)] and whole.images == sample.images and whole.source == ""


def test_video_as_frames_leaves_what_it_cannot_pair_to_the_placeholder_check():
    """A <video> literal on an image group, and placeholders beyond the groups, stay as they
    are, so `check_groups` and `_placeholder` still refuse the sample."""
    sample = SimpleNamespace(key="k", conversation=[{"role": "user", "content": "<video> a <video> b <video> c"}],
                             groups=[[0], [1, 2]], kinds=["image", "video"], images=["x", "y", "z"])
    assert video_as_frames(sample, None).conversation[0]["content"] == "<video> a <image><image> b <video> c"


def stub_encoder(pad, family):
    """What `collate` reads of an encoder: pad and eos ids, the family, placeholder ids, dummies
    (a 1-crop image of 9s for 3 tokens, a 1-frame video of 8s for 2 tokens)."""
    def dummy(kind):
        if kind == "image":
            return Visuals(pixel_values=torch.full((1, 1, 3, 2, 2), 9.0), image_sizes=torch.tensor([[2, 2]])), 3
        return Visuals(pixel_values_videos=torch.full((1, 1, 3, 2, 2), 8.0)), 2

    return SimpleNamespace(tokenizer=SimpleNamespace(pad_token_id=pad, eos_token_id=7), spec=SimpleNamespace(family=family),
                           token_id={"image": 50, "video": 51}, dummy=dummy)


def encoded(key, ids, labels, **visuals):
    return Encoded(key, f"src-{key}", torch.tensor(ids), torch.tensor(labels), Visuals(**visuals), 0)


@pytest.mark.parametrize("pad, family", [(None, "llava_next"), (0, "llava_onevision")])
def test_collate_by_hand(pad, family):
    """Ids padded with pad (eos when the tokenizer has none), labels with IGNORE, images' crops
    padded with zeros to the most crops; `crops` counts the real ones (HF drops the padding)."""
    a = encoded("a", [1, 2], [IGNORE, 2], pixel_values=torch.ones(1, 2, 3, 2, 2), image_sizes=torch.tensor([[10, 20]]))
    b = encoded("b", [3, 4, 5, 6], [3, IGNORE, 5, 6], pixel_values=torch.full((2, 3, 3, 2, 2), 2.0),
                image_sizes=torch.tensor([[30, 40], [50, 60]]))
    batch = collate([a, b], stub_encoder(pad, family))
    fill = 7 if pad is None else pad
    assert batch.inputs["input_ids"].tolist() == [[1, 2, fill, fill], [3, 4, 5, 6]]
    assert batch.inputs["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert batch.inputs["attention_mask"].dtype == torch.long            # as HF tokenizers give it
    assert batch.labels.tolist() == [[IGNORE, 2, IGNORE, IGNORE], [3, IGNORE, 5, 6]]
    pixels = batch.inputs["pixel_values"]
    assert pixels.shape == (3, 3, 3, 2, 2)
    assert (pixels[0, :2] == 1).all() and (pixels[0, 2] == 0).all() and (pixels[1:] == 2).all()
    assert batch.inputs["image_sizes"].tolist() == [[10, 20], [30, 40], [50, 60]]
    expected = {"input_ids", "attention_mask", "pixel_values", "image_sizes"}
    if family == "llava_onevision":
        assert batch.inputs["batch_num_images"].tolist() == [1, 2]
        expected.add("batch_num_images")
    assert set(batch.inputs) == expected
    assert (batch.keys, batch.sources, batch.tokens, batch.crops) == (["a", "b"], ["src-a", "src-b"], 6, 2 + 6)


def test_each_missing_kind_gets_its_own_dummy_by_hand():
    enc = stub_encoder(None, "llava_onevision")
    image = encoded("i", [1, 2], [IGNORE, 2], pixel_values=torch.ones(1, 2, 3, 2, 2), image_sizes=torch.tensor([[4, 4]]))
    video = encoded("v", [1, 2], [IGNORE, 2], pixel_values_videos=torch.ones(1, 4, 3, 2, 2))
    # an image batch asked for a video gets the dummy video (2 tokens) on its first sequence, and no image
    b = collate([image], enc, need_image=True, need_video=True)
    assert b.inputs["input_ids"].tolist() == [[1, 2, 51, 51]] and b.labels.tolist() == [[IGNORE, 2, IGNORE, IGNORE]]
    assert (b.inputs["pixel_values_videos"] == 8).all() and b.inputs["pixel_values"].shape == (1, 2, 3, 2, 2)
    assert b.inputs["batch_num_images"].tolist() == [1] and (b.tokens, b.crops) == (2, 2 + 1)
    # a video batch asked for an image gets the dummy image (3 tokens), counted as its sequence's image
    b = collate([video], enc, need_image=True, need_video=True)
    assert b.inputs["input_ids"].tolist() == [[1, 2, 50, 50, 50]] and b.labels.tolist() == [[IGNORE, 2] + [IGNORE] * 3]
    assert (b.inputs["pixel_values"] == 9).all() and b.inputs["image_sizes"].tolist() == [[2, 2]]
    assert b.inputs["batch_num_images"].tolist() == [1] and (b.tokens, b.crops) == (2, 4 + 1)
    assert torch.equal(b.inputs["pixel_values_videos"], video.visuals.pixel_values_videos)


class AddsBos:
    """A tokenizer that, like Llama's, puts a BOS (here its eos id) before each text unless
    told not to; the rest is the tiny model's."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, text, add_special_tokens=True):
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return {"input_ids": [self.tokenizer.eos_token_id] * add_special_tokens + ids}

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_the_chat_format_alone_places_special_tokens(tiny):
    """Text pieces are tokenized without the tokenizer's own special tokens: a BOS before every
    piece between placeholders would shift the sequence away from the chat template."""
    sample = rendered(2)
    bos = Encoder(AddsBos(tiny.tokenizer), tiny.image_processor, tiny.spec, tiny.chat).encode(sample)
    plain = tiny.encoder().encode(sample)
    assert torch.equal(bos.input_ids, plain.input_ids) and torch.equal(bos.labels, plain.labels)


def test_videos_of_one_sample_must_share_a_frame_count(tiny):
    uneven = rendered(2, "multi_view_video", frames=3)
    uneven.groups[1], uneven.images = uneven.groups[1][:2], uneven.images[:5]   # 3 and 2 frames
    with pytest.raises(PlaceholderError, match=r"^sample multi_view_video-2: its videos have different frame counts "
                                               r"\[2, 3\] \(set the stage's frames_per_video\)$"):
        tiny.encoder().encode(uneven)


def test_images_and_a_video_literal_in_one_sample(tiny):
    """Two images and a `<video>` placeholder: only the video is brought to frames_per_video,
    each placeholder takes its own group's kind and count, in order (the model checks them)."""
    images = [color(v) for v in (10, 30, 50, 70, 90)]
    sample = Sample("mix", conv("<image>\n<image>\n<video>\n"), [[0], [1], [2, 3, 4]], ["image", "image", "video"],
                    images)
    enc = tiny.encoder(frames_per_video=2)
    e = enc.encode(sample)
    assert e.visuals.n_images == 2 and e.visuals.pixel_values_videos.shape[:2] == (1, 2)
    image_runs, video_runs = runs(e.input_ids, enc.token_id["image"]), runs(e.input_ids, enc.token_id["video"])
    assert len(image_runs) == 2 and image_runs[0] == image_runs[1] and video_runs == [tiny.spec.video_tokens(2)]
    ids = e.input_ids.tolist()
    assert max(i for i, t in enumerate(ids) if t == enc.token_id["image"]) < ids.index(enc.token_id["video"])
    assert e.visual_tokens == sum(image_runs) + video_runs[0]
    batch = collate([e], enc)
    with torch.no_grad():
        assert torch.isfinite(tiny.model(**batch.inputs, labels=batch.labels).loss)


def test_the_default_max_seq_len_is_the_stages_8192(tiny):
    """Each extra answer character is one token of the tiny tokenizer (no merges)."""
    enc = Encoder(tiny.tokenizer, tiny.image_processor, tiny.spec, tiny.chat)
    n = len(enc.encode(Sample("t", conv("", "A"), [], [])).input_ids)
    assert len(enc.encode(Sample("t", conv("", "A" + "a" * (8192 - n)), [], [])).input_ids) == 8192
    with pytest.raises(TooLong, match=r"^sample t: 8193 tokens \(0 visual\) exceed max_seq_len 8192$"):
        enc.encode(Sample("t", conv("", "A" + "a" * (8193 - n)), [], []))
