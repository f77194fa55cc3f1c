"""A stage's optimizer and schedule: AdamW with one parameter group per trained part (and
one more per part without weight decay, for biases and norms), each at the stage's
learning rate for that part; linear warmup then cosine decay over the stage's steps.

The optimizer is built here and given to `deepspeed.initialize`, so the groups survive
whatever the DeepSpeed JSON says (see train/config.py).
"""
from __future__ import annotations

import math

import torch

from train.config import OptimizerDefaults
from train.parts import part_of


def no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, norm weights and 1-d embeddings such as image_newline take no weight decay.
    (ZeRO-3 keeps a partitioned parameter's real shape in `ds_shape`.)"""
    return len(getattr(param, "ds_shape", param.shape)) < 2 or name.endswith(".bias")


def param_groups(model: torch.nn.Module, lr: dict[str, float], weight_decay: float) -> list[dict]:
    """Trainable parameters grouped by (part, decay); `lr` names every trained part."""
    groups: dict[tuple[str, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part, nd = part_of(name), no_decay(name, param)
        if part not in lr:
            raise ValueError(f"parameter {name} ({part}) is trainable but the stage gives {part!r} no lr")
        group = groups.setdefault((part, nd), {"params": [], "lr": lr[part], "part": part,
                                               "weight_decay": 0.0 if nd else weight_decay})
        group["params"].append(param)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(groups: list[dict], defaults: OptimizerDefaults, offload: bool) -> torch.optim.Optimizer:
    """AdamW; DeepSpeed's CPU Adam when the optimizer state lives on the CPU beside a GPU."""
    if offload and torch.cuda.is_available():
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(groups, betas=defaults.betas, eps=defaults.eps, adamw_mode=True)
    fused = torch.cuda.is_available() and not offload
    return torch.optim.AdamW(groups, betas=defaults.betas, eps=defaults.eps, fused=fused or None)


def warmup_cosine(total_steps: int, warmup_ratio: float):
    """Learning-rate factor for optimizer step k (0-based): linear warmup over
    ceil(warmup_ratio x total) steps, reaching 1 at the warmup's last step, then cosine to 0."""
    warmup = math.ceil(warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def build_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup_ratio))


def part_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Current learning rate per part (as the optimizer will apply it at its next step)."""
    return {g["part"]: g["lr"] for g in optimizer.param_groups}
