"""The model and what goes with it: HF-native LLaVA-NeXT / LLaVA-OneVision loaded from a local
directory, its tokenizer, image processor and chat format (the trainable parts and LoRA are
training's: train/parts.py).

A saved model directory is plain HF format (config, safetensors, tokenizer with the chat
template, image processor, processor_config.json), so `from_pretrained` and
`AutoProcessor` read it; `load` reads it back without torchvision.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoTokenizer,
    LlavaNextForConditionalGeneration,
    LlavaOnevisionForConditionalGeneration,
)

from dataengine.errors import UsageError
from vlm.chat import ChatFormat, detect
from vlm.encode import Encoder
from vlm.tiny import TINY_MODELS, tiny_image_processor, tiny_model, tiny_tokenizer
from vlm.vision import VisionSpec

MODEL_CLASSES = {"llava_next": LlavaNextForConditionalGeneration,
                 "llava_onevision": LlavaOnevisionForConditionalGeneration}


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


def ensure_pad_token(tokenizer) -> None:
    """Pad with EOS when the tokenizer has no pad token (Llama-3 / Llama-3.1 have none), as
    LLaVA-NeXT's train.py does for Llama-3; pads are masked and never labelled, so the id
    only has to exist."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise UsageError("the tokenizer has neither a pad nor an EOS token; cannot pad batches")
        tokenizer.pad_token = tokenizer.eos_token


def is_tiny(name: str) -> bool:
    return str(name) in TINY_MODELS


def build_tiny(name: str, seed: int) -> Bundle:
    """A random tiny model (see vlm/tiny.py); deterministic for a seed."""
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
    ensure_pad_token(tokenizer)
    image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    return Bundle(model, tokenizer, image_processor, detect(tokenizer, chat_format))
