"""Exact sample lengths for one model, at plan time (`curricula plan --model DIR`).

A sample's length is its text tokens plus its visual tokens, as the encoder (`vlm.encode`)
counts them: the conversation rendered with the stage's prompt style and the model's chat
template, each text piece between placeholders tokenized on its own (as the encoder does),
and each placeholder worth `dataengine.tokens.VisualConfig`'s count for its images' stored
sizes. The chat template's own tokens depend only on the turns' roles and the visual tokens
only on (kinds, sizes), so both are cached; the per-sample cost is rendering the prompt and
one batched tokenizer call. Reads each sample's JSON from the shards (not its pixels).

A video sample on a family without video input (LLaVA-NeXT) is counted as multi-image
frames, or dropped with reason `video` when the source or stage says `video: drop`; a sample
whose placeholders and media do not pair up is dropped with reason `encode`.

The model is a local HF directory or `tiny` / `tiny-next` (built in memory as the trainer
builds them), read through `vlm` (the chat format the encoder renders with, the tiny
models), which curricula imports only here and only when a model is named. The trainer
plans every stage with this same class, so what `curricula plan --model` prints is what
training draws. A stage's exact columns are cached beside its plans (`lengths-<sha1>.npz`),
keyed by the manifests, the model, the prompt style, the frames per video and the video policy.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from curricula.sources import SourceRows
from curricula.spec import StageSpec
from dataengine.errors import UsageError
from dataengine.frames import kept_media, spaced
from dataengine.prompts import render
from dataengine.reader import DatasetReader
from dataengine.tokens import VisualConfig

PLACEHOLDER = re.compile(r"<image>|<video>")
BATCH = 20_000   # text pieces per tokenizer call
LENGTHS_VERSION = 2   # bump when the counting changes: cached lengths are then recomputed


class ExactLengths:
    """A model's tokenizer, chat template and visual arithmetic."""

    def __init__(self, config: dict, tokenizer, chat_template: str, name: str):
        try:
            self.visual = VisualConfig.from_dict(config)
        except (ValueError, KeyError) as exc:
            raise UsageError(f"--model {name}: {exc}") from None
        self.tokenizer = tokenizer
        self.tokenizer.chat_template = chat_template   # the one the encoder renders (vlm.chat)
        self.name = name
        blob = json.dumps(config, sort_keys=True, default=str).encode()
        self.ident = hashlib.sha1(blob + chat_template.encode() + str(len(tokenizer)).encode()).hexdigest()
        self._visual = functools.lru_cache(maxsize=None)(self.visual.placeholder_tokens)

    @classmethod
    def from_model(cls, model, chat_format: str = "auto") -> "ExactLengths":
        """`tiny` / `tiny-next`, or a local HF model directory (its config.json and tokenizer),
        with the chat format the trainer would pick (`chat_format` as `--chat-format`)."""
        # curricula sits on vlm; it is loaded only when a model is named
        from vlm.chat import detect
        from vlm.model import build_tiny, is_tiny

        if is_tiny(model):
            bundle = build_tiny(str(model), 0)   # the config and tokenizer do not depend on the seed
            return cls(bundle.model.config.to_dict(), bundle.tokenizer, bundle.chat.jinja(), str(model))
        from transformers import AutoTokenizer

        model_dir = Path(model)
        config_path = model_dir / "config.json"
        if not config_path.is_file():
            raise UsageError(f"--model {model_dir}: no config.json (give a local HF model directory, "
                             "or tiny / tiny-next)")
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        return cls(json.loads(config_path.read_bytes()), tokenizer, detect(tokenizer, chat_format).jinja(),
                   str(model_dir))

    @functools.cache  # noqa: B019 (one instance per command; the cache is the point)
    def frame_tokens(self, roles: tuple[str, ...]) -> int:
        """Tokens of the chat template around empty turns of these roles (headers, ends, the
        default system prompt)."""
        ids = self.tokenizer.apply_chat_template([{"role": r, "content": ""} for r in roles], tokenize=True)
        return len(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    def sample(self, sample: dict, stage: StageSpec, policy: str) -> tuple[list[str], int, int, str]:
        """(text pieces to tokenize, template tokens, visual tokens, drop reason or "")."""
        kept = kept_media(sample, stage.frames_per_video)
        reduced = dict(sample, media=[sample["media"][i] for i in kept])
        rendered = render(reduced, stage.prompt_style)
        sizes = [(m["height"], m["width"]) for m in reduced["media"]]
        kinds, groups = list(rendered.kinds), list(rendered.groups)
        if "video" in kinds and not self.visual.has_video:
            if policy == "drop":
                return [], 0, 0, "video"
            groups = [[f] for g, k in zip(groups, kinds) for f in
                      ([g[i] for i in spaced(len(g), stage.frames_per_video)] if k == "video" else g)]
            kinds = ["image"] * len(groups)
        elif "video" in kinds:
            groups = [[g[i] for i in spaced(len(g), stage.frames_per_video)] if k == "video" else g
                      for g, k in zip(groups, kinds)]
        pieces = [p for turn in rendered.conversation for p in PLACEHOLDER.split(turn["content"]) if p]
        n_placeholders = sum(len(PLACEHOLDER.findall(t["content"])) for t in rendered.conversation)
        if n_placeholders != len(rendered.groups) or not groups and n_placeholders:
            return [], 0, 0, "encode"
        roles = tuple(t["role"] for t in rendered.conversation)
        visual = self._visual(tuple(kinds), tuple(tuple(sizes[i] for i in g) for g in groups))
        return pieces, self.frame_tokens(roles), visual, ""

    def stage_rows(self, root: Path, stage: StageSpec, rows: list[SourceRows],
                   cache_dir: Path | None = None) -> tuple[list[SourceRows], list[np.ndarray]]:
        """Every source of `stage` with exact lengths, and its drop reasons per row."""
        exact = [self.source(Path(root), stage, j, r, cache_dir) for j, r in enumerate(rows)]
        return [r for r, _ in exact], [x for _, x in exact]

    def source(self, root: Path, stage: StageSpec, spec_index: int, rows: SourceRows,
               cache_dir: Path | None = None) -> tuple[SourceRows, np.ndarray]:
        """`rows` with exact text and visual tokens, and a drop reason per row ("" for none);
        read from `cache_dir` when computed before for the same inputs."""
        policy = stage.sources[spec_index].video or stage.video
        digest = hashlib.sha1(f"{LENGTHS_VERSION}:{rows.fingerprint}:{self.ident}:{policy}:{stage.prompt_style}:"
                              f"{stage.frames_per_video}".encode()).hexdigest()
        path = None if cache_dir is None else Path(cache_dir) / f"lengths-{digest}.npz"
        if path is not None and path.is_file():
            with np.load(path) as z:
                text, visual, reasons = z["text"], z["visual"], z["reasons"].astype(object)
        else:
            text, visual, reasons = self._compute(root, stage, policy, rows)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
                np.savez(tmp, text=text, visual=visual, reasons=reasons.astype(str))
                os.replace(tmp, path)   # ranks writing at once cannot clash
        return dataclasses.replace(rows, fingerprint=digest, text_tokens=text, visual_tokens=visual), reasons

    def _compute(self, root: Path, stage: StageSpec, policy: str,
                 rows: SourceRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = {k: i for i, k in enumerate(rows.keys)}
        text = np.zeros(len(rows), dtype=np.int64)
        visual = np.zeros(len(rows), dtype=np.int64)
        reasons = np.full(len(rows), "", dtype=object)
        owners, pieces = [], []
        for dataset, split in rows.parts:
            for stored in DatasetReader(root, dataset, split):
                i = index.get(stored.key)
                if i is None:
                    continue
                got, text[i], visual[i], reasons[i] = self.sample(stored.sample, stage, policy)
                owners += [i] * len(got)
                pieces += got
                if len(pieces) >= BATCH:   # bounded memory: the text is tokenized a batch at a time
                    self._add_text(text, owners, pieces)
                    owners, pieces = [], []
        self._add_text(text, owners, pieces)
        return text, visual, reasons

    def _add_text(self, text: np.ndarray, owners: list[int], pieces: list[str]) -> None:
        if pieces:
            counts = [len(ids) for ids in self.tokenizer(pieces, add_special_tokens=False)["input_ids"]]
            np.add.at(text, np.asarray(owners), np.asarray(counts, dtype=np.int64))
