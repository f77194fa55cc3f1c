"""The DeepSpeed training loop on CPU with the tiny model: per-part learning rates whatever the
JSON says, stage switching (frozen parts stay bit-identical), HF outputs per stage, exact
resume after a kill (projector-only stage included), ZeRO-2 and ZeRO-3, the CLI, and two
processes through torchrun (gloo)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from vlm_helpers import rendered

from dataengine.errors import UsageError
from train import dist
from train.config import TrainConfig, bf16_available, load_deepspeed, optimizer_defaults, resolve_deepspeed
from train.optim import build_optimizer, build_schedule, param_groups, part_lrs
from train.parts import part_of, set_trainable
from train.step import forward_loss
from train.trainer import Trainer
from vlm.encode import collate
from vlm.model import Bundle, build_tiny, load

CURRICULUM = """
name: two-stage
seed: 7
stages:
  - name: align
    sources: [{pattern: nuscenes/train, weight: 1.0}]
    budget: {samples: 8}
    train: [projector]
    lr: {projector: 1.0e-3}
    warmup_ratio: 0.0
    batch_size: 2
  - name: tune
    sources: [{pattern: nuscenes/train, weight: 1.0}]
    budget: {samples: 8}
    train: [projector, llm]
    lr: {projector: 1.0e-4, llm: 2.0e-5}
    warmup_ratio: 0.0
    batch_size: 2
"""
CPU = torch.device("cpu")
# DeepSpeed 0.19 calls torch.distributed collectives that torch 2.13 marks deprecated
pytestmark = pytest.mark.filterwarnings("ignore:`torch.distributed.:FutureWarning")


class Killed(Exception):
    """Stands for a kill: raised from on_step, so nothing after that step is written."""


@pytest.fixture(scope="module")
def curriculum(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cur") / "two_stage.yaml"
    path.write_text(CURRICULUM)
    return path


def config(curriculum, shards, out, **kw) -> TrainConfig:
    kw.setdefault("save_every", 2)
    return TrainConfig(curriculum=str(curriculum), model="tiny", out=out, shards=shards, num_workers=1,
                       progress=False, **kw)


def run(cfg: TrainConfig, kill_at: tuple[int, int] | None = None) -> Trainer:
    def on_step(trainer, record):
        if (record.stage, record.step) == kill_at:
            raise Killed

    trainer = Trainer(cfg, on_step=on_step)
    if kill_at is None:
        trainer.train()
    else:
        with pytest.raises(Killed):
            trainer.train()
    return trainer


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def by_part(a: dict, b: dict) -> dict[str, bool]:
    """Per part: did any tensor change between two checkpoints?"""
    changed: dict[str, bool] = {}
    for name in a:
        part = part_of(name)
        changed[part] = changed.get(part, False) or not torch.equal(a[name], b[name])
    return changed


@pytest.fixture(scope="module")
def zero2_run(curriculum, nuscenes_shards, tmp_path_factory) -> Trainer:
    return run(config(curriculum, nuscenes_shards, tmp_path_factory.mktemp("run") / "z2"))


def test_per_part_learning_rates_survive_a_config_optimizer_block(tmp_path):
    """zero2.json-style JSON with `optimizer: {lr: 0.5}`: each part still gets its own lr,
    and Adam's first step moves each weight by about that lr."""
    dist.setup()
    raw = load_deepspeed("zero2.json")
    raw["optimizer"]["params"].update(lr=0.5, betas=[0.8, 0.99])
    bundle = build_tiny("tiny", 3)
    set_trainable(bundle.model, ("projector", "llm"))
    lrs = {"projector": 1e-3, "llm": 1e-5}
    optimizer = build_optimizer(param_groups(bundle.model, lrs, 0.0), optimizer_defaults(raw), False)
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.99)
    import deepspeed

    cfg = resolve_deepspeed(raw, micro_batch=1, world_size=1, hidden_size=64)
    assert "optimizer" not in cfg and cfg["train_batch_size"] == 1
    engine, *_ = deepspeed.initialize(model=bundle.model, optimizer=optimizer,
                                      lr_scheduler=build_schedule(optimizer, 10, 0.0), config=cfg)
    assert part_lrs(engine.optimizer) == lrs
    before = {n: p.detach().clone() for n, p in bundle.model.named_parameters()}
    enc = bundle.encoder()
    batch = collate([enc.encode(rendered(6))], enc)
    engine.backward(forward_loss(engine, batch, CPU, torch.float32).loss)
    engine.step()
    moved: dict[str, list[float]] = {}
    for n, p in bundle.model.named_parameters():
        delta = (p.detach() - before[n]).abs().flatten()
        moved.setdefault(part_of(n), []).extend(delta[delta > 0].tolist())
    median = {part: float(torch.tensor(v).median()) for part, v in moved.items() if v}
    assert set(median) == {"projector", "llm"}
    assert median["projector"] == pytest.approx(1e-3, rel=0.05) and median["llm"] == pytest.approx(1e-5, rel=0.05)
    engine.destroy()


@pytest.mark.parametrize("ds_config", ["zero2.json", "zero3.json"])
def test_loss_goes_down_on_a_fixed_batch(ds_config):
    import deepspeed

    dist.setup()
    bundle = build_tiny("tiny", 4)
    set_trainable(bundle.model, ("projector", "vision", "llm"))
    raw = load_deepspeed(ds_config)
    groups = param_groups(bundle.model, {"projector": 3e-3, "vision": 3e-3, "llm": 3e-3}, 0.0)
    optimizer = build_optimizer(groups, optimizer_defaults(raw), False)
    cfg = resolve_deepspeed(raw, micro_batch=1, world_size=1, hidden_size=64)
    engine, *_ = deepspeed.initialize(model=bundle.model, optimizer=optimizer, config=cfg)
    enc = bundle.encoder()
    batch = collate([enc.encode(rendered(2))], enc)
    losses = []
    for _ in range(6):
        loss = forward_loss(engine, batch, CPU, torch.float32).loss
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    engine.destroy()
    assert losses[-1] < losses[0] - 0.3, losses


def test_steps_run_in_train_mode_and_checkpointing_recomputes(curriculum, nuscenes_shards, tmp_path):
    """from_pretrained returns a model in eval(): the trainer must switch it to train(), or
    dropout is off and HF's gradient checkpointing never fires. A checkpointed decoder layer
    runs its MLP twice per step (forward, then recomputed in backward)."""
    calls, per_step, dropout_differs = [0], [], []

    def on_step(trainer, record):
        model = trainer.current.engine.module
        assert record.training and model.training
        layer = model.model.language_model.layers[0]
        if not hasattr(layer.mlp, "_counted"):   # wrap forward itself: torch runs no module hooks on recompute
            forward = layer.mlp.forward

            def counted(*args, **kwargs):
                calls[0] += 1
                return forward(*args, **kwargs)

            layer.mlp.forward = layer.mlp._counted = counted
            with torch.no_grad():
                ids = torch.arange(3, 40).unsqueeze(0)
                dropout_differs.append(not torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits))
        else:
            per_step.append(calls[0])
        calls[0] = 0

    Trainer(config(curriculum, nuscenes_shards, tmp_path / "run", save_every=0,
                   gradient_checkpointing=True), on_step=on_step).train()
    assert dropout_differs == [True, True]          # one per stage
    assert per_step and set(per_step) == {2}


def test_stages_train_only_their_parts_and_save_hf_models(zero2_run, curriculum):
    root = zero2_run.run_dir.root
    base, align, tune = weights(root / "base"), weights(root / "stages/00-align"), weights(root / "stages/01-tune")
    assert by_part(base, align) == {"projector": True, "vision": False, "llm": False}
    assert by_part(align, tune) == {"projector": True, "vision": False, "llm": True}
    steps = [(r.stage, r.step, r.global_step) for r in zero2_run.history]
    assert steps == [(0, s, s) for s in range(1, 5)] + [(1, s, 4 + s) for s in range(1, 5)]
    assert zero2_run.history[0].lrs == {"projector": 1e-3}
    assert zero2_run.history[4].lrs == {"projector": 1e-4, "llm": 2e-5}
    bundle = load(root / "stages/01-tune")
    assert bundle.spec.family == "llava_onevision" and bundle.chat.name == "chatml"


def test_tensorboard_has_loss_lr_throughput_and_mixture(zero2_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(zero2_run.run_dir.tensorboard))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "loss/nuscenes/train", "lr/projector", "lr/llm", "perf/tokens_per_s",
            "perf/samples_per_s", "mixture/nuscenes/train", "mixture_planned/nuscenes/train"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 9))
    assert [e.value for e in events.Scalars("mixture/nuscenes/train")] == [1.0] * 8


def test_killed_runs_resume_exactly(zero2_run, curriculum, nuscenes_shards, tmp_path):
    """Killed in the projector-only stage and again in the second: the resumed runs serve
    the same batches in the same order and end with the same weights as the uninterrupted run."""
    cfg = config(curriculum, nuscenes_shards, tmp_path / "killed")
    first = run(cfg, kill_at=(0, 3))           # checkpoint at step 2; step 3 is lost
    second = run(cfg, kill_at=(1, 3))          # resumes stage 0 at step 3, dies in stage 1
    third = run(cfg)                           # resumes stage 1 at step 3
    assert [(r.stage, r.step) for r in second.history] == [(0, 3), (0, 4), (1, 1), (1, 2), (1, 3)]
    assert [(r.stage, r.step) for r in third.history] == [(1, 3), (1, 4)]
    assert first.history[2].keys == second.history[0].keys and second.history[4].keys == third.history[0].keys
    # the same batches, losses and learning rates, step by step
    assert first.history[:2] + second.history[:4] + third.history == zero2_run.history
    for stage in ("stages/00-align", "stages/01-tune"):
        a, b = weights(zero2_run.run_dir.root / stage), weights(tmp_path / "killed" / stage)
        assert all(torch.equal(a[k], b[k]) for k in a), stage
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "killed/tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 9))   # killed steps purged
    assert run(cfg).history == []   # all stages done: nothing to do


def test_zero3_two_stages_and_resume(curriculum, nuscenes_shards, tmp_path, zero2_run):
    cfg = config(curriculum, nuscenes_shards, tmp_path / "z3", deepspeed_config="zero3.json")
    run(cfg, kill_at=(1, 3))
    resumed = run(cfg)
    assert [(r.stage, r.step) for r in resumed.history] == [(1, 3), (1, 4)]
    root = tmp_path / "z3"
    base, align, tune = weights(root / "base"), weights(root / "stages/00-align"), weights(root / "stages/01-tune")
    assert by_part(base, align) == {"projector": True, "vision": False, "llm": False}
    assert by_part(align, tune) == {"projector": True, "vision": False, "llm": True}
    z2 = weights(zero2_run.run_dir.root / "stages/01-tune")
    assert all(torch.allclose(tune[k], z2[k], atol=1e-5) for k in tune)   # same math as ZeRO-2
    assert [r.keys for r in resumed.history] == [r.keys for r in zero2_run.history[-2:]]


LORA = """
name: lora
seed: 5
stages:
  - name: adapt
    sources: [{pattern: nuscenes/train, weight: 1.0}]
    budget: {samples: 4}
    train: [projector, lora]
    lr: {projector: 1.0e-3, lora: 1.0e-3}
    batch_size: 1
"""


def test_lora_stage_merges_into_a_plain_hf_model_and_resumes(nuscenes_shards, tmp_path):
    (tmp_path / "lora.yaml").write_text(LORA)
    straight = run(config(tmp_path / "lora.yaml", nuscenes_shards, tmp_path / "a", lora_rank=4))
    killed = config(tmp_path / "lora.yaml", nuscenes_shards, tmp_path / "b", lora_rank=4)
    run(killed, kill_at=(0, 3))
    resumed = run(killed)
    assert [(r.step, r.keys) for r in resumed.history] == [(r.step, r.keys) for r in straight.history[2:]]
    base, a, b = weights(tmp_path / "a/base"), weights(tmp_path / "a/stages/00-adapt"), \
        weights(tmp_path / "b/stages/00-adapt")
    assert set(a) == set(base)   # adapters merged away: the same tensors as the base model
    assert by_part(base, a) == {"projector": True, "vision": False, "llm": True}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.history[0].lrs == {"projector": 1e-3, "lora": 1e-3}


def test_a_run_directory_refuses_another_run(zero2_run, nuscenes_shards, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(CURRICULUM.replace("seed: 7", "seed: 8"))
    with pytest.raises(UsageError, match="holds a different run .curriculum_sha1"):
        Trainer(config(other, nuscenes_shards, zero2_run.run_dir.root)).train()


def test_deepspeed_json_is_made_concrete():
    raw = load_deepspeed("zero3_offload.json")
    cfg = resolve_deepspeed(raw, micro_batch=2, world_size=4, hidden_size=10)
    zero = cfg["zero_optimization"]
    assert (cfg["train_batch_size"], cfg["gradient_accumulation_steps"]) == (8, 1)
    assert (zero["reduce_bucket_size"], zero["stage3_param_persistence_threshold"]) == (100, 100)
    assert cfg["bf16"]["enabled"] is bf16_available()
    assert cfg["zero_force_ds_cpu_optimizer"] is False   # CPU-only: torch's AdamW
    with pytest.raises(UsageError, match="cannot resolve .auto. for zero_optimization.sub_group_size"):
        resolve_deepspeed({"zero_optimization": {"sub_group_size": "auto"}}, micro_batch=1, world_size=1,
                          hidden_size=8)
    with pytest.raises(UsageError, match="no such DeepSpeed config"):
        load_deepspeed("zero9.json")


def test_cli_usage_errors_exit_2(curriculum, tmp_path, capsys):
    from train.cli import main

    assert main(["--curriculum", str(tmp_path / "nope.yaml"), "--model", "tiny", "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--curriculum", str(curriculum), "--model", "tiny", "--out", str(tmp_path),
                 "--shards", str(tmp_path / "missing")]) == 2
    assert "--shards" in capsys.readouterr().err


MIXED = """
name: mixed
seed: 3
stages:
  - name: align
    sources: [{pattern: nuscenes/train, weight: 1.0}]
    budget: {samples: 4}
    train: [projector]
    lr: {projector: 1.0e-3}
    batch_size: 1
  - name: tune
    sources: [{pattern: nuscenes/train, weight: 2.0}, {pattern: gamma/train, weight: 1.0}]
    budget: {samples: 12}
    train: [projector, vision, llm]
    lr: {projector: 1.0e-4, vision: 1.0e-5, llm: 2.0e-5}
    frames_per_video: 3
    max_images: 12
    batch_size: 2
"""


@pytest.mark.slow
def test_two_processes_through_torchrun_zero3_mixed_modalities(nuscenes_shards, tmp_path):
    """The same command under torchrun: two CPU ranks (gloo), ZeRO-3. In stage 2 the draws
    go nuscenes, nuscenes, video, ... so at step 1 rank 0 holds two image samples and rank 1
    a video and an image sample: without the per-step modality sync rank 0 would skip the
    video path, its gathers would fall out of step with rank 1's and the run would hang."""
    from curriculum_shards import write_source

    root = tmp_path / "shards"
    root.mkdir()
    (root / "nuscenes").symlink_to(nuscenes_shards / "nuscenes")
    shutil.copytree(nuscenes_shards / "media", root / "media")  # the store nuscenes references; gamma adds to the copy
    write_source(root, "gamma", 6, layout="video")
    (tmp_path / "mixed.yaml").write_text(MIXED)
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[2]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "train",
           "--curriculum", str(tmp_path / "mixed.yaml"), "--model", "tiny", "--out", str(out), "--shards", str(root),
           "--deepspeed-config", "zero3.json", "--num-workers", "0", "--no-progress", "--save-every", "0"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    assert json.loads((out / "stages/01-tune/trainer_state.json").read_text())["global_step"] == 2 + 3
    base, align, tune = weights(out / "base"), weights(out / "stages/00-align"), weights(out / "stages/01-tune")
    assert by_part(base, align) == {"projector": True, "vision": False, "llm": False}
    assert by_part(align, tune) == {"projector": True, "vision": True, "llm": True}


VIDEO_NEXT = """
name: next-video
seed: 5
stages:
  - name: tune
    sources: [{pattern: beta/train, weight: 1.0}, {pattern: gamma/train, weight: 1.0}]
    budget: {samples: 8}
    train: [projector, llm]
    lr: {projector: 1.0e-4, llm: 2.0e-5}
    frames_per_video: 3
    max_images: 12
    max_seq_len: MAXLEN
    batch_size: 2
"""


def test_tiny_next_trains_a_video_source_as_frames_and_never_exceeds_max_seq_len(tmp_path, monkeypatch):
    """LLaVA-NeXT has no video input: video samples train as multi-image frames. The plan's
    estimates pass every sample; the model's exact limit (330 here, as a real model's anyres
    counts exceed the estimate) leaves some too long through their 84 visual tokens: those
    are skipped (counted with key and reason), no batch is longer, nothing is cut, and a
    rank left with no sample trains a label-free filler."""
    from curriculum_shards import write_source

    encoder = Bundle.encoder
    monkeypatch.setattr(Bundle, "encoder", lambda self, max_seq_len=8192, fpv=None: encoder(self, 330, fpv))

    root = tmp_path / "shards"
    write_source(root, "beta", 6, layout="multi_view")
    write_source(root, "gamma", 6, layout="video")
    path = tmp_path / "next.yaml"
    path.write_text(VIDEO_NEXT.replace("MAXLEN", "8192"))
    seen = []
    trainer = Trainer(TrainConfig(curriculum=str(path), model="tiny-next", out=tmp_path / "run", shards=root,
                                  num_workers=0, progress=False, save_every=0),
                      on_step=lambda t, record: seen.append(record))
    trainer.train()
    assert seen and max(n for r in seen for n in r.lengths) <= 330
    state = json.loads((tmp_path / "run/stages/00-tune/trainer_state.json").read_text())
    assert state["skipped"] and all("exceed max_seq_len 330" in s["reason"] for s in state["skipped"])
    trained = {k for r in seen for k in r.keys}
    assert any(k.startswith("gamma") for k in trained)            # some videos fit, as frames
    assert not trained & {s["key"] for s in state["skipped"]}
