"""The tiny model learns: a fixed set of 32 samples (closed-choice questions answered from the
image, trajectories that follow from the speed in the prompt) trained for a few dozen steps
halves the loss, and the generations afterwards parse as the benchmarks parse them
(dataengine/waypoints.py, MAPLM's choice parser). The same training with the images shuffled
between samples ends measurably worse on the image-dependent question: the loss depends on
the pixels, not only on the text."""
from __future__ import annotations

import random

import torch
from PIL import Image
from vlm_helpers import Sample

from dataengine.waypoints import format_waypoints, parse_waypoints
from eval.metrics.qa import choice_index
from train.parts import set_trainable
from train.step import forward_loss
from vlm.encode import collate
from vlm.model import build_tiny

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 50, 220), "yellow": (230, 220, 30)}
OPTIONS = list(COLOURS)
QUESTION = "Which colour fills the front camera image? Options: " + ", ".join(OPTIONS) + "."
SPEEDS = (2, 4, 6, 8)
CPU = torch.device("cpu")


def _sample(key: str, question: str, answer: str, image: Image.Image) -> Sample:
    conv = [{"role": "user", "content": "<image>\n" + question}, {"role": "assistant", "content": answer}]
    return Sample(key, conv, [[0]], ["image"], [image])


def trajectory(speed: int) -> list[tuple[float, float]]:
    return [(speed * 0.5 * t, 0.0) for t in (1, 2, 3)]



def dataset(seed: int) -> list[Sample]:
    """16 colour questions (the answer is in the pixels only) and 16 planning prompts (the
    answer follows from the speed the prompt states)."""
    rng = random.Random(seed)
    out = []
    for i in range(16):
        name = OPTIONS[i % 4]
        out.append(_sample(f"colour-{i}", QUESTION, name, Image.new("RGB", (28, 28), COLOURS[name])))
    for i in range(16):
        speed = SPEEDS[i % 4]
        grey = rng.randrange(90, 160)
        out.append(_sample(f"plan-{i}", f"Ego speed {speed} m/s. Plan 3 waypoints, 0.5 s apart.",
                           format_waypoints(trajectory(speed)), Image.new("RGB", (28, 28), (grey,) * 3)))
    return out


def shuffled_images(samples: list[Sample], seed: int) -> list[Sample]:
    images = [s.images for s in samples]
    random.Random(seed).shuffle(images)
    return [Sample(s.key, s.conversation, s.groups, s.kinds, im) for s, im in zip(samples, images)]


def mean_loss(bundle, encoder, samples) -> float:
    bundle.model.eval()
    with torch.no_grad():
        result = forward_loss(bundle.model, collate([encoder.encode(s) for s in samples], encoder, True),
                              CPU, torch.float32)
    return float(result.seq_sum.sum() / result.seq_tokens.sum())


def train(samples: list[Sample], seed: int, steps: int = 80, lr: float = 3e-3, batch: int = 8):
    """Plain AdamW over every part, the trainer's own loss (train/step.py)."""
    torch.manual_seed(seed)
    bundle = build_tiny("tiny", seed)
    set_trainable(bundle.model, ("projector", "vision", "llm"))
    encoder = bundle.encoder()
    encoded = [encoder.encode(s) for s in samples]
    params = [p for p in bundle.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    order = random.Random(seed)
    start = mean_loss(bundle, encoder, samples)
    bundle.model.train()
    for _ in range(steps):
        picked = order.sample(encoded, batch)
        loss = forward_loss(bundle.model, collate(picked, encoder, True), CPU, torch.float32).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
    return bundle, encoder, start


def generate(bundle, encoder, sample: Sample, max_new_tokens: int = 60) -> str:
    prompt = Sample(sample.key, sample.conversation[:1], sample.groups, sample.kinds, sample.images)
    inputs = collate([encoder.encode_prompt(prompt)], encoder, True).inputs
    bundle.model.eval()
    with torch.no_grad():
        out = bundle.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=[bundle.tokenizer.eos_token_id,
                                                  bundle.tokenizer.convert_tokens_to_ids("<|im_end|>")],
                                    pad_token_id=bundle.tokenizer.pad_token_id)
    return bundle.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_loss_halves_and_generations_parse():
    """Measured (seeds 0 and 1, 80 steps): loss 5.6 -> 0.15-0.19; every trajectory parses;
    2-3 of the 4 colour answers are spelled out exactly (the rest misspelled: "yelow")."""
    samples = dataset(0)
    bundle, encoder, start = train(samples, 0)
    end = mean_loss(bundle, encoder, samples)
    assert end < start / 2, (start, end)
    texts = [generate(bundle, encoder, s, 120) for s in samples[16:20]]   # one per speed
    # a random model parses none; the numbers themselves are not learnt in 80 steps (measured:
    # once in a full-suite run, one of the four ran on in "12.00"-style digits)
    assert sum(len(parse_waypoints(t)) == 3 for t in texts) >= 3, texts
    texts = [generate(bundle, encoder, s, 8) for s in samples[:4]]   # one per colour
    assert sum(choice_index(t, OPTIONS) is not None for t in texts) >= 2, texts


def test_the_loss_depends_on_the_images():
    """Measured (seed 1): colour-answer loss 0.19 with the right images, 1.07 shuffled (a model
    blind to the image cannot go below about ln(4) / 5 tokens = 0.26)."""
    samples = dataset(1)
    colour = samples[:16]
    right, enc_right, _ = train(samples, 1)
    wrong, enc_wrong, _ = train(shuffled_images(samples, 1), 1)
    with_images = mean_loss(right, enc_right, colour)
    without = mean_loss(wrong, enc_wrong, colour)
    assert with_images < 0.5 * without, (with_images, without)
