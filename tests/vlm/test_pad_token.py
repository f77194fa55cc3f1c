"""A Llama-3-style tokenizer has no pad token (Llama-3.1, DriveMM): loading pads with EOS,
as LLaVA-NeXT's training code does, and a batch of unequal lengths collates and trains."""
from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
from vlm_helpers import ANSWER, Sample, color, conv

from vlm.encode import collate
from vlm.model import build_tiny, load

LLAMA3_SPECIALS = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>", "<image>", "<video>")


def llama3_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level, with Llama-3's special tokens and, like Llama-3's, no pad token."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(LLAMA3_SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   extra_special_tokens={"image_token": "<image>", "video_token": "<video>"})


def test_a_tokenizer_without_pad_token_pads_with_eos_and_trains(tmp_path):
    tok = llama3_tokenizer()
    assert tok.pad_token is None
    bundle = build_tiny("tiny-next", 0)
    bundle.model.resize_token_embeddings(len(tok))
    bundle.model.config.image_token_id = tok.convert_tokens_to_ids("<image>")
    bundle.model.config.text_config.pad_token_id = None
    bundle.tokenizer = tok
    bundle.save(tmp_path)
    loaded = load(tmp_path)
    assert loaded.chat.name == "llama3"
    assert loaded.tokenizer.pad_token == "<|eot_id|>"
    enc = loaded.encoder()
    short = Sample("short", conv("<image>\n", "Stop."), [[0]], ["image"], [color(40, (90, 50))])
    long = Sample("long", conv("<image>\n", ANSWER * 3), [[0]], ["image"], [color(80, (50, 90))])
    batch = collate([enc.encode(short), enc.encode(long)], enc)
    n_short = int(batch.inputs["attention_mask"][0].sum())
    assert (batch.inputs["input_ids"][0, n_short:] == tok.convert_tokens_to_ids("<|eot_id|>")).all()
    assert torch.isfinite(loaded.model(**batch.inputs, labels=batch.labels).loss)
