"""`python -m train`'s flags come from TrainConfig: names, defaults and switches."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from train.cli import build_parser, config_from_args
from train.config import TrainConfig

REQUIRED = ["--curriculum", "demo", "--model", "tiny", "--out", "runs/x"]


def test_defaults_are_the_dataclass_defaults():
    config = config_from_args(build_parser().parse_args(REQUIRED))
    assert config == TrainConfig(curriculum="demo", model="tiny", out=Path("runs/x"))
    flags = {o for a in build_parser()._actions for o in a.option_strings}
    assert {"--attn", "--no-gradient-checkpointing", "--no-progress", "--deepspeed-config", "--local-rank",
            "--local_rank"} <= flags
    assert all(f.metadata.get("help") for f in dataclasses.fields(TrainConfig))


def test_every_flag_reaches_its_field():
    args = build_parser().parse_args(REQUIRED + [
        "--shards", "s", "--deepspeed-config", "zero3.json", "--save-every", "0", "--keep-checkpoints", "3",
        "--no-gradient-checkpointing", "--attn", "sdpa", "--chat-format", "llama3", "--num-workers", "0",
        "--lora-rank", "4", "--lora-alpha", "8", "--lora-dropout", "0.1", "--no-progress", "--local_rank", "2"])
    assert config_from_args(args) == TrainConfig(
        curriculum="demo", model="tiny", out=Path("runs/x"), shards=Path("s"), deepspeed_config="zero3.json",
        save_every=0, keep_checkpoints=3, gradient_checkpointing=False, attn_implementation="sdpa",
        chat_format="llama3", num_workers=0, lora_rank=4, lora_alpha=8, lora_dropout=0.1, progress=False)


def test_a_missing_required_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--model", "tiny", "--out", "x"])
    assert exc.value.code == 2 and "--curriculum" in capsys.readouterr().err
