"""Encoding and batching details the model tests do not pin down: the error of each placeholder
rule, the generation prompt, the filler, right padding, the dummy image/video a rank without
one gets, and the batch's token and crop counts. Tiny models only (fast: mutation tests run
this file once per mutant of vlm/encode.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from vlm_helpers import Sample, color, conv, rendered, runs

from vlm.encode import IGNORE, PlaceholderError, check_groups, collate
from vlm.model import build_tiny


@pytest.fixture(scope="module")
def tiny():
    return build_tiny("tiny", 0)


@pytest.mark.parametrize("n, groups, kinds, n_images, video, message", [
    (2, [[0]], ["image"], 1, True, "2 placeholders in the conversation but 1 image/video groups"),
    (1, [[0]], ["image", "image"], 1, True, r"\(2 kinds\)"),
    (1, [[0, 1]], ["image"], 2, True, r"group \[0, 1\] of kind 'image' \(an image group holds one image\)"),
    (1, [[0]], ["audio"], 1, True, "of kind 'audio'"),
    (1, [[1]], ["image"], 2, True, "must use each of its 2 images exactly once"),
    (1, [[0, 1]], ["video"], 2, False, "has a video but this model family takes no video input"),
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
    with pytest.raises(PlaceholderError, match=r"one batch holds videos of \[2, 3\] frames"):
        collate([a, b], tiny.encoder())
    both = collate([a, a], tiny.encoder())
    assert both.inputs["pixel_values_videos"].shape[:2] == (2, 2) and both.crops == 4
