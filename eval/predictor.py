"""The model side of evaluation: a `Predictor` turns a batch of prompts with images into texts.

The runner knows benchmarks, the predictor knows models; they meet only in `Request`
(the lmms-eval split between tasks and models). `HFPredictor` serves every model the
training stack saves or loads (vlm/model.py: HF LLaVA-NeXT / LLaVA-OneVision directories,
a run's stage outputs, the random `tiny` models): prompts are encoded exactly as in
training (vlm/encode.py `encode_prompt`: same chat format, same placeholder expansion),
left-padded for batched generation, and decoded after the prompt. A sample the model
cannot take (e.g. a video on a LLaVA-NeXT model) becomes a per-sample error, not a crash.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch

from dataengine.errors import UsageError
from eval.registry import Decoding


@dataclass
class Request:
    """One generation: a chat ending with a user turn whose placeholders stand for `images`."""

    key: str
    conversation: list[dict]
    groups: list[list[int]]      # media indices behind each placeholder
    kinds: list[str]             # "image" | "video" per placeholder
    images: list                 # PIL RGB images


@dataclass(frozen=True)
class Generation:
    text: str
    error: str | None = None     # why this sample produced no text (its answer is then scored as wrong)


class Predictor(Protocol):
    identity: dict               # what the model is; recorded beside every prediction
    # decode(payloads, groups, kinds) -> PIL images, at the resolution training gives the model
    decode: Callable[[list[bytes], list[list[int]], list[str]], list]

    def generate(self, requests: list[Request], decoding: Decoding) -> list[Generation]: ...


def last_stage(run: Path) -> Path:
    """The newest finished stage model of a training run (`RUN/stages/NN-name` with its
    trainer_state.json, see train/checkpoint.py)."""
    run_info(run)
    done = sorted(p for p in (Path(run) / "stages").glob("[0-9][0-9]-*") if (p / "trainer_state.json").is_file())
    if not done:
        raise UsageError(f"--run {run}: no finished stage (RUN/stages/NN-<name>/trainer_state.json); "
                         "train first or pass --model")
    return done[-1]


def base_model(run: Path) -> str:
    """The model a run started from: RUN/base for a tiny run, else run.json's --model."""
    info = run_info(run)
    if (Path(run) / "base" / "config.json").is_file():
        return str(Path(run) / "base")
    return str(info["model"])


def check_model(model: str) -> None:
    """Refuse, before anything runs, a --model that is neither a tiny name nor an HF model directory."""
    from vlm.model import is_tiny

    if not is_tiny(model) and not (Path(model) / "config.json").is_file():
        raise UsageError(f"--model {model}: not a model directory (no config.json); pass a local HF "
                         "checkpoint, a run's stage folder, or tiny / tiny-next")


def run_info(run: Path) -> dict:
    path = Path(run) / "run.json"
    if not path.is_file():
        raise UsageError(f"--run {run}: not a training run directory (no run.json)")
    return json.loads(path.read_text())


def _file_digest(path: Path) -> str:
    """sha1 of config.json and the weight files' names and sizes (reading 15 GB of weights
    to fingerprint a model would cost more than the evaluation)."""
    parts = [(path / "config.json").read_text()]
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        parts.append(f"{f.name}:{f.stat().st_size}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


class HFPredictor:
    """A model loaded through vlm/model.py, generating on one device."""

    def __init__(self, model: str, *, device: str | None = None, seed: int = 0, label: str = ""):
        from vlm.model import build_tiny, is_tiny, load
        from vlm.vision import MediaDecoder

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.bfloat16 if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        if is_tiny(model):
            self.bundle = build_tiny(model, seed)
            digest = f"tiny-seed{seed}"
        else:
            self.bundle = load(model, dtype=dtype)
            digest = _file_digest(Path(model))
        self.bundle.model.to(self.device).eval()
        self.encoder = self.bundle.encoder(max_seq_len=1 << 30)
        self.decode = MediaDecoder.for_spec(self.bundle.spec)
        self.identity = {"model": str(model), "label": label or str(model), "family": self.bundle.spec.family,
                         "chat_format": self.bundle.chat.name, "digest": digest, "dtype": str(dtype).split(".")[-1]}

    def _stop_ids(self) -> list[int]:
        tok = self.bundle.tokenizer
        ids = {tok.eos_token_id}
        end = tok.convert_tokens_to_ids(self.bundle.chat.end)
        if isinstance(end, int) and end != tok.unk_token_id:
            ids.add(end)
        return sorted(i for i in ids if i is not None)

    def generate(self, requests: list[Request], decoding: Decoding) -> list[Generation]:
        from vlm.encode import PlaceholderError, collate

        encoded, errors = [], {}
        for i, req in enumerate(requests):
            try:
                encoded.append(self.encoder.encode_prompt(req))
            except PlaceholderError as exc:
                errors[i] = str(exc)
        texts = iter(self._generate(collate(encoded, self.encoder), decoding) if encoded else [])
        return [Generation("", errors[i]) if i in errors else Generation(next(texts)) for i in range(len(requests))]

    @torch.no_grad()
    def _generate(self, batch, decoding: Decoding) -> list[str]:
        inputs = left_pad(batch.inputs)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.bundle.model.dtype)
        if "pixel_values_videos" in inputs:
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.bundle.model.dtype)
        sample = decoding.temperature > 0
        kwargs = dict(max_new_tokens=decoding.max_new_tokens, do_sample=sample, num_beams=decoding.num_beams,
                      eos_token_id=self._stop_ids(), pad_token_id=self.bundle.tokenizer.pad_token_id)
        if sample:
            kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p)
        out = self.bundle.model.generate(**inputs, **kwargs)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.bundle.tokenizer.batch_decode(new, skip_special_tokens=True)]


def left_pad(inputs: dict) -> dict:
    """Move each row's right padding to its left (batched generation continues every row at
    its last column); pixels are unaffected."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    lengths = mask.sum(dim=1)
    new_ids, new_mask = torch.empty_like(ids), torch.zeros_like(mask)
    width = ids.shape[1]
    for r, n in enumerate(lengths.tolist()):
        pad = width - n
        new_ids[r, :pad] = ids[r, n:] if pad else ids[r, :0]
        new_ids[r, pad:] = ids[r, :n]
        new_mask[r, pad:] = 1
    return dict(inputs, input_ids=new_ids, attention_mask=new_mask)


def decoding_record(decoding: Decoding) -> dict:
    return asdict(decoding)
