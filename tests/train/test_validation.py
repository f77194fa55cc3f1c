"""Validation during training: the stage's `val` splits are scored every `val_every`
optimizer steps and at the stage's end, into TensorBoard and the run's metrics.jsonl, and the
figure is the loss the saved model really has on those samples."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from curricula.spec import SpecError, load_curriculum, parse_curriculum
from train.config import TrainConfig
from train.trainer import Trainer
from train.validation import read_metrics, validation_loss, validation_sets
from vlm.model import load

CURRICULUM = """
name: with-val
seed: 3
stages:
  - name: tune
    sources: [{pattern: nuscenes/train, weight: 1.0}]
    budget: {samples: 12}
    train: [projector, llm]
    lr: {projector: 3.0e-3, llm: 3.0e-3}
    warmup_ratio: 0.0
    batch_size: 2
    val: [nuscenes/val]
    val_every: 2
    val_samples: 4
"""
pytestmark = pytest.mark.filterwarnings("ignore:`torch.distributed.:FutureWarning")


@pytest.fixture(scope="module")
def val_run(nuscenes_shards, tmp_path_factory) -> tuple[Trainer, Path]:
    path = tmp_path_factory.mktemp("cur") / "val.yaml"
    path.write_text(CURRICULUM)
    out = tmp_path_factory.mktemp("run") / "val"
    trainer = Trainer(TrainConfig(curriculum=str(path), model="tiny", out=out, shards=nuscenes_shards,
                                  num_workers=0, progress=False, save_every=0))
    trainer.train()
    return trainer, out


def test_val_keys_are_checked():
    raw = {"name": "x", "seed": 0, "stages": [{"name": "a", "sources": ["nuscenes/train"], "temperature": 1.0,
                                               "budget": {"samples": 2}, "train": ["llm"], "lr": {"llm": 1e-3},
                                               "val": ["not a pattern"]}]}
    with pytest.raises(SpecError, match=r"stages\[0\]\.val\[0\]"):
        parse_curriculum(raw)
    raw["stages"][0]["val"] = "nuscenes/val"
    with pytest.raises(SpecError, match="must be a list"):
        parse_curriculum(raw)


def test_validation_at_the_interval_and_the_stage_end(val_run):
    _, out = val_run
    lines = read_metrics(out / "metrics.jsonl")
    val_steps = [m["global_step"] for m in lines if "val/loss" in m]
    train_steps = [m["global_step"] for m in lines if "train/loss" in m]
    assert train_steps == list(range(1, 7))          # 12 samples, batch 2
    assert val_steps == [2, 4, 6]                    # every 2 steps (not twice at the end)
    assert all("val/nuscenes/val" in m for m in lines if "val/loss" in m)


def test_tensorboard_holds_the_validation_loss(val_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out = val_run
    acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("val/loss")] == [2, 4, 6]


def test_the_end_figure_is_the_saved_models_loss_on_those_samples(val_run, nuscenes_shards):
    """Recomputed from the stage's saved HF model on the first val_samples of nuscenes/val."""
    trainer, out = val_run
    stage = load_curriculum(trainer.config.curriculum).stages[0]
    last = [m for m in read_metrics(out / "metrics.jsonl") if "val/loss" in m][-1]
    bundle = load(out / "stages" / "00-tune")
    sets = validation_sets(stage, nuscenes_shards, (384, 384), trainer._decoder(out / "base"))
    assert [len(v) for v in sets.values()] == [4]
    again = validation_loss(bundle.model, bundle.encoder(stage.max_seq_len, stage.frames_per_video),
                            sets["nuscenes/val"], torch.device("cpu"), torch.float32, 2)
    assert again == pytest.approx(last["val/nuscenes/val"], rel=1e-4)
    first = [m for m in read_metrics(out / "metrics.jsonl") if "val/loss" in m][0]
    assert last["val/loss"] < first["val/loss"]       # training on train moved val the same way
