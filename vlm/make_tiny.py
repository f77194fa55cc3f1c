"""`python -m vlm.make_tiny --shards ROOT --out DIR`: a random tiny model saved as an HF model
directory whose tokenizer is BPE learned from the root's training text.

The byte-level `--model tiny` spells every answer a byte at a time; in a CPU budget a random
model learns answer formats from word-sized tokens that it cannot learn from bytes (the demo's
trajectories, 94 bytes, are 76 tokens with merges). The text is every training split's
rendered conversations (user and assistant turns, in the prompt style training renders), of the
datasets that are not held out: neither a validation split nor an unseen benchmark shapes the
vocabulary. The directory is plain HF format, so `--model DIR` trains and evaluates it as it
would a released checkpoint.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from dataengine.command import OneLineParser, run_command
from dataengine.errors import UsageError
from dataengine.heldout import UNSEEN_DATASETS
from dataengine.manifest import dataset_splits
from dataengine.prompts import STYLES, render
from dataengine.reader import DatasetReader
from vlm.chat import detect
from vlm.model import Bundle
from vlm.tiny import TINY_MODELS, learned_tokenizer, tiny_image_processor, tiny_model


def training_splits(root: Path) -> list[tuple[str, str]]:
    """The (dataset, 'train') splits of a root whose text the tokenizer may learn from."""
    return [(d, s) for d, s in dataset_splits(root) if s == "train" and d not in UNSEEN_DATASETS]


def training_texts(root: Path, style: str) -> Iterator[str]:
    """Each turn's text of every training split, in a fixed order (dataset, then key order)."""
    for dataset, split in training_splits(root):
        for stored in DatasetReader(root, dataset, split):
            for turn in render(stored.sample, style).conversation:
                yield turn["content"]


def make_tiny(root: Path, out: Path, family: str = "tiny", vocab_size: int = 1024, seed: int = 0,
              style: str = "robotron") -> Bundle:
    """Learn the tokenizer, build the seeded random model on it, save both under `out`."""
    if not training_splits(root):
        raise UsageError(f"{root}: no training split of a seen dataset to learn a tokenizer from")
    tokenizer = learned_tokenizer(training_texts(root, style), vocab_size)
    bundle = Bundle(tiny_model(family, tokenizer, seed), tokenizer, tiny_image_processor(family), detect(tokenizer))
    bundle.save(out)
    return bundle


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m vlm.make_tiny", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", type=Path, required=True, help="shard root whose training splits give the text")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--family", choices=sorted(TINY_MODELS), default="tiny",
                   help="tiny (LLaVA-OneVision) or tiny-next (LLaVA-NeXT)")
    p.add_argument("--vocab", type=int, default=1024, help="tokenizer size, specials and 256 bytes included")
    p.add_argument("--seed", type=int, default=0, help="the random model's weights")
    p.add_argument("--prompt-style", choices=sorted(STYLES), default="robotron", help="as training renders")
    args = p.parse_args(argv)
    if args.vocab < 512:
        p.error(f"--vocab {args.vocab}: at least 512 (256 bytes and the specials come first)")

    def body() -> int:
        b = make_tiny(args.shards, args.out, args.family, args.vocab, args.seed, args.prompt_style)
        print(f"make_tiny: {args.out}: {args.family}, vocabulary {len(b.tokenizer)}, "
              f"{sum(p.numel() for p in b.model.parameters()):,} parameters")
        return 0

    return run_command("make_tiny", body)


if __name__ == "__main__":
    raise SystemExit(main())
