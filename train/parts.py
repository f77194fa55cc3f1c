"""A model's trainable parts and LoRA: what a curriculum stage's `train:` names, by parameter name.

- `vision`: the vision tower (`model.vision_tower.*`);
- `projector`: the multimodal projector and the image newline embedding;
- `llm`: the language model and its output head;
- `lora`: LoRA adapters (peft) on the language model's attention and MLP projections.
"""
from __future__ import annotations

import re

import torch

from dataengine.errors import UsageError

PART_RULES = (("lora", re.compile(r"lora_")),
              ("vision", re.compile(r"(^|\.)vision_tower\.")),
              ("projector", re.compile(r"(^|\.)(multi_modal_projector\.|image_newline$)")),
              ("llm", re.compile(r"(^|\.)(language_model\.|lm_head\.)")))
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def part_of(name: str) -> str:
    """The part a parameter belongs to, from its name."""
    for part, rule in PART_RULES:
        if rule.search(name):
            return part
    raise ValueError(f"parameter {name!r} belongs to no known part")


def set_trainable(model: torch.nn.Module, parts: tuple[str, ...]) -> dict[str, int]:
    """Train exactly the named parts; returns trainable parameter counts per part."""
    counts: dict[str, int] = {}
    for name, param in model.named_parameters():
        part = part_of(name)
        param.requires_grad_(part in parts)
        if part in parts:
            counts[part] = counts.get(part, 0) + param.numel()
    missing = [p for p in parts if p not in counts]
    if missing:
        raise UsageError(f"the model has no parameters for part(s) {missing}")
    return counts


def add_lora(model: torch.nn.Module, rank: int, alpha: int, dropout: float) -> torch.nn.Module:
    """Wrap the model with LoRA adapters on the language model's linear projections."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS, bias="none")
    return get_peft_model(model, config)


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """The plain HF model with the adapters merged into the base weights (no-op without LoRA)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
