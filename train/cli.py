"""`python -m train --curriculum FILE --model PATH|tiny --out RUN_DIR [--shards DIR]
[--deepspeed-config zero2.json]`: the same command alone, under `torchrun` or under the
`deepspeed` launcher. Re-running it on the same --out resumes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dataengine.command import OneLineParser, run_command


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--curriculum", required=True, help="curriculum YAML or preset name (demo, robotron_drive, ...)")
    p.add_argument("--model", required=True, help="local HF model directory (LLaVA-NeXT / LLaVA-OneVision), "
                                                  "or tiny / tiny-next for a small random model")
    p.add_argument("--out", required=True, help="run directory; re-running with the same one resumes")
    p.add_argument("--shards", default="shards", help="shard root (default: shards)")
    p.add_argument("--deepspeed-config", default="zero2.json",
                   help="DeepSpeed JSON: a path or a name in train/ (zero2.json, zero3.json, *_offload.json)")
    p.add_argument("--save-every", type=int, default=100, help="optimizer steps between resume checkpoints")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="newest resume checkpoints kept")
    p.add_argument("--no-gradient-checkpointing", action="store_true", help="keep activations instead")
    p.add_argument("--attn", default="auto", help="auto | sdpa | eager | flash_attention_2")
    p.add_argument("--chat-format", default="auto", help="auto | chatml | llama3")
    p.add_argument("--num-workers", type=int, default=2, help="loader processes decoding images")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--local_rank", "--local-rank", type=int, default=None,
                   help=argparse.SUPPRESS)  # the deepspeed launcher passes it; LOCAL_RANK is what counts
    return p


def config_from_args(args: argparse.Namespace):
    from train.config import TrainConfig

    return TrainConfig(curriculum=args.curriculum, model=args.model, out=Path(args.out), shards=Path(args.shards),
                       deepspeed_config=args.deepspeed_config, save_every=args.save_every,
                       keep_checkpoints=args.keep_checkpoints,
                       gradient_checkpointing=not args.no_gradient_checkpointing, attn_implementation=args.attn,
                       chat_format=args.chat_format, num_workers=args.num_workers, lora_rank=args.lora_rank,
                       lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from train.trainer import Trainer

        trainer = Trainer(config_from_args(args))
        trainer.train()
        if trainer.dist.is_main:
            print(f"train: done: {args.out}")
        return 0

    return run_command("train", body)
