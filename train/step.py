"""One forward/backward pass: the batch on the device, the loss per sequence, the update.

Logits are computed only where a label follows (`logits_to_keep` as a boolean mask): the
output head over a 150k vocabulary on every visual and prompt token would cost more memory
than the rest of the step and train nothing. Each sequence's loss sum and token count are
kept for per-source logging.

The loss is a sum over label tokens divided by `normalizer`. The trainer passes the label
tokens of the whole global batch (all ranks, all accumulation steps) times ranks x
accumulation steps, which DeepSpeed divides back out (it averages gradients over ranks and
scales each micro-batch by 1/accumulation): every label token of an optimizer step then
weighs the same, however samples fall into micro-batches (HF Trainer's `num_items_in_batch`).
Without it, the loss is this batch's token mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vlm.encode import IGNORE, Batch


@dataclass
class StepLoss:
    loss: torch.Tensor        # scalar, token sum / normalizer (carries the graph)
    seq_sum: torch.Tensor     # (B,) summed token losses per sequence, detached
    seq_tokens: torch.Tensor  # (B,) trained tokens per sequence


def to_device(inputs: dict, device: torch.device, dtype: torch.dtype) -> dict:
    """Tensors to the device; floating ones (pixels) to the model's dtype."""
    return {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}


def label_tokens(labels: torch.Tensor) -> int:
    """Tokens the loss is computed on (a label follows them)."""
    return int((labels[:, 1:] != IGNORE).sum())


def forward_loss(model, batch: Batch, device: torch.device, dtype: torch.dtype,
                 normalizer: float | None = None) -> StepLoss:
    inputs = to_device(batch.inputs, device, dtype)
    labels = batch.labels.to(device)
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != IGNORE
    logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits   # (K, V) at kept positions
    token_loss = F.cross_entropy(logits.float(), targets[targets != IGNORE], reduction="none")
    seq = keep.nonzero()[:, 0]
    seq_sum = torch.zeros(len(labels), device=device).index_add_(0, seq, token_loss.detach())
    seq_tokens = keep.sum(1)
    norm = seq_tokens.sum().clamp(min=1) if normalizer is None else normalizer
    return StepLoss(token_loss.sum() / norm, seq_sum, seq_tokens)
