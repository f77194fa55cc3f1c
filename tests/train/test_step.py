"""The training step on the tiny model: a batch's dummy visuals run the vision tower on every
rank (ZeRO-3) and change neither the loss nor the vision weights."""
from __future__ import annotations

import pytest
import torch
from vlm_helpers import ANSWER, Sample, conv

from train.step import forward_loss
from vlm.encode import collate
from vlm.model import build_tiny

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


def test_every_label_token_of_the_global_batch_weighs_the_same():
    """Four samples with answers of very different lengths: one batch of 4 (token mean) and
    4 accumulated micro-batches of 1 through DeepSpeed give the same gradients; the old
    per-micro-batch mean would weigh a short answer's tokens as much as a long one's."""
    import copy
    from types import SimpleNamespace

    import deepspeed

    from train import dist
    from train.config import optimizer_defaults, resolve_deepspeed
    from train.optim import build_optimizer, param_groups
    from train.parts import set_trainable
    from train.trainer import Trainer

    dist.setup()
    bundle = build_tiny("tiny", 5)
    set_trainable(bundle.model, ("projector", "llm"))
    enc = bundle.encoder()
    answers = ["No.", "Slow down and yield to the pedestrian on the right crossing. " * 4, "Go.", "Stop here."]
    encoded = [enc.encode(Sample(f"s{i}", conv("", a), [], [])) for i, a in enumerate(answers)]
    cpu = torch.device("cpu")

    reference = copy.deepcopy(bundle.model).eval()
    forward_loss(reference, collate(encoded, enc), cpu, torch.float32).loss.backward()
    expected = {n: p.grad for n, p in reference.named_parameters() if p.grad is not None}

    cfg = resolve_deepspeed({"zero_optimization": {"stage": 0}}, micro_batch=1, world_size=1, hidden_size=64,
                            grad_accum=4)
    assert cfg["gradient_accumulation_steps"] == 4 and cfg["train_batch_size"] == 4
    optimizer = build_optimizer(param_groups(bundle.model, {"projector": 1e-3, "llm": 1e-3}, 0.0),
                                optimizer_defaults({}), False)
    engine, *_ = deepspeed.initialize(model=bundle.model, optimizer=optimizer, config=cfg)
    engine.module.eval()
    window = [[e] for e in encoded]
    normalizer, trains = Trainer._normalizer(SimpleNamespace(dist=SimpleNamespace(world_size=1, device=cpu, is_main=True)),
                                             window, 4)
    assert trains
    for micro in window:
        engine.backward(forward_loss(engine, collate(micro, enc), cpu, torch.float32, normalizer).loss)
    got = {n: p.grad for n, p in engine.module.named_parameters() if p.grad is not None}
    assert set(got) == set(expected)
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    engine.destroy()
