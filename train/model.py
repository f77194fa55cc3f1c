"""The model and what goes with it: HF-native LLaVA-NeXT / LLaVA-OneVision loaded from a local
directory, its tokenizer, image processor and chat format; the trainable parts; LoRA.

Parts (what a curriculum stage's `train:` names), by parameter name:
- `vision`: the vision tower (`model.vision_tower.*`);
- `projector`: the multimodal projector and the image newline embedding;
- `llm`: the language model and its output head;
- `lora`: LoRA adapters (peft) on the language model's attention and MLP projections.

A saved model directory is plain HF format (config, safetensors, tokenizer with the chat
template, image processor, processor_config.json), so `from_pretrained` and
`AutoProcessor` read it; `load` reads it back without torchvision.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (AutoConfig, AutoImageProcessor, AutoTokenizer, LlavaNextForConditionalGeneration,
                          LlavaOnevisionForConditionalGeneration)

from dataengine.errors import UsageError
from train.chat import ChatFormat, detect
from train.encode import Encoder
from train.tiny import TINY_MODELS, tiny_image_processor, tiny_model, tiny_tokenizer
from train.vision import VisionSpec

MODEL_CLASSES = {"llava_next": LlavaNextForConditionalGeneration,
                 "llava_onevision": LlavaOnevisionForConditionalGeneration}
PART_RULES = (("lora", re.compile(r"lora_")),
              ("vision", re.compile(r"(^|\.)vision_tower\.")),
              ("projector", re.compile(r"(^|\.)(multi_modal_projector\.|image_newline$)")),
              ("llm", re.compile(r"(^|\.)(language_model\.|lm_head\.)")))
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class Bundle:
    """A model with its tokenizer, image processor and chat format."""

    model: torch.nn.Module
    tokenizer: object
    image_processor: object
    chat: ChatFormat

    @property
    def spec(self) -> VisionSpec:
        return VisionSpec.from_config(self.model.config)

    def encoder(self, max_seq_len: int = 8192, frames_per_video: int | None = None) -> Encoder:
        return Encoder(self.tokenizer, self.image_processor, self.spec, self.chat, max_seq_len, frames_per_video)

    def save(self, out: Path, state_dict: dict | None = None) -> None:
        """HF format; `state_dict` replaces the model's own (ZeRO-3 gathers one on rank 0).

        Weights keep the module's own names (`model.language_model.*`, the layout of
        transformers >= 4.52): reverting them to the legacy names doubles a prefix for a model
        loaded under ZeRO-3 in transformers 5.23 (`language_model.model.model.*`)."""
        out = Path(out)
        self.model.save_pretrained(out, state_dict=state_dict, save_original_format=False)
        save_processor(self, out)


def save_processor(bundle: Bundle, out: Path) -> None:
    """Tokenizer (with the chat template), image processor and processor_config.json."""
    bundle.tokenizer.chat_template = bundle.chat.jinja()
    bundle.tokenizer.save_pretrained(out)
    bundle.image_processor.save_pretrained(out)
    spec = bundle.spec
    config = {"processor_class": {"llava_next": "LlavaNextProcessor",
                                  "llava_onevision": "LlavaOnevisionProcessor"}[spec.family],
              "image_token": "<image>", "vision_feature_select_strategy":
                  bundle.model.config.vision_feature_select_strategy}
    if spec.family == "llava_next":
        config.update(patch_size=bundle.model.config.vision_config.patch_size, num_additional_image_tokens=0)
    else:
        config.update(video_token="<video>", num_image_tokens=spec.grid ** 2,
                      vision_aspect_ratio=bundle.model.config.vision_aspect_ratio,
                      image_processor=bundle.image_processor.to_dict(),
                      video_processor=_video_processor_config(bundle.image_processor, spec))
    (out / "processor_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "chat_template.jinja").write_text(bundle.chat.jinja())


def _video_processor_config(image_processor, spec: VisionSpec) -> dict:
    """LlavaOnevisionVideoProcessor's settings (frames are resized crops, normalized like images)."""
    return {"video_processor_type": "LlavaOnevisionVideoProcessor", "size": {"height": spec.crop, "width": spec.crop},
            "image_mean": list(image_processor.image_mean), "image_std": list(image_processor.image_std),
            "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "do_convert_rgb": True, "resample": 3, "do_sample_frames": False}


def is_tiny(name: str) -> bool:
    return str(name) in TINY_MODELS


def build_tiny(name: str, seed: int) -> Bundle:
    """A random tiny model (see train/tiny.py); deterministic for a seed."""
    tokenizer = tiny_tokenizer()
    return Bundle(tiny_model(name, tokenizer, seed), tokenizer, tiny_image_processor(name), detect(tokenizer))


def load(path, *, dtype: torch.dtype = torch.float32, attn_implementation: str = "sdpa",
         chat_format: str = "auto") -> Bundle:
    """A model directory in HF format (LlavaNext or LlavaOnevision); nothing is downloaded."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UsageError(f"{path}: not a model directory (no config.json); pass a local HF checkpoint or 'tiny'")
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    if config.model_type not in MODEL_CLASSES:
        raise UsageError(f"{path}: model_type {config.model_type!r} is not supported; "
                         f"known: {', '.join(MODEL_CLASSES)}")
    model = MODEL_CLASSES[config.model_type].from_pretrained(path, dtype=dtype, local_files_only=True,
                                                             attn_implementation=attn_implementation)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    return Bundle(model, tokenizer, image_processor, detect(tokenizer, chat_format))


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
