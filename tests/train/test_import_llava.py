"""`python -m train.import_llava`: a tiny checkpoint written in the original LLaVA-NeXT layout
(random weights) imports into HF LLaVA-OneVision and computes the same logits as the original
architecture; the imported directory runs through `python -m eval --model`.

The reference forward below is written from the original layout's definition in
LLaVA-VL/LLaVA-NeXT at commit df179663ae8b83207df100a1f7af24caec633ff9:
`llava/model/multimodal_encoder/siglip_encoder.py` (SigLipVisionTower: the tower's last layer
deleted, features = last remaining hidden state), `llava/model/multimodal_projector/builder.py`
(mlp2x_gelu: Linear, GELU, Linear), `llava/model/llava_arch.py`
(`prepare_inputs_labels_for_multimodal`: base crop + anyres tiles, `unpad_image`, the
anyres_max downscale, `image_newline` per row, features spliced at the image sentinel) and
`llava/mm_utils.py` (`select_best_resolution`, `get_anyres_image_grid_shape`).
"""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

from train.import_llava import main as import_main
from train.import_llava import pinpoints
from vlm.model import load

CROP, PATCH, HIDDEN, VISION = 28, 14, 64, 32
POINTS = [[28, 28], [28, 56], [56, 28], [56, 56], [28, 84], [84, 28]]
TOWER = "model.vision_tower.vision_tower.vision_model."
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def _tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level, ChatML markers, and (as in the original layout) no <image> token."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   chat_template=TEMPLATE)


def _write_original(root, aspect: str):
    """An lmms-lab-style checkpoint: Qwen2 LM, SigLIP tower (3 layers, last unused), mlp2x_gelu."""
    torch.manual_seed(0)
    tower_dir = root / "siglip"
    tower_dir.mkdir(parents=True)
    vcfg = SiglipVisionConfig(hidden_size=VISION, intermediate_size=64, num_attention_heads=2, num_hidden_layers=3,
                              image_size=CROP, patch_size=PATCH, vision_use_head=False)
    (tower_dir / "config.json").write_text(vcfg.to_json_string())
    tokenizer = _tokenizer()
    tcfg = Qwen2Config(hidden_size=HIDDEN, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                       num_hidden_layers=2, vocab_size=len(tokenizer), max_position_embeddings=512,
                       tie_word_embeddings=False)
    lm = Qwen2ForCausalLM(tcfg)
    tower = SiglipVisionModel(vcfg)
    weights = {k: v.clone() for k, v in lm.state_dict().items()}
    weights |= {f"{TOWER}{k}": v.clone() for k, v in tower.state_dict().items()}  # the original's key names
    weights |= {"model.mm_projector.0.weight": torch.randn(HIDDEN, VISION) * 0.2,
                "model.mm_projector.0.bias": torch.randn(HIDDEN) * 0.2,
                "model.mm_projector.2.weight": torch.randn(HIDDEN, HIDDEN) * 0.2,
                "model.mm_projector.2.bias": torch.randn(HIDDEN) * 0.2,
                "model.image_newline": torch.randn(HIDDEN)}
    src = root / "original"
    src.mkdir()
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for file, keys in shards.items():
        save_file({k: weights[k].contiguous() for k in keys}, str(src / file), metadata={"format": "pt"})
    (src / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}))
    config = {**tcfg.to_dict(), "model_type": "llava_qwen", "architectures": ["LlavaQwenForCausalLM"],
              "mm_vision_tower": str(tower_dir), "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": VISION,
              "mm_vision_select_layer": -2, "mm_patch_merge_type": "spatial_unpad", "image_aspect_ratio": aspect,
              "image_grid_pinpoints": POINTS, "mm_newline_position": "grid", "use_mm_proj": True}
    (src / "config.json").write_text(json.dumps(config))
    tokenizer.save_pretrained(src)
    return src, weights, vcfg, tcfg


# --- the original architecture's forward, re-written from LLaVA-NeXT (see the module docstring) ---

def _best_resolution(size_wh, possible):
    width, height = size_wh
    best, best_eff, best_waste = None, -1, math.inf
    for w, h in possible:
        scale = min(w / width, h / height)
        dw, dh = int(width * scale), int(height * scale)
        eff = min(dw * dh, width * height)
        waste = w * h - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (w, h), eff, waste
    return best


def _unpad(t, size_wh):
    ow, oh = size_wh
    ch, cw = t.shape[1:]
    if ow / oh > cw / ch:
        nh = int(oh * (cw / ow))
        pad = (ch - nh) // 2
        return t[:, pad: ch - pad, :]
    nw = int(ow * (ch / oh))
    pad = (cw - nw) // 2
    return t[:, :, pad: cw - pad]


def _reference_features(weights, vcfg, crops, size_wh, max_patches):
    tower = SiglipVisionModel(vcfg)
    tower.load_state_dict({k[len(TOWER):]: v for k, v in weights.items() if k.startswith(TOWER)})
    del tower.encoder.layers[-1:]
    feats = tower(crops, output_hidden_states=True).hidden_states[-1]
    feats = F.linear(F.gelu(F.linear(feats, weights["model.mm_projector.0.weight"],
                                     weights["model.mm_projector.0.bias"])),
                     weights["model.mm_projector.2.weight"], weights["model.mm_projector.2.bias"])
    base, tiles = feats[0], feats[1:]
    side = CROP // PATCH
    bw, bh = _best_resolution(size_wh, POINTS)
    tiles = tiles.view(bh // CROP, bw // CROP, side, side, -1)
    t = tiles.permute(4, 0, 2, 1, 3).flatten(1, 2).flatten(2, 3)
    t = _unpad(t, size_wh)
    c, h, w = t.shape
    times = math.sqrt(h * w / (max_patches * side ** 2))
    if times > 1.1:
        t = F.interpolate(t[None], [int(h // times), int(w // times)], mode="bilinear")[0]
    newline = weights["model.image_newline"]
    t = torch.cat((t, newline[:, None, None].expand(*t.shape[:-1], 1)), dim=-1)
    return torch.cat((base, t.flatten(1, 2).transpose(0, 1)), dim=0)


def _reference_logits(weights, tcfg, before_ids, image_features, after_ids):
    lm = Qwen2ForCausalLM(tcfg)
    lm.load_state_dict({k: v for k, v in weights.items() if not k.startswith(("model.vision_tower",
                                                                             "model.mm_projector",
                                                                             "model.image_newline"))})
    embed = lm.get_input_embeddings()
    seq = torch.cat([embed(before_ids), image_features, embed(after_ids)])[None]
    return lm(inputs_embeds=seq).logits[0]


@pytest.mark.parametrize("aspect,max_patches", [("anyres_max_9", 9), ("anyres_max_1", 1)])
def test_import_gives_the_original_logits(tmp_path, aspect, max_patches):
    src, weights, vcfg, tcfg = _write_original(tmp_path, aspect)
    out = tmp_path / "hf"
    assert import_main([str(src), str(out)]) == 0
    bundle = load(out)
    model = bundle.model.eval()
    assert model.config.model_type == "llava_onevision" and model.config.vision_aspect_ratio == aspect
    assert model.config.vision_config.num_hidden_layers == 2  # the original drops the tower's last layer
    assert bundle.chat.name == "chatml" and bundle.tokenizer.chat_template == TEMPLATE
    image = Image.fromarray((torch.rand(40, 70, 3) * 255).to(torch.uint8).numpy())  # height 40, width 70
    pixels = bundle.image_processor(images=[image], return_tensors="pt")
    crops = pixels["pixel_values"][0]
    with torch.no_grad():
        best_w, best_h = _best_resolution((70, 40), POINTS)
        crops = crops[: 1 + (best_w // CROP) * (best_h // CROP)]
        feats = _reference_features(weights, vcfg, crops, (70, 40), max_patches)
        assert len(feats) == bundle.spec.image_tokens(40, 70, multi=False)
        before = torch.tensor(bundle.tokenizer.encode("<|im_start|>user\n", add_special_tokens=False))
        after = torch.tensor(bundle.tokenizer.encode("What is ahead?<|im_end|>", add_special_tokens=False))
        reference = _reference_logits(weights, tcfg, before, feats, after)
        image_id = bundle.tokenizer.convert_tokens_to_ids("<image>")
        ids = torch.cat([before, torch.full((len(feats),), image_id), after])[None]
        logits = model(input_ids=ids, pixel_values=pixels["pixel_values"],
                       image_sizes=pixels["image_sizes"]).logits[0]
    vocab = tcfg.vocab_size
    assert logits.shape[-1] >= vocab + 2  # <image> and <video> were added
    torch.testing.assert_close(logits[:, :vocab], reference, atol=1e-5, rtol=1e-4)
    # a wrong newline or unpad would move the text positions after the image
    assert not torch.allclose(reference[-1], reference[0])


def test_pinpoint_range_string_expands_to_crop_multiples():
    assert pinpoints("(1x1),...,(2x3)", 384) == [[384, 384], [384, 768], [384, 1152], [768, 384], [768, 768],
                                                  [768, 1152]]


def test_bad_sources_are_one_line_and_exit_2(tmp_path, capsys):
    assert import_main([str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    src, _, _, _ = _write_original(tmp_path, "anyres_max_9")
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "mm_patch_merge_type": "flat"}))
    assert import_main([str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no config.json" in err[0] and "spatial_unpad" in err[1]


def test_imported_model_runs_in_eval(tmp_path, nuscenes_shards):
    from eval.cli import main as eval_main

    src, _, _, _ = _write_original(tmp_path, "anyres_max_9")
    model = tmp_path / "hf"
    assert import_main([str(src), str(model)]) == 0
    out = tmp_path / "eval"
    assert eval_main(["--model", str(model), "--benchmarks", "nuscenes_planning", "--shards", str(nuscenes_shards),
                      "--out", str(out), "--limit", "2", "--max-new-tokens", "4", "--skip-meteor"]) == 0
    rows = [json.loads(x) for x in (out / "model" / "predictions.jsonl").read_text().splitlines()]
    assert [r["benchmark"] for r in rows] == ["nuscenes_planning"] * 2
    assert all(r["model"]["model"] == str(model) for r in rows)
