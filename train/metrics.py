"""What a run reports: a tqdm bar (step, loss, tokens/s) and TensorBoard scalars, on rank 0.

Scalars, by global optimizer step: `train/loss` and `loss/<source>` (token-mean over every
rank's batch), `lr/<part>`, `perf/tokens_per_s`, `perf/samples_per_s`, `perf/mfu` (only on
a GPU whose bf16 dense peak is in PEAK_FLOPS), `mixture/<source>` (share of the stage's
samples served so far; `mixture_planned/<source>` once per stage).

MFU counts model FLOPs only (no activation recomputation), the usual 2 FLOPs per
multiply-add: language model 2N per token forward, 2N more for activation gradients, and 2N
for weight gradients when it trains, plus 12 x layers x hidden x sequence per token for
attention; the output head only where a label follows (train/step.py computes no other
logits); the vision tower the same per patch token, with no backward when it is frozen.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# bf16 dense tensor-core peak, FLOP/s, from the vendors' datasheets (SXM parts unless named)
PEAK_FLOPS = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12,
              "A10G": 70e12, "L4": 121e12}


def peak_flops(device: torch.device) -> float | None:
    """The device's bf16 peak when known (longest matching name first), else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key in sorted(PEAK_FLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_FLOPS[key]
    return None


@dataclass(frozen=True)
class FlopModel:
    """Parameter counts behind the FLOP estimate, from a model and the parts a stage trains."""

    llm_params: int        # language model matmul weights (embedding lookup and output head excluded)
    head_params: int       # output head (vocab x hidden), applied only where a label follows
    llm_layers: int
    llm_hidden: int
    vision_params: int     # vision tower + projector
    vision_layers: int
    vision_hidden: int
    patch_tokens: int      # tokens per crop in the vision tower
    llm_trains: bool       # full LLM weights (LoRA adapters are too small to count)
    vision_trains: bool

    @classmethod
    def from_model(cls, model, trained: tuple[str, ...]) -> "FlopModel":
        cfg = model.config
        text, vision = cfg.text_config, cfg.vision_config
        llm = vis = 0
        for name, p in model.named_parameters():
            n = getattr(p, "ds_numel", p.numel())  # ZeRO-3 keeps the full size here
            if "vision_tower" in name or "multi_modal_projector" in name:
                vis += n
            elif "language_model" in name and "embed_tokens" not in name and "lora_" not in name:
                llm += n
        return cls(llm, text.vocab_size * text.hidden_size, text.num_hidden_layers, text.hidden_size, vis,
                   vision.num_hidden_layers, vision.hidden_size, (vision.image_size // vision.patch_size) ** 2,
                   "llm" in trained, "vision" in trained)

    def step_flops(self, seq_lens: list[int], crops: int, head_tokens: int) -> float:
        """FLOPs of one step: sequences of `seq_lens` tokens, `crops` vision-tower inputs,
        the output head at `head_tokens` positions."""
        weight = 6 if self.llm_trains else 4
        llm = sum(n * (weight * self.llm_params + 12 * self.llm_layers * self.llm_hidden * n) for n in seq_lens)
        head = weight * self.head_params * head_tokens
        vision_attn = self.vision_layers * self.vision_hidden * self.patch_tokens
        per_patch = (6 * self.vision_params + 12 * vision_attn) if self.vision_trains else \
            (2 * self.vision_params + 4 * vision_attn)
        return llm + head + per_patch * crops * self.patch_tokens


class Reporter:
    """tqdm bar and TensorBoard writer; inert on ranks other than 0."""

    def __init__(self, log_dir, enabled: bool, progress: bool, first_step: int = 1):
        """`first_step`: the first global step this process will log; events a killed run
        logged from there on are purged, so a resumed run's curves have no duplicates."""
        self.enabled = enabled
        self.writer = None
        self.bar = None
        self.progress = progress and enabled
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir), purge_step=first_step)

    def start_stage(self, title: str, total: int, done: int) -> None:
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=title, unit="step", dynamic_ncols=True)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)

    def tick(self, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:,.0f}")

    def end_stage(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.end_stage()
        if self.writer is not None:
            self.writer.close()
