"""One-command GPU check (issue 13): the trainer's step at real shapes with random weights,
next to plain HF forward/backward in the same run, in bf16, under each attention kernel
that is installed; tokens/s and MFU against the GPU's bf16 peak. Nothing is downloaded:
models are built from configs, the byte tokenizer stands in for the real one.

Cases (each skipped with its reason when it cannot run here):
- `0.5b`: SigLIP-so400m-384 + a Qwen2-0.5B-shaped LLM at 8,192 tokens, ZeRO-2, gradient
  checkpointing, SDPA and FlashAttention-2 (when `flash_attn` imports); trainer and baseline.
- `7b`: the same tower + a Qwen2-7B-shaped LLM, ZeRO-3, checkpointing, trainer path only (a
  baseline copy would not fit beside it); when the GPU has the memory for it.

    python benchmarks/gpu_check.py                       # on a GPU, a few minutes
    python benchmarks/gpu_check.py --write-docs docs/performance.md
    python benchmarks/gpu_check.py --cpu-smoke           # reduced shapes on CPU, seconds (a test runs it)
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_step import PARTS, make_sample, measure, plain_hf, trainer_path  # noqa: E402

from train import dist  # noqa: E402
from train.metrics import FlopModel, peak_flops  # noqa: E402
from train.parts import set_trainable  # noqa: E402
from vlm.encode import collate  # noqa: E402
from vlm.model import Bundle  # noqa: E402

SIGLIP_SO400M = dict(hidden_size=1152, intermediate_size=4304, num_attention_heads=16, num_hidden_layers=26,
                     image_size=384, patch_size=14)
QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_attention_heads=14, num_key_value_heads=2,
                 num_hidden_layers=24, vocab_size=151936)
QWEN2_7B = dict(hidden_size=3584, intermediate_size=18944, num_attention_heads=28, num_key_value_heads=4,
                num_hidden_layers=28, vocab_size=152064)
# --cpu-smoke: the same code at toy sizes
SMOKE_VISION = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                    image_size=28, patch_size=14)
SMOKE_TEXT = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                  num_hidden_layers=2, vocab_size=512)
GIB = 1 << 30


@dataclass(frozen=True)
class Case:
    name: str
    vision: dict
    text: dict
    deepspeed_config: str
    baseline: bool          # also time plain HF forward/backward on a copy
    min_memory_gib: float   # GPU memory the case needs (0: always)


def cases(smoke: bool) -> list[Case]:
    if smoke:
        return [Case("0.5b", SMOKE_VISION, SMOKE_TEXT, "zero2.json", True, 0),
                Case("7b", SMOKE_VISION, dict(SMOKE_TEXT, num_hidden_layers=3), "zero3.json", False, 0)]
    return [Case("0.5b", SIGLIP_SO400M, QWEN2_05B, "zero2.json", True, 0),
            Case("7b", SIGLIP_SO400M, QWEN2_7B, "zero3.json", False, 120)]


def attention_kernels(device: torch.device) -> list[tuple[str, str]]:
    """(kernel, why not) pairs: an empty reason means it runs."""
    flash = "" if device.type == "cuda" and importlib.util.find_spec("flash_attn") else \
        ("flash_attn is not installed" if device.type == "cuda" else "needs a GPU")
    return [("sdpa", ""), ("flash_attention_2", flash)]


def shaped(vision: dict, text: dict, attn: str, dtype: torch.dtype, device: torch.device) -> Bundle:
    """LLaVA-OneVision with these SigLIP / Qwen2 shapes, random weights, built from configs."""
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
    crop = vision["image_size"]
    pins = [[crop * i, crop * j] for i in range(1, 7) for j in range(1, 7)]
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(vision_use_head=False, **vision),
        text_config=Qwen2Config(max_position_embeddings=32768, rope_theta=1e6, tie_word_embeddings=True,
                                **dict(text, vocab_size=max(text["vocab_size"], len(tok)))),
        image_token_id=tok.image_token_id, video_token_id=tok.video_token_id, image_grid_pinpoints=pins,
        vision_feature_select_strategy="full", vision_feature_layer=-1, tie_word_embeddings=True)
    torch.manual_seed(0)
    with device:   # random init on the GPU itself: a 7B model initializes in seconds there
        model = LlavaOnevisionForConditionalGeneration._from_config(config, attn_implementation=attn, dtype=dtype)
    processor = LlavaOnevisionImageProcessorPil(size={"height": crop, "width": crop}, image_grid_pinpoints=pins)
    return Bundle(model, tok, processor, detect(tok))


def run_case(case: Case, attn: str, context: int, args, info) -> list[dict]:
    """Median step time of the trainer (and the baseline) for one case and kernel."""
    device = info.device
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    bundle = shaped(case.vision, case.text, attn, dtype, device)
    set_trainable(bundle.model, PARTS)
    bundle.model.activation_checkpointing_enable({"use_reentrant": False})
    enc = bundle.encoder(max_seq_len=10 ** 9)
    batch = collate([enc.encode(make_sample(bundle, context, args.answer_tokens))], enc)
    flops = FlopModel.from_model(bundle.model, PARTS).step_flops(
        [len(s) for s in batch.inputs["input_ids"]], batch.crops, int((batch.labels != -100).sum()))
    paths = {}
    if case.baseline:
        paths["plain HF"] = plain_hf(copy.deepcopy(bundle.model), batch, device, dtype)
    paths["trainer"] = trainer_path(bundle, batch, device, dtype,
                                    argparse.Namespace(deepspeed_config=case.deepspeed_config, batch=1))
    median = measure(paths, args.warmup, args.steps, device)
    peak = peak_flops(device)
    memory = torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None
    return [{"case": case.name, "attn": attn, "path": path, "tokens": batch.tokens, "seconds": s,
             "tokens_per_s": batch.tokens / s, "mfu": flops / s / peak if peak else None, "memory_gib": memory}
            for path, s in median.items()]


def table(rows: list[dict], skipped: list[str], header: str) -> list[str]:
    lines = [header, "", "| case | attention | path | tokens | step (s) | tokens/s | MFU | peak memory |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        mem = f"{r['memory_gib']:.1f} GiB" if r["memory_gib"] is not None else "n/a"
        lines.append(f"| {r['case']} | {r['attn']} | {r['path']} | {r['tokens']:,} | {r['seconds']:.3f} | "
                     f"{r['tokens_per_s']:,.0f} | {mfu} | {mem} |")
    lines += [""] + [f"Skipped: {s}." for s in skipped]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="toy shapes, 256 tokens, on CPU")
    parser.add_argument("--context", type=int, default=None, help="tokens per sample (default 8192; smoke 256)")
    parser.add_argument("--answer-tokens", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--write-docs", default=None, help="rewrite the gpu_check section of this file")
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke
    context = args.context or (256 if smoke else 8192)
    args.answer_tokens = min(args.answer_tokens, context // 4)
    args.warmup = args.warmup if args.warmup is not None else (1 if smoke else 2)
    args.steps = args.steps if args.steps is not None else (1 if smoke else 5)
    info = dist.setup()
    if not smoke and info.device.type != "cuda":
        print("gpu_check: no GPU here; run with --cpu-smoke for the reduced CPU mode", file=sys.stderr)
        return 2
    start = time.perf_counter()
    memory = torch.cuda.get_device_properties(info.device).total_memory / GIB if info.device.type == "cuda" else 0
    rows, skipped = [], []
    for case in cases(smoke):
        for attn, why in attention_kernels(info.device):
            if why:
                skipped.append(f"{case.name} {attn}: {why}")
            elif not smoke and memory < case.min_memory_gib:
                skipped.append(f"{case.name} {attn}: needs {case.min_memory_gib:.0f} GiB, the GPU has {memory:.0f}")
            else:
                try:
                    rows += run_case(case, attn, context, args, info)
                except torch.OutOfMemoryError:
                    skipped.append(f"{case.name} {attn}: out of memory")
                finally:
                    if info.device.type == "cuda":
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats(info.device)
    device = torch.cuda.get_device_name(info.device) if info.device.type == "cuda" else "CPU (smoke)"
    lines = table(rows, skipped, f"{device}, {context:,} tokens per sample (6 views), batch 1, gradient "
                                 f"checkpointing on, {'bf16' if info.device.type == 'cuda' else 'fp32'}; "
                                 f"{time.perf_counter() - start:.0f} s in all.")
    print("\n".join(lines))
    if args.write_docs:
        from benchmarks_docs import rewrite_section

        rewrite_section(Path(args.write_docs), "gpu_check", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
