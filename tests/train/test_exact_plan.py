"""The trainer plans on the model's exact lengths: samples too long through their visual
tokens (many views on a CLIP-336-shaped LLaVA-NeXT, where the manifest estimate says they
fit) are dropped before training and counted with their reason, so no batch exceeds
`max_seq_len` and the encode-time guard never fires. A skipped window keeps the learning
rate on the planned schedule and the skipped samples survive a resume. `python -m train
--model tiny-next` completes on video sources (frames, or counted drops)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from curriculum_shards import write_source
from synthetic_shards import jpeg, record, write_split
from transformers import (
    LlamaConfig,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessorPil,
    SiglipVisionConfig,
)

from curricula.lengths import ExactLengths
from curricula.loader import load_sample
from curricula.sampler import plan_stage
from curricula.sources import resolve
from curricula.spec import load_curriculum
from dataengine.reader import DatasetReader
from train.cli import main
from train.config import TrainConfig
from train.optim import warmup_cosine
from train.trainer import Trainer
from train.validation import read_metrics
from vlm.chat import detect
from vlm.encode import Encoder, PlaceholderError
from vlm.model import Bundle
from vlm.tiny import tiny_tokenizer
from vlm.vision import MediaDecoder

# DeepSpeed 0.19 calls torch.distributed collectives that torch 2.13 marks deprecated
pytestmark = pytest.mark.filterwarnings("ignore:`torch.distributed.:FutureWarning")

CROP = 336   # LLaVA-NeXT's CLIP-336 crop and pinpoints: 576 tokens a crop, ~1,500 a view
PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
CAMERAS = ["front", "front_left", "front_right", "back", "back_left", "back_right"]
MAX_LEN = 2400


def _next336(out: Path) -> Path:
    """A LLaVA-NeXT with real crop geometry and toy widths (random weights, saved as HF)."""
    tokenizer = tiny_tokenizer()
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                                image_size=CROP, patch_size=14, vision_use_head=False)
    text = LlamaConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                       num_hidden_layers=2, vocab_size=len(tokenizer), max_position_embeddings=16384,
                       tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                       eos_token_id=tokenizer.eos_token_id)
    config = LlavaNextConfig(vision_config=vision, text_config=text, image_token_id=tokenizer.image_token_id,
                             image_grid_pinpoints=PINPOINTS, vision_feature_select_strategy="full",
                             vision_feature_layer=-1, tie_word_embeddings=False)
    processor = LlavaNextImageProcessorPil(size={"shortest_edge": CROP}, crop_size={"height": CROP, "width": CROP},
                                           image_grid_pinpoints=PINPOINTS)
    Bundle(LlavaNextForConditionalGeneration(config), tokenizer, processor, detect(tokenizer)).save(out)
    return out


def _views_source(root: Path, n: int) -> None:
    """n samples of 1, 1, 2, 3, 1, 1, ... cameras (a lone image, or multi-view) and one short question."""
    items = []
    for i in range(n):
        k = (1, 1, 2, 3)[i % 4]
        items.append(record("views", "train", f"v{i:03d}", f"views:scene{i}", f"views:v{i:03d}",
                            [jpeg(100 * i + c, (64, 36)) for c in range(k)],
                            layout="multi_view" if k > 1 else "single_image", cameras=CAMERAS[:k],
                            turns=[f"What is ahead {i}?", f"A car {i}."]))
    write_split(root, "views", "train", items)


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def _stage(name: str, sources: list[dict], samples: int, **kw) -> dict:
    return {"name": name, "sources": sources, "budget": {"samples": samples}, "train": ["projector"],
            "lr": {"projector": 1.0e-3}, "warmup_ratio": 0.0, "batch_size": 2, **kw}


@pytest.fixture(scope="module")
def visual_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("visual")
    model = _next336(tmp / "model")
    root = tmp / "shards"
    _views_source(root, 12)
    write_source(root, "alpha", 6, long_every=3)   # two samples long through their text
    curriculum = _write(tmp / "c.yaml", {"name": "visual", "seed": 3, "stages": [_stage(
        "tune", [{"pattern": "views/train", "weight": 1.0}, {"pattern": "alpha/train", "weight": 1.0}], 4,
        max_seq_len=MAX_LEN, max_images=8)]})
    seen = []
    trainer = Trainer(TrainConfig(curriculum=str(curriculum), model=str(model), out=tmp / "run", shards=root,
                                  num_workers=0, progress=False, save_every=0),
                      on_step=lambda t, r: seen.append(r))
    trainer.train()
    return model, root, curriculum, tmp / "run", seen


def _encoded_lengths(model: Path, root: Path, curriculum: Path) -> dict[str, int]:
    """Every sample's length as the model's encoder counts it (no limit): the oracle."""
    from vlm.model import load

    bundle = load(model)
    stage = load_curriculum(curriculum).stages[0]
    encoder, decoder = bundle.encoder(10 ** 6), MediaDecoder.for_spec(bundle.spec)
    out = {}
    for rows in resolve(stage, root):
        (dataset, split), = rows.parts
        reader = DatasetReader(root, dataset, split)
        for key in rows.keys:
            sample = load_sample(reader.get(key), stage, rows.pattern, (CROP, CROP), 0, 0, decoder)
            out[key] = len(encoder.encode(sample).input_ids)
    return out


def test_samples_long_through_their_views_are_dropped_before_training(visual_run):
    model, root, curriculum, run, seen = visual_run
    lengths = _encoded_lengths(model, root, curriculum)
    stage = load_curriculum(curriculum).stages[0]
    views, alpha = resolve(stage, root)
    exact, _ = ExactLengths.from_model(model).stage_rows(root, stage, [views, alpha])
    over = {k for k, n in lengths.items() if n > MAX_LEN}
    visual_long = {k for k, t in zip(views.keys, exact[0].text_tokens) if lengths[k] > MAX_LEN and t < MAX_LEN / 4}
    assert len(visual_long) == 6 and over & set(views.keys) == visual_long   # the 2- and 3-view samples
    estimate = dict(zip(views.keys, views.tokens))
    assert all(estimate[k] <= MAX_LEN for k in visual_long)  # ... where the manifest estimate says they fit
    assert len(over & set(alpha.keys)) == 2                  # and two long through their text

    state = json.loads((run / "stages/00-tune/trainer_state.json").read_text())
    assert state["dropped"]["views/train"]["max_seq_len"] == 6
    assert state["dropped"]["alpha/train"]["max_seq_len"] == 2
    assert state["skipped"] == []                            # the plan did it: the encoder guard never fired
    assert seen and max(n for r in seen for n in r.lengths) <= MAX_LEN
    trained = {k for r in seen for k in r.keys}
    assert not trained & over
    assert any(k.startswith("views") for k in trained)      # the lone images that fit did train
    line, = [m for m in read_metrics(run / "metrics.jsonl") if "plan/dropped" in m]
    assert line["plan/dropped"] == state["dropped"] and line["global_step"] == 1


def _poisoned_run(tmp: Path, out: Path, poisoned: set[str], monkeypatch, kill_at: int | None = None) -> Trainer:
    encode = Encoder.encode

    def failing(self, sample):
        if sample.key in poisoned:
            raise PlaceholderError(f"sample {sample.key}: poisoned by the test")
        return encode(self, sample)

    class Killed(Exception):
        pass

    def on_step(trainer, record):
        if record.step == kill_at:
            raise Killed

    monkeypatch.setattr(Encoder, "encode", failing)
    trainer = Trainer(TrainConfig(curriculum=str(tmp / "c.yaml"), model="tiny", out=out, shards=tmp / "shards",
                                  num_workers=0, progress=False, save_every=2), on_step=on_step)
    if kill_at is None:
        trainer.train()
    else:
        with pytest.raises(Killed):
            trainer.train()
    return trainer


def test_a_skipped_window_keeps_the_schedule_and_survives_a_resume(tmp_path, monkeypatch):
    """Steps 2 and 5 of 8 have only a sample that cannot encode: no optimizer step, but the
    learning rate of every later step is the schedule's at its planned step; killed at step 7
    (checkpoint at 6) and resumed, the run equals the uninterrupted one, skipped list included."""
    write_source(tmp_path / "shards", "alpha", 12)
    _write(tmp_path / "c.yaml", {"name": "skips", "seed": 11, "stages": [
        dict(_stage("tune", [{"pattern": "alpha/train", "weight": 1.0}], 8), batch_size=1, grad_accum=1)]})
    stage = load_curriculum(tmp_path / "c.yaml").stages[0]
    rows, = resolve(stage, tmp_path / "shards")
    order = rows.keys[plan_stage(stage, [rows], 11, None).row]
    poisoned = {order[1], order[4]}

    whole = _poisoned_run(tmp_path, tmp_path / "whole", poisoned, monkeypatch)
    assert [r.step for r in whole.history] == [1, 3, 4, 6, 7, 8]
    factor = warmup_cosine(8, 0.0)
    assert [r.lrs["projector"] for r in whole.history] == \
        pytest.approx([1.0e-3 * factor(r.global_step - 1) for r in whole.history])
    killed = _poisoned_run(tmp_path, tmp_path / "resumed", poisoned, monkeypatch, kill_at=7)
    resumed = _poisoned_run(tmp_path, tmp_path / "resumed", poisoned, monkeypatch)
    assert [r.step for r in resumed.history] == [7, 8]
    assert killed.history[:-1] + resumed.history == whole.history

    def skipped(out):
        return json.loads((out / "stages/00-tune/trainer_state.json").read_text())["skipped"]

    assert [s["key"] for s in skipped(tmp_path / "whole")] == [order[1], order[4]]
    assert skipped(tmp_path / "resumed") == skipped(tmp_path / "whole")
    assert np.array_equal(*(np.frombuffer((o / "stages/00-tune/model.safetensors").read_bytes(), np.uint8)
                            for o in (tmp_path / "whole", tmp_path / "resumed")))


def test_python_m_train_tiny_next_completes_on_video_sources(tmp_path, capsys):
    """LLaVA-NeXT has no video input: one video source trains as multi-image frames, the
    other (`video: drop`) is dropped and counted; nothing is skipped at encode time."""
    root = tmp_path / "shards"
    write_source(root, "gamma", 6, layout="video")
    write_source(root, "delta", 4, layout="video")
    curriculum = _write(tmp_path / "c.yaml", {"name": "next-video", "seed": 5, "stages": [_stage(
        "tune", [{"pattern": "gamma/train", "weight": 1.0}, {"pattern": "delta/train", "weight": 1.0,
                                                              "video": "drop"}], 4,
        frames_per_video=3, max_images=12)]})
    out = tmp_path / "run"
    assert main(["--curriculum", str(curriculum), "--model", "tiny-next", "--shards", str(root), "--out", str(out),
                 "--save-every", "0", "--no-progress", "--num-workers", "0"]) == 0
    assert "train: done" in capsys.readouterr().out
    state = json.loads((out / "stages/00-tune/trainer_state.json").read_text())
    assert state["dropped"]["delta/train"]["video"] == 4 and state["dropped"]["gamma/train"]["video"] == 0
    assert state["skipped"] == [] and state["global_step"] == 2
