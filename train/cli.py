"""`python -m train --curriculum FILE --model PATH|tiny --out RUN_DIR [--shards DIR]
[--deepspeed-config zero2.json]`: the same command alone, under `torchrun` or under the
`deepspeed` launcher. Re-running it on the same --out resumes.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing

from dataengine.command import OneLineParser, run_command
from train.config import TrainConfig


def add_config_flags(parser: argparse.ArgumentParser, config: type) -> None:
    """One flag per field of the `config` dataclass, named, typed, defaulted and explained by
    the field (`train.config.option`), so defaults live only in the dataclass. A field without
    a default is a required flag; a bool is a switch, `--no-<name>` when it defaults to True."""
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        text = f.metadata.get("help", "")
        if hints[f.name] is bool:
            on = f.default is True
            parser.add_argument("--no-" + flag[2:] if on else flag, dest=f.name, default=on,
                                action="store_false" if on else "store_true", help=f"turn off: {text}" if on else text)
        elif f.default is dataclasses.MISSING:
            parser.add_argument(flag, dest=f.name, type=hints[f.name], required=True, help=text)
        else:
            parser.add_argument(flag, dest=f.name, type=hints[f.name], default=f.default,
                                metavar=flag[2:].upper().replace("-", "_"), help=f"{text} (default: {f.default})")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(p, TrainConfig)
    p.add_argument("--local_rank", "--local-rank", type=int, default=None,
                   help=argparse.SUPPRESS)  # the deepspeed launcher passes it; LOCAL_RANK is what counts
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


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
