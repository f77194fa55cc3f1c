"""The training step on the tiny model: a batch's dummy visuals run the vision tower on every
rank (ZeRO-3) and change neither the loss nor the vision weights."""
from __future__ import annotations

import pytest
import torch

from train.step import forward_loss
from vlm.encode import collate
from vlm.model import build_tiny
from vlm_helpers import ANSWER, Sample, conv

CPU = torch.device("cpu")


def test_text_only_batch_gets_a_dummy_that_runs_vision_and_changes_nothing():
    """need_image/need_video: the vision tower runs (ZeRO-3 needs every rank to), the loss is
    the text-only loss, and no gradient reaches the vision weights."""
    tiny = build_tiny("tiny", 0)
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
