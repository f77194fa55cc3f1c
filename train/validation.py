"""Validation loss during training, and the run's `metrics.jsonl`.

A stage names validation splits (`val: [nuscenes/val]` in the curriculum); the first
`val_samples` samples of each (by key order, so every validation sees the same ones) are
rendered as the stage renders its training samples and their label-token mean loss is
computed with dropout off and no gradient. Every rank computes the same figure on the same
samples: under ZeRO-3 every rank must run the same forwards anyway, and no reduction is needed.

`metrics.jsonl` holds one JSON line per logged figure set (`{"stage", "global_step",
"train/loss"}` per step, `{"stage", "global_step", "val/loss", "val/<split>"}` per
validation), so the report can plot train and validation loss per stage without TensorBoard.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from curricula.loader import LoadedSample, load_sample
from curricula.sources import match
from curricula.spec import StageSpec
from dataengine.manifest import dataset_splits
from dataengine.reader import DatasetReader
from train.step import forward_loss
from vlm.encode import PlaceholderError, collate

log = logging.getLogger(__name__)
METRICS = "metrics.jsonl"


def validation_sets(stage: StageSpec, shards: Path, image_size: tuple[int, int],
                    decoder=None) -> dict[str, list[LoadedSample]]:
    """Per validation split ("dataset/split"): its first `val_samples` samples, loaded.
    A pattern that matches nothing is logged and skipped, as a missing training source is."""
    available = dataset_splits(Path(shards))
    out: dict[str, list[LoadedSample]] = {}
    for pattern in stage.val:
        parts = match(pattern, available)
        if not parts:
            log.warning("stage %s: validation split %s not found under %s", stage.name, pattern, shards)
        for dataset, split in parts:
            reader = DatasetReader(Path(shards), dataset, split)
            keys = reader.keys()[:stage.val_samples]
            out[f"{dataset}/{split}"] = [load_sample(reader.get(k), stage, f"{dataset}/{split}", image_size,
                                                     0, 0, decoder) for k in keys]
    return out


@torch.no_grad()
def validation_loss(model, encoder, samples: list, device, dtype, batch_size: int) -> float | None:
    """Label-token mean loss over `samples` (None when none could be encoded); the model's
    train/eval mode is restored afterwards."""
    encoded = []
    for sample in samples:
        try:
            encoded.append(encoder.encode(sample))
        except PlaceholderError as exc:
            log.warning("validation skips %s", exc)
    if not encoded:
        return None
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    try:
        for i in range(0, len(encoded), batch_size):
            chunk = encoded[i:i + batch_size]
            batch = collate(chunk, encoder, any(e.visuals.n_images for e in chunk),
                            any(e.visuals.n_videos for e in chunk) and encoder.spec.has_video)
            result = forward_loss(model, batch, device, dtype)
            total += float(result.seq_sum.sum())
            tokens += int(result.seq_tokens.sum())
    finally:
        model.train(was_training)
    return total / max(tokens, 1)


def append_metrics(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def purge_metrics(path: Path, first_step: int) -> None:
    """Drop lines a killed run logged at or after `first_step`, so a resumed run has no duplicates."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["global_step"] < first_step]
    path.write_text("".join(line + "\n" for line in kept))


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
