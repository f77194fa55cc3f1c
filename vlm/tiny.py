"""`--model tiny`: a small random LLaVA model and an offline tokenizer, for CPU tests and the demo.

Nothing is downloaded. The tokenizer is byte-level (every UTF-8 byte is a token, no merges),
so it covers any text losslessly with a 261-entry vocabulary; its special tokens are the
ChatML markers (`<|im_start|>`, `<|im_end|>`, as Qwen2-based LLaVA-OneVision uses) plus
`<image>` and `<video>`. `learned_tokenizer` adds BPE merges learned from a corpus (a few
seconds, deterministic): a random model learns from several times fewer, word-sized tokens
what it cannot learn from bytes in a CPU budget (`python -m vlm.make_tiny`, the demo's model).

The model has the real architecture at toy sizes: a 2-layer SigLIP-like vision tower on
28x28 crops (2x2 patches of 14 px), the 2-layer MLP projector, a 2-layer Llama language model.
A step takes milliseconds on a CPU.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
)

EOS = "<|endoftext|>"
SPECIALS = (EOS, "<|im_start|>", "<|im_end|>", "<image>", "<video>")
CROP = 28
PATCH = 14
PINPOINTS = [[CROP, CROP], [CROP, 2 * CROP], [2 * CROP, CROP], [2 * CROP, 2 * CROP]]
# tiny model names -> HF class (the `tiny` default is OneVision: it takes images, multi-image and video)
TINY_MODELS = {"tiny": "llava_onevision", "tiny-next": "llava_next"}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level tokenizer built in memory from the 256-byte alphabet (no training, no files)."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIALS))
    return _fast(tok)


def learned_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE learned from `texts`: the 256 bytes (so any text still encodes), the
    specials, then merges up to `vocab_size`. Pre-tokenized as Qwen2's is: words, and every
    digit its own token, so numbers are spelled digit by digit as the real model sees them.
    The same texts give the same tokenizer, byte for byte."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return _fast(tok)


def _fast(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS,
                                   extra_special_tokens={"image_token": "<image>", "video_token": "<video>"},
                                   model_max_length=8192)


def _vision_config() -> SiglipVisionConfig:
    return SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                              image_size=CROP, patch_size=PATCH, vision_use_head=False, attention_dropout=0.1)


def _text_config(tokenizer) -> LlamaConfig:
    return LlamaConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                       num_hidden_layers=2, vocab_size=len(tokenizer), max_position_embeddings=8192,
                       attention_dropout=0.1, tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=None, eos_token_id=tokenizer.eos_token_id)


def tiny_model(name: str, tokenizer, seed: int):
    """A random tiny model (`tiny`: LLaVA-OneVision, `tiny-next`: LLaVA-NeXT), seeded.

    Dropout is on (0.1 in attention) so that exact-resume tests also prove the RNG state
    is restored. SigLIP has no CLS token: vision_feature_select_strategy must be "full".
    """
    common = dict(vision_config=_vision_config(), text_config=_text_config(tokenizer),
                  image_token_id=tokenizer.image_token_id, image_grid_pinpoints=PINPOINTS,
                  vision_feature_select_strategy="full", vision_feature_layer=-1, tie_word_embeddings=False)
    torch.manual_seed(seed)
    if TINY_MODELS[name] == "llava_onevision":
        config = LlavaOnevisionConfig(video_token_id=tokenizer.video_token_id, vision_aspect_ratio="anyres_max_9",
                                      **common)
        return LlavaOnevisionForConditionalGeneration(config)
    return LlavaNextForConditionalGeneration(LlavaNextConfig(**common))


def tiny_image_processor(name: str):
    """The family's image processor at the tiny crop size (PIL backend: no torchvision needed)."""
    from transformers import LlavaNextImageProcessorPil, LlavaOnevisionImageProcessorPil

    if TINY_MODELS[name] == "llava_onevision":
        return LlavaOnevisionImageProcessorPil(size={"height": CROP, "width": CROP}, image_grid_pinpoints=PINPOINTS)
    return LlavaNextImageProcessorPil(size={"shortest_edge": CROP}, crop_size={"height": CROP, "width": CROP},
                                      image_grid_pinpoints=PINPOINTS)
