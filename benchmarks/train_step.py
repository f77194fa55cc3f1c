"""Training-step benchmark: tokens/s of the trainer's step (DeepSpeed engine, logits only
where a label follows) against plain HF forward/backward with `labels=` and torch AdamW on
the same model and batch, measured in the same run; MFU on a GPU whose bf16 peak is known.

One batch of 6-camera samples (the robotron multi-view prompt) filled with text to the
context length, a 256-token answer trained. The two paths alternate step by step (each on
its own copy of the model); medians after warm-up.

    python benchmarks/train_step.py                          # tiny model on CPU, 1k context
    python benchmarks/train_step.py --model real-shaped      # SigLIP-so400m-384 + Qwen2-0.5B shapes,
                                                             # random weights, 8k context, ZeRO-2, bf16 (GPU)
    python benchmarks/train_step.py --model /models/llava-onevision-qwen2-0.5b-ov-hf
    python benchmarks/train_step.py ... --write-docs docs/performance.md
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataengine.prompts import render  # noqa: E402
from train import dist  # noqa: E402
from train.config import bf16_available, load_deepspeed, optimizer_defaults, resolve_deepspeed  # noqa: E402
from train.metrics import FlopModel, peak_flops  # noqa: E402
from train.optim import build_optimizer, param_groups  # noqa: E402
from train.parts import set_trainable  # noqa: E402
from train.step import forward_loss, to_device  # noqa: E402
from vlm.encode import collate  # noqa: E402
from vlm.model import Bundle, build_tiny, load  # noqa: E402

CAMERAS = ["front", "front_left", "front_right", "back", "back_left", "back_right"]
PARTS = ("projector", "vision", "llm")


@dataclass
class Sample:
    key: str
    conversation: list[dict]
    groups: list[list[int]]
    kinds: list[str]
    images: list = field(default_factory=list)
    source: str = "bench"


def real_shaped() -> Bundle:
    """SigLIP-so400m-patch14-384 (last layer dropped, as LLaVA-OneVision) + a Qwen2-0.5B-shaped
    LLM, random weights, built from configs (no download); the byte tokenizer stands in."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessorPil,
        Qwen2Config,
        SiglipVisionConfig,
    )

    from vlm.chat import detect
    from vlm.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    vision = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_attention_heads=16,
                                num_hidden_layers=26, image_size=384, patch_size=14, vision_use_head=False)
    text = Qwen2Config(hidden_size=896, intermediate_size=4864, num_attention_heads=14, num_key_value_heads=2,
                       num_hidden_layers=24, vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6,
                       tie_word_embeddings=True)
    pins = [[384 * i, 384 * j] for i in range(1, 7) for j in range(1, 7)]
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text, image_token_id=tok.image_token_id,
                                  video_token_id=tok.video_token_id, image_grid_pinpoints=pins,
                                  vision_feature_select_strategy="full", vision_feature_layer=-1,
                                  tie_word_embeddings=True)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if bf16_available() else torch.float32
    model = LlavaOnevisionForConditionalGeneration(config).to(dtype)
    processor = LlavaOnevisionImageProcessorPil(size={"height": 384, "width": 384}, image_grid_pinpoints=pins)
    return Bundle(model, tok, processor, detect(tok))


def make_bundle(name: str) -> Bundle:
    if name in ("tiny", "tiny-next"):
        return build_tiny(name, 0)
    if name == "real-shaped":
        return real_shaped()
    return load(name, dtype=torch.bfloat16 if bf16_available() else torch.float32)


def make_sample(bundle: Bundle, context: int, answer_tokens: int) -> Sample:
    """Six views plus filler text: as many filler phrases as bring the sample to `context` tokens."""
    from PIL import Image

    crop = bundle.spec.crop
    media = [{"camera": c, "time_offset_s": 0.0} for c in CAMERAS]
    images = [Image.new("RGB", (crop, crop), (40 * i, 90, 160)) for i in range(6)]
    answer = ("go " * answer_tokens)[:answer_tokens]
    enc = bundle.encoder(max_seq_len=10 ** 9)

    def build(filler: int) -> tuple[Sample, int]:
        question = "describe the scene " * filler + "?"
        r = render({"layout": "multi_view", "media": media,
                    "conversations": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
        sample = Sample("bench", r.conversation, r.groups, r.kinds, images)
        return sample, len(enc.encode(sample).input_ids)

    _, bare = build(0)
    _, one = build(100)
    sample, _ = build(max(0, (context - bare) * 100 // max(1, one - bare)))
    return sample


def seconds(step, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def plain_hf(model, batch, device, dtype):
    """The baseline step: HF forward with labels (logits everywhere), backward, torch AdamW."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()   # HF checkpointing (and dropout) only run in train mode
    inputs = to_device(batch.inputs, device, dtype)
    labels = batch.labels.to(device)

    def step():
        model(**inputs, labels=labels, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def trainer_path(bundle: Bundle, batch, device, dtype, args):
    """The trainer's step: DeepSpeed engine (its JSON), per-part AdamW groups, forward_loss."""
    import deepspeed

    raw = load_deepspeed(args.deepspeed_config)
    cfg = resolve_deepspeed(raw, micro_batch=args.batch, world_size=1,
                            hidden_size=bundle.model.config.text_config.hidden_size)
    groups = param_groups(bundle.model, {p: 1e-5 for p in PARTS}, 0.0)
    optimizer = build_optimizer(groups, optimizer_defaults(raw), False)
    engine, *_ = deepspeed.initialize(model=bundle.model, optimizer=optimizer, config=cfg)
    engine.train()   # as the trainer does

    def step():
        engine.backward(forward_loss(engine, batch, device, dtype).loss)
        engine.step()

    return step


def measure(steps: dict, warmup: int, count: int, device) -> dict[str, float]:
    """Median seconds per step of each path, the paths alternating step by step so that both
    see the same machine load."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + count):
        for name, step in steps.items():
            t = seconds(step, device)
            if i >= warmup:
                times[name].append(t)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny | tiny-next | real-shaped | a model directory")
    parser.add_argument("--context", type=int, default=None, help="tokens per sample (default 1024 tiny, 8192)")
    parser.add_argument("--answer-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--deepspeed-config", default="zero2.json")
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--write-docs", default=None, help="rewrite the train_step section of this file")
    args = parser.parse_args()
    info = dist.setup()
    context = args.context or (1024 if args.model.startswith("tiny") else 8192)
    bundle = make_bundle(args.model)
    dtype = next(bundle.model.parameters()).dtype
    bundle.model.to(info.device)
    set_trainable(bundle.model, PARTS)
    if not args.no_gradient_checkpointing:
        bundle.model.activation_checkpointing_enable({"use_reentrant": False})
    enc = bundle.encoder(max_seq_len=10 ** 9)
    sample = make_sample(bundle, context, args.answer_tokens)
    batch = collate([enc.encode(sample) for _ in range(args.batch)], enc)
    tokens = batch.tokens
    twin = copy.deepcopy(bundle.model)   # the baseline trains its own copy, outside DeepSpeed
    median = measure({"baseline": plain_hf(twin, batch, info.device, dtype),
                      "ours": trainer_path(bundle, batch, info.device, dtype, args)},
                     args.warmup, args.steps, info.device)
    baseline, ours = median["baseline"], median["ours"]
    flops = FlopModel.from_model(bundle.model, PARTS).step_flops(
        [len(e) for e in batch.inputs["input_ids"]], batch.crops, int((batch.labels != -100).sum()))
    peak = peak_flops(info.device)
    device = torch.cuda.get_device_name(info.device) if info.device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    params = sum(p.numel() for p in bundle.model.parameters())
    lines = [f"Model: {args.model} ({params / 1e6:,.1f}M parameters, {dtype}), {device}; batch {args.batch} x "
             f"{tokens // args.batch} tokens (6 views, {args.answer_tokens} answer tokens), {args.deepspeed_config}, "
             f"gradient checkpointing {'off' if args.no_gradient_checkpointing else 'on'}.", "",
             "| path | step (s) | tokens/s | MFU |", "|---|---|---|---|",
             f"| plain HF forward/backward + AdamW (baseline) | {baseline:.3f} | {tokens / baseline:,.0f} | |",
             f"| trainer step (DeepSpeed, labelled logits only) | {ours:.3f} | {tokens / ours:,.0f} | "
             f"{'%.1f%%' % (100 * flops / ours / peak) if peak else 'n/a (peak unknown)'} |", "",
             f"Ratio trainer / baseline tokens/s: {baseline / ours:.2f}x."]
    print("\n".join(lines))
    if args.write_docs:
        from benchmarks_docs import rewrite_section

        rewrite_section(Path(args.write_docs), f"train_step_{info.device.type}", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
