"""`python -m train.import_llava SRC OUT`: a checkpoint in the original LLaVA-NeXT /
LLaVA-OneVision layout (lmms-lab's releases, RoboTron-Drive's DriveMM) into the HF LLaVA-NeXT /
OneVision directory that `--model` takes for training and evaluation.

The original layout (LLaVA-VL/LLaVA-NeXT, `llava/model/llava_arch.py`) keeps the language
model's own keys (`model.layers.*`, `lm_head`), the projector as `model.mm_projector.{0,2}`
(`mlp2x_gelu`), the vision tower as `model.vision_tower.vision_tower.vision_model.*` and the row
separator as `model.image_newline`; its `config.json` is the language model's config plus
`mm_*` settings. What the import decides, and why:

- SigLIP towers: the original deletes the tower's last layer at load and takes the last
  remaining hidden state before the post-layernorm (`mm_vision_select_layer` is ignored), so
  the HF tower keeps (tower layers - 1) layers with `vision_feature_layer=-1`, strategy "full".
  CLIP towers keep every layer; `mm_vision_select_layer` and `mm_vision_select_feature`
  ("patch" drops the CLS token: strategy "default") carry over.
- `image_aspect_ratio: anyres_max_N` with `spatial_unpad` is LLaVA-OneVision (HF implements the
  same unpad, downscale past N crops and newline); plain `anyres` is LLaVA-NeXT. Other merges
  (flat, pad) have no HF equivalent and are refused.
- The original marks images with a sentinel id (-200) outside the vocabulary; HF needs
  `<image>` (and `<video>`) tokens, so they are added to the tokenizer, and embedding rows are
  appended only when the vocabulary outgrows the matrix, set to the mean row (deterministic).
- The tower's shape comes from `--vision-tower DIR` or `mm_vision_tower` when it is a local
  directory (as the original loads it), else from the released towers' published configs
  below; either way it is checked against the weights. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoTokenizer,
    CLIPVisionConfig,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessorPil,
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionImageProcessorPil,
    SiglipVisionConfig,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from dataengine.command import OneLineParser, run_command
from dataengine.errors import UsageError
from vlm.chat import detect
from vlm.model import Bundle, save_processor

# The released towers' published configs (google/siglip-so400m-patch14-384,
# openai/clip-vit-large-patch14-336 config.json), used when the tower is not a local directory.
KNOWN_TOWERS = {
    "google/siglip-so400m-patch14-384": dict(
        hidden_size=1152, intermediate_size=4304, num_attention_heads=16, num_hidden_layers=27, image_size=384,
        patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6),
    "openai/clip-vit-large-patch14-336": dict(
        hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24, image_size=336,
        patch_size=14, projection_dim=768, hidden_act="quick_gelu", layer_norm_eps=1e-5),
}
# normalization of the towers' own image processors (SigLIP: 0.5; CLIP: OpenAI's statistics)
SIGLIP_MEAN_STD = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
CLIP_MEAN_STD = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
# the original config's language-model type, by its model_type or architecture
TEXT_TYPES = {"llava_qwen": "qwen2", "llava_llama": "llama", "llava": "llama", "llava_mistral": "mistral",
              "LlavaQwenForCausalLM": "qwen2", "LlavaLlamaForCausalLM": "llama", "LlavaMistralForCausalLM": "mistral"}
TOWER_PREFIX = "model.vision_tower.vision_tower.vision_model."


def read_weights(src: Path) -> dict[str, torch.Tensor]:
    """All tensors of a single or sharded checkpoint (safetensors, else PyTorch .bin)."""
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index = src / index_name
        if index.is_file():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        elif (src / single).is_file():
            files = [single]
        else:
            continue
        out: dict[str, torch.Tensor] = {}
        for name in files:
            if not (src / name).is_file():
                raise UsageError(f"{src / name}: listed in {index_name} but missing")
            if name.endswith(".safetensors"):
                with safe_open(src / name, framework="pt") as f:
                    out.update({k: f.get_tensor(k) for k in f.keys()})
            else:
                out.update(torch.load(src / name, map_location="cpu", weights_only=True))
        return out
    raise UsageError(f"{src}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")


def pinpoints(raw, crop: int) -> list[list[int]]:
    """The grid pinpoints as pixel sizes; the string form "(1x1),...,(6x6)" is a range of crop
    multiples, as the original's `get_anyres_image_grid_shape` expands it."""
    if isinstance(raw, str):
        found = re.findall(r"\((\d+)x(\d+)\)", raw)
        if not found:
            raise UsageError(f"image_grid_pinpoints {raw!r}: expected '(1x1),...,(NxM)' or a list of sizes")
        (a0, b0), (a1, b1) = map(int, found[0]), map(int, found[-1])
        return [[i * crop, j * crop] for i in range(a0, a1 + 1) for j in range(b0, b1 + 1)]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, list) and len(p) == 2 for p in raw):
        raise UsageError(f"image_grid_pinpoints {raw!r}: expected a list of [height, width] sizes")
    return [[int(a), int(b)] for a, b in raw]


def tower_config(original: dict, vision_tower: Path | None) -> tuple[str, dict]:
    """("siglip" | "clip", the tower's config as its owner publishes it)."""
    name = str(original.get("mm_vision_tower") or original.get("vision_tower") or "")
    kind = "siglip" if "siglip" in (str(vision_tower) if vision_tower else name).lower() else "clip"
    local = vision_tower or (Path(name) if name and Path(name).is_dir() else None)
    if local is not None:
        path = Path(local) / "config.json"
        if not path.is_file():
            raise UsageError(f"{local}: vision tower directory without config.json")
        raw = json.loads(path.read_text())
        return kind, dict(raw.get("vision_config", raw))
    if name not in KNOWN_TOWERS:
        raise UsageError(f"vision tower {name!r} is not a local directory nor one of {', '.join(KNOWN_TOWERS)}; "
                         "pass --vision-tower DIR (a directory with its config.json)")
    return kind, dict(KNOWN_TOWERS[name])


def vision_settings(original: dict, kind: str, tower: dict, weights: dict) -> tuple[object, int, str]:
    """(HF vision config, vision_feature_layer, vision_feature_select_strategy), checked
    against the stored tower."""
    keys = [k for k in weights if k.startswith(TOWER_PREFIX + "encoder.layers.")]
    stored = len({int(k[len(TOWER_PREFIX + "encoder.layers."):].split(".")[0]) for k in keys})
    if not stored:
        raise UsageError(f"no vision tower weights ({TOWER_PREFIX}encoder.layers.*) in the checkpoint")
    fields = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "image_size",
              "patch_size", "hidden_act", "layer_norm_eps", "projection_dim")
    cfg = {k: tower[k] for k in fields if k in tower}
    if kind == "siglip":
        used = int(cfg["num_hidden_layers"]) - 1       # the original deletes the last layer at load
        config = SiglipVisionConfig(**{**cfg, "num_hidden_layers": used}, vision_use_head=False)
        layer, strategy = -1, "full"
    else:
        used = int(cfg["num_hidden_layers"])
        config = CLIPVisionConfig(**cfg)
        layer = int(original.get("mm_vision_select_layer", -2))
        feature = original.get("mm_vision_select_feature", "patch")
        if feature not in ("patch", "cls_patch"):
            raise UsageError(f"mm_vision_select_feature {feature!r} is not supported (patch, cls_patch)")
        strategy = "default" if feature == "patch" else "full"
    if stored < used:
        raise UsageError(f"the checkpoint holds {stored} vision layers; the tower runs {used}")
    patch = weights[TOWER_PREFIX + "embeddings.patch_embedding.weight"]
    if patch.shape[0] != config.hidden_size or patch.shape[-1] != config.patch_size:
        raise UsageError(f"vision tower weights (hidden {patch.shape[0]}, patch {patch.shape[-1]}) do not match "
                         f"its config (hidden {config.hidden_size}, patch {config.patch_size})")
    return config, layer, strategy


def rename(key: str, used_layers: int) -> str | None:
    """The HF key of an original key; None for weights the original never runs."""
    if key.startswith(TOWER_PREFIX):
        rest = key[len(TOWER_PREFIX):]
        m = re.match(r"encoder\.layers\.(\d+)\.", rest)
        if (m and int(m.group(1)) >= used_layers) or rest.startswith("head."):
            return None
        return "model.vision_tower." + rest
    m = re.match(r"model\.mm_projector\.(\d+)\.(weight|bias)$", key)
    if m:
        linear = {"0": "linear_1", "2": "linear_2"}.get(m.group(1))
        if linear is None:
            raise UsageError(f"{key}: only the mlp2x_gelu projector (layers 0 and 2) is supported")
        return f"model.multi_modal_projector.{linear}.{m.group(2)}"
    if key == "model.image_newline" or key == "lm_head.weight":
        return key
    if key.startswith("model."):
        return "model.language_model." + key[len("model."):]
    raise UsageError(f"{key}: not a key of the LLaVA-NeXT layout")


def text_config(original: dict, vocab_rows: int):
    arch = (original.get("architectures") or [""])[0]
    text_type = TEXT_TYPES.get(original.get("model_type", "")) or TEXT_TYPES.get(arch)
    if text_type is None:
        raise UsageError(f"model_type {original.get('model_type')!r} / {arch!r}: not a LLaVA-NeXT language model "
                         f"({', '.join(sorted(TEXT_TYPES))})")
    known = set(CONFIG_MAPPING[text_type]().to_dict()) | {"rope_scaling", "rope_theta"}
    kept = {k: v for k, v in original.items() if k in known and k not in ("model_type", "architectures",
                                                                           "transformers_version", "dtype")}
    kept["vocab_size"] = vocab_rows
    return AutoConfig.for_model(text_type, **kept)


def add_special_tokens(tokenizer, names: tuple[str, ...]) -> None:
    missing = [t for t in names if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)


def grow_embeddings(weights: dict, rows: int, tied: bool) -> None:
    """Append rows (the mean of the existing ones) up to `rows` for the added tokens."""
    for key in ("model.language_model.embed_tokens.weight",) + (() if tied else ("lm_head.weight",)):
        w = weights[key]
        if w.shape[0] < rows:
            weights[key] = torch.cat([w, w.float().mean(0, keepdim=True).to(w.dtype).expand(rows - w.shape[0], -1)])


def image_processor(family: str, crop: int, points: list, kind: str):
    mean, std = SIGLIP_MEAN_STD if kind == "siglip" else CLIP_MEAN_STD
    if family == "llava_onevision":
        return LlavaOnevisionImageProcessorPil(size={"height": crop, "width": crop}, image_grid_pinpoints=points,
                                               image_mean=mean, image_std=std)
    return LlavaNextImageProcessorPil(size={"shortest_edge": crop}, crop_size={"height": crop, "width": crop},
                                      image_grid_pinpoints=points, image_mean=mean, image_std=std)


def family_of(original: dict) -> tuple[str, str | None]:
    aspect = str(original.get("image_aspect_ratio", "square"))
    merge = str(original.get("mm_patch_merge_type", "flat"))
    if "unpad" not in merge or not aspect.startswith("anyres"):
        raise UsageError(f"image_aspect_ratio {aspect!r} with mm_patch_merge_type {merge!r}: HF LLaVA-NeXT / "
                         "OneVision implement only anyres with spatial_unpad")
    if re.fullmatch(r"anyres_max_\d+", aspect):
        return "llava_onevision", aspect
    if aspect == "anyres":
        return "llava_next", None
    raise UsageError(f"image_aspect_ratio {aspect!r}: expected anyres or anyres_max_N")


def convert(src: Path, out: Path, vision_tower: Path | None = None, chat_format: str = "auto") -> Path:
    """Write the HF directory for the original checkpoint at `src`; returns `out`."""
    src, out = Path(src), Path(out)
    if not (src / "config.json").is_file():
        raise UsageError(f"{src}: no config.json; not a checkpoint directory")
    original = json.loads((src / "config.json").read_text())
    if original.get("mm_projector_type", "linear") != "mlp2x_gelu":
        raise UsageError(f"mm_projector_type {original.get('mm_projector_type')!r}: only mlp2x_gelu has an HF "
                         "LLaVA-NeXT equivalent")
    family, aspect = family_of(original)
    weights = read_weights(src)
    kind, tower = tower_config(original, vision_tower)
    vision, layer, strategy = vision_settings(original, kind, tower, weights)
    renamed = {}
    for key, tensor in weights.items():
        new = rename(key, vision.num_hidden_layers)
        if new is not None:
            renamed[new] = tensor

    tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
    template = tokenizer.chat_template
    add_special_tokens(tokenizer, ("<image>", "<video>") if family == "llava_onevision" else ("<image>",))
    tied = bool(original.get("tie_word_embeddings", False)) or "lm_head.weight" not in renamed
    rows = max(len(tokenizer), renamed["model.language_model.embed_tokens.weight"].shape[0])
    grow_embeddings(renamed, rows, tied)
    points = pinpoints(original.get("image_grid_pinpoints", [[vision.image_size] * 2]), vision.image_size)
    common = dict(vision_config=vision, text_config=text_config(original, rows), image_grid_pinpoints=points,
                  image_token_id=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=layer,
                  vision_feature_select_strategy=strategy, tie_word_embeddings=tied)
    if family == "llava_onevision":
        config = LlavaOnevisionConfig(video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
                                      vision_aspect_ratio=aspect, **common)
        model_class = LlavaOnevisionForConditionalGeneration
    else:
        config, model_class = LlavaNextConfig(**common), LlavaNextForConditionalGeneration
    dtype = renamed["model.language_model.embed_tokens.weight"].dtype
    config.dtype = dtype
    with torch.device("meta"):
        model = model_class(config)
    missing, unexpected = model.load_state_dict(renamed, strict=False, assign=True)
    missing = [k for k in missing if not (tied and k == "lm_head.weight")]
    if missing or unexpected:
        raise UsageError(f"{src}: weights do not fit the converted architecture (missing: "
                         f"{', '.join(missing[:4]) or '-'}; unexpected: {', '.join(unexpected[:4]) or '-'})")
    if tied:
        model.tie_weights()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, save_original_format=False)
    bundle = Bundle(model, tokenizer, image_processor(family, vision.image_size, points, kind),
                    detect(tokenizer, chat_format))
    save_processor(bundle, out)
    if template:  # the source's own template is carried over as it is
        tokenizer.chat_template = template
        tokenizer.save_pretrained(out)
        (out / "chat_template.jinja").write_text(template)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train.import_llava", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="the original checkpoint directory (config.json, weights, tokenizer)")
    p.add_argument("out", type=Path, help="the HF directory to write (what --model takes)")
    p.add_argument("--vision-tower", type=Path, default=None,
                   help="a local directory with the vision tower's config.json (default: mm_vision_tower when it "
                        "is a directory, else the released tower's published config)")
    p.add_argument("--chat-format", default="auto", help="chat format when the tokenizer's markers do not say")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        if args.out.exists() and any(args.out.iterdir()):
            raise UsageError(f"{args.out}: exists and is not empty")
        convert(args.src, args.out, args.vision_tower, args.chat_format)
        print(f"import_llava: wrote {args.out}")
        return 0

    return run_command("import_llava", body)


if __name__ == "__main__":
    raise SystemExit(main())
