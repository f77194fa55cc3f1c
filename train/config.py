"""The run's configuration, and the DeepSpeed JSON made concrete for one stage.

DeepSpeed configs (train/zero2.json, zero3.json and the *_offload variants) may hold
HF-style "auto" values; `resolve_deepspeed` fills them from the stage (micro-batch), the
world size, the model's hidden size and the hardware (bf16 where the GPU has it).

Its `optimizer` and `scheduler` blocks are taken over, not passed on: the trainer builds
the optimizer itself, one parameter group per trained part with that part's learning rate
from the curriculum stage, and hands it to `deepspeed.initialize`. With HF's Trainer a
config optimizer block replaces the client optimizer (transformers' `deepspeed_optim_sched`
builds a DummyOptim over all parameters), which is how LLaVA-NeXT's `mm_projector_lr` and
`mm_vision_tower_lr` get lost under zero2.json. The block's betas and eps are kept as
defaults; its lr and weight_decay are the stage's.

torch is imported only inside the functions that need it: the command line is built from
`TrainConfig`, and `python -m train --help` or a bad flag should not wait for torch.
"""
from __future__ import annotations

import copy
import json
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dataengine.errors import UsageError

if TYPE_CHECKING:
    import torch

PACKAGE = Path(__file__).parent
OPTIMIZER_TYPES = ("adam", "adamw")


def option(help: str, default=MISSING, flag: str = ""):
    """A TrainConfig field with its command-line help; train/cli.py makes it `--<name>`
    (`flag` when the flag is named otherwise), a bool that defaults to True `--no-<name>`."""
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run is given; `python -m train`'s flags and their defaults are these fields."""

    curriculum: str = option("curriculum YAML or preset name (demo, robotron_drive, ...)")
    model: str = option("local HF model directory (LLaVA-NeXT / LLaVA-OneVision), "
                        "or tiny / tiny-next for a small random model")
    out: Path = option("run directory; re-running with the same one resumes")
    shards: Path = option("shard root the curriculum's patterns resolve against", Path("shards"))
    deepspeed_config: str = option("DeepSpeed JSON: a path or a name in train/ "
                                   "(zero2.json, zero3.json, *_offload.json)", "zero2.json")
    save_every: int = option("optimizer steps between resume checkpoints (stage ends always save)", 100)
    keep_checkpoints: int = option("newest resume checkpoints kept", 2)
    gradient_checkpointing: bool = option("gradient checkpointing (activations recomputed in the backward pass "
                                          "instead of kept)", True)
    attn_implementation: str = option("auto | sdpa | eager | flash_attention_2 (auto: flash_attention_2 "
                                      "on CUDA when installed, else sdpa)", "auto", flag="--attn")
    chat_format: str = option("auto | chatml | llama3 (auto: from the tokenizer's special tokens, "
                              "vlm/chat.py)", "auto")
    num_workers: int = option("loader processes decoding images", 2)
    lora_rank: int = option("LoRA rank, for stages that train `lora`", 16)
    lora_alpha: int = option("LoRA alpha", 32)
    lora_dropout: float = option("LoRA dropout", 0.0)
    progress: bool = option("the tqdm progress bar on rank 0", True)

    def __post_init__(self):
        if self.save_every < 0 or self.keep_checkpoints < 1 or self.num_workers < 0:
            raise UsageError("--save-every and --num-workers must be >= 0, --keep-checkpoints >= 1")
        if self.attn_implementation not in ("auto", "sdpa", "eager", "flash_attention_2"):
            raise UsageError(f"--attn {self.attn_implementation!r}: use auto, sdpa, eager or flash_attention_2")


@dataclass(frozen=True)
class OptimizerDefaults:
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


def deepspeed_path(name: str) -> Path:
    """A config path as given, else one of the configs shipped in train/."""
    path = Path(name)
    if path.is_file():
        return path
    if (PACKAGE / name).is_file():
        return PACKAGE / name
    shipped = ", ".join(sorted(p.name for p in PACKAGE.glob("*.json")))
    raise UsageError(f"{name}: no such DeepSpeed config (shipped: {shipped})")


def load_deepspeed(name: str) -> dict:
    path = deepspeed_path(name)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None


def bf16_available() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def model_dtype(raw: dict) -> torch.dtype:
    """The dtype DeepSpeed will train in: bf16 when enabled ("auto": where the GPU has it),
    fp16 when enabled, else fp32. Models load in it and pixels are cast to it."""
    import torch

    bf16 = raw.get("bf16", {}).get("enabled", False)
    if bf16 is True or (bf16 == "auto" and bf16_available()):
        return torch.bfloat16
    if raw.get("fp16", {}).get("enabled", False) is True:
        return torch.float16
    return torch.float32


def zero_stage(raw: dict) -> int:
    return int(raw.get("zero_optimization", {}).get("stage", 0))


def offloads_optimizer(raw: dict) -> bool:
    return raw.get("zero_optimization", {}).get("offload_optimizer", {}).get("device", "none") != "none"


def optimizer_defaults(raw: dict) -> OptimizerDefaults:
    """Betas and eps from the config's optimizer block, if any (its lr/weight_decay are ignored)."""
    block = raw.get("optimizer")
    if not block:
        return OptimizerDefaults()
    if str(block.get("type", "")).lower() not in OPTIMIZER_TYPES:
        raise UsageError(f"DeepSpeed optimizer type {block.get('type')!r}: the trainer builds AdamW; "
                         f"use one of {OPTIMIZER_TYPES} or drop the block")
    params = block.get("params", {})
    betas = params.get("betas", "auto")
    eps = params.get("eps", "auto")
    return OptimizerDefaults(OptimizerDefaults.betas if betas == "auto" else tuple(betas),
                             OptimizerDefaults.eps if eps == "auto" else float(eps))


def resolve_deepspeed(raw: dict, *, micro_batch: int, world_size: int, hidden_size: int,
                      grad_accum: int | None = None) -> dict:
    """A concrete config for `deepspeed.initialize`: no "auto" left, no optimizer/scheduler block.
    `grad_accum` (the curriculum stage's) wins over the JSON's gradient_accumulation_steps."""
    cfg = copy.deepcopy(raw)
    cfg.pop("optimizer", None)
    cfg.pop("scheduler", None)
    accum = cfg.get("gradient_accumulation_steps", "auto")
    accum = grad_accum or (1 if accum == "auto" else int(accum))
    cfg.update(train_micro_batch_size_per_gpu=micro_batch, gradient_accumulation_steps=accum,
               train_batch_size=micro_batch * accum * world_size, zero_allow_untested_optimizer=True)
    if cfg.get("gradient_clipping") == "auto":
        cfg["gradient_clipping"] = 1.0
    for key in ("bf16", "fp16"):
        if cfg.get(key, {}).get("enabled") == "auto":
            cfg[key]["enabled"] = bf16_available() if key == "bf16" else False
    zero = cfg.setdefault("zero_optimization", {})
    sizes = {"reduce_bucket_size": hidden_size * hidden_size,
             "stage3_prefetch_bucket_size": int(0.9 * hidden_size * hidden_size),
             "stage3_param_persistence_threshold": 10 * hidden_size}
    for key, value in sizes.items():
        if zero.get(key) == "auto":
            zero[key] = value
    if offloads_optimizer(cfg) and not _cuda():
        cfg["zero_force_ds_cpu_optimizer"] = False  # CPU-only: torch's AdamW already runs on the CPU
    left = _autos(cfg)
    if left:
        raise UsageError(f"DeepSpeed config: cannot resolve \"auto\" for {', '.join(left)}; give values")
    return cfg


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _autos(node, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [k for key, v in node.items() for k in _autos(v, f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if node == "auto" else []
