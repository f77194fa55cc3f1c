"""The curriculum training loop: stage after stage, each from the previous stage's saved
model, with resume checkpoints in between.

Every stage is planned on the model's exact lengths (curricula.lengths, the same code as
`curricula plan --model`): samples over `max_seq_len` or that cannot encode are dropped
before training and counted per source with their reason (the log, metrics.jsonl, the
stage's trainer_state.json); the encoder's own length check stays as a last guard.

A stage: load the start model (the base model, or the previous stage's HF output), add
LoRA if the stage trains it, freeze all but the stage's parts, build AdamW with one group
per part at the stage's learning rates and a warmup-cosine schedule over the stage's
steps, wrap it all in a DeepSpeed engine, then train on the curriculum loader's batches.
Every `save_every` optimizer steps a resume checkpoint is written; at the stage's end the
merged HF model is saved and marked done.

Resume: re-running the same command skips finished stages, and the stage in progress
restores its newest checkpoint (trainable weights, optimizer, scheduler, per-rank RNG,
the loader's position, the samples skipped so far), so it serves exactly the batches an
uninterrupted run would.
"""
from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from curricula.lengths import ExactLengths
from curricula.loader import CurriculumLoader
from curricula.spec import Curriculum, StageSpec, load_curriculum
from dataengine.errors import UsageError
from train import checkpoint as ckpt
from train import dist
from train.card import model_card
from train.config import (
    TrainConfig,
    load_deepspeed,
    model_dtype,
    offloads_optimizer,
    optimizer_defaults,
    resolve_deepspeed,
    zero_stage,
)
from train.metrics import FlopModel, Reporter, peak_flops
from train.optim import build_optimizer, build_schedule, param_groups, part_lrs
from train.parts import add_lora, merge_lora, set_trainable
from train.step import forward_loss, label_tokens
from train.validation import METRICS, append_metrics, purge_metrics, validation_loss, validation_sets
from vlm.encode import PlaceholderError, collate
from vlm.model import Bundle, build_tiny, is_tiny, load
from vlm.vision import MediaDecoder, VisionSpec

log = logging.getLogger(__name__)


@dataclass
class StepRecord:
    """What one step did on this rank (kept in `Trainer.history`, given to `on_step`)."""

    stage: int
    step: int                 # micro-batches done in the stage, this one included
    global_step: int          # optimizer steps done in the run
    keys: list[str]
    loss: float               # this rank's batch
    lrs: dict[str, float]     # per part, as applied in this step
    training: bool = True     # the model was in train mode (dropout, gradient checkpointing)
    lengths: tuple[int, ...] = ()  # tokens per sequence of the batch


@dataclass
class StageRun:
    """The live state of the stage being trained."""

    index: int
    spec: StageSpec
    bundle: Bundle
    engine: object
    total: int                # micro-batches in the stage
    step: int = 0
    global_step: int = 0
    flops: FlopModel | None = None
    skipped: list[dict] = dataclasses.field(default_factory=list)  # samples this rank could not train, why
    dropped: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)  # by the plan: source -> reason -> n
    card: str = ""            # the model card written beside the stage's HF model


class Trainer:
    def __init__(self, config: TrainConfig, on_step: Callable[["Trainer", StepRecord], None] | None = None):
        self.config = config
        self.curriculum: Curriculum = load_curriculum(config.curriculum)
        if not Path(config.shards).is_dir():
            raise UsageError(f"--shards {config.shards}: not a directory (make demo writes demo-out/shards)")
        self.raw_ds = load_deepspeed(config.deepspeed_config)
        self._check_stages()
        self.dist = dist.setup()
        self.run_dir = ckpt.RunDir(Path(config.out))
        self.on_step = on_step
        self.history: list[StepRecord] = []
        self.dtype = model_dtype(self.raw_ds)
        self._hf_ds = None
        self.current: StageRun | None = None   # the stage being trained (for on_step hooks)

    def _check_stages(self) -> None:
        for i, stage in enumerate(self.curriculum.stages):
            if "lora" in stage.train and "llm" in stage.train:
                raise UsageError(f"stage {i} ({stage.name}): train either 'lora' or 'llm', not both")
            if "lora" in stage.train and zero_stage(self.raw_ds) == 3:
                raise UsageError(f"stage {i} ({stage.name}): LoRA stages need ZeRO stage 0-2 "
                                 f"(merging adapters needs whole weights); use zero2.json")

    # ------------------------------------------------------------------ the run

    def train(self) -> None:
        """Run every stage not yet done; resume the one in progress."""
        base = self._prepare()
        loader = CurriculumLoader(self.curriculum, self.config.shards, rank=self.dist.rank,
                                  world_size=self.dist.world_size, num_workers=self.config.num_workers,
                                  decoder=self._decoder(base), cache_dir=self.run_dir.root / "plans",
                                  lengths=ExactLengths.from_model(base, self.config.chat_format))
        latest = ckpt.latest_checkpoint(self.run_dir)
        first_step = self._resume_step(latest) + 1
        reporter = Reporter(self.run_dir.tensorboard, self.dist.is_main, self.config.progress, first_step)
        self.metrics_path = self.run_dir.root / METRICS
        if self.dist.is_main:
            purge_metrics(self.metrics_path, first_step)
        try:
            for i, stage in enumerate(self.curriculum.stages):
                if self.run_dir.stage_done(i, stage.name):
                    continue
                resume = latest if latest and latest[1]["stage"] == i else None
                self._run_stage(i, base, loader, reporter, resume)
        finally:
            reporter.close()
            self._release_zero3()

    def _prepare(self) -> Path:
        """Check the run directory holds this run; write the tiny base model once."""
        if not is_tiny(self.config.model) and not (Path(self.config.model) / "config.json").is_file():
            raise UsageError(f"--model {self.config.model}: not a model directory (no config.json), "
                             "nor 'tiny'/'tiny-next'")
        identity = {"curriculum": self.curriculum.name, "curriculum_sha1": _curriculum_sha1(self.curriculum),
                    "model": str(self.config.model), "world_size": self.dist.world_size,
                    "zero_stage": zero_stage(self.raw_ds)}
        if self.dist.is_main:
            ckpt.check_run(self.run_dir, identity)
            if is_tiny(self.config.model) and not (self.run_dir.base / "config.json").is_file():
                build_tiny(self.config.model, self.curriculum.seed).save(self.run_dir.base)
        dist.barrier()
        if not (self.run_dir.root / "run.json").is_file():
            raise UsageError(f"{self.run_dir.root}: run.json missing (is --out on storage every node sees?)")
        return self.run_dir.base if is_tiny(self.config.model) else Path(self.config.model)

    def _resume_step(self, latest: tuple[str, dict] | None) -> int:
        """Global steps already done: the in-progress stage's checkpoint, else the last done stage."""
        done = [i for i, s in enumerate(self.curriculum.stages) if self.run_dir.stage_done(i, s.name)]
        step = ckpt.load_state(self._stage_dir(done[-1]))["global_step"] if done else 0
        if latest and latest[1]["stage"] not in done:
            step = max(step, latest[1]["global_step"])
        return step

    @staticmethod
    def _decoder(base: Path) -> MediaDecoder:
        """Images at native resolution for the model's own processor (as evaluation decodes them)."""
        from transformers import AutoConfig

        return MediaDecoder.for_spec(VisionSpec.from_config(AutoConfig.from_pretrained(base, local_files_only=True)))

    # ------------------------------------------------------------------ one stage

    def _run_stage(self, index: int, base: Path, loader: CurriculumLoader, reporter: Reporter,
                   resume: tuple[str, dict] | None) -> None:
        stage = self.curriculum.stages[index]
        ckpt.seed_everything(self.curriculum.seed * 1000 + index * 100 + self.dist.rank)
        run = self._setup_stage(index, base if index == 0 else self._stage_dir(index - 1), loader)
        # again after loading: ZeRO-3's partitioned init draws random numbers ZeRO-2's does not,
        # and dropout in train mode must see the same stream under either
        ckpt.seed_everything(self.curriculum.seed * 1000 + index * 100 + 50 + self.dist.rank)
        self.current = run
        loader.load_state_dict({"stage": index, "consumed": 0})
        if resume is not None:
            self._restore(run, loader, *resume)
        self._report_drops(run, loader.plan(index), fresh=resume is None)
        reporter.start_stage(f"stage {index + 1}/{len(self.curriculum.stages)} {stage.name}", run.total, run.step)
        encoder = run.bundle.encoder(stage.max_seq_len, stage.frames_per_video)
        accum = run.engine.gradient_accumulation_steps()
        val_sets = validation_sets(stage, self.config.shards, loader.image_size, loader.decoder) if stage.val else {}
        for window in _windows(loader.stage_batches(index), accum, run.step):
            before = len(run.skipped)
            encoded = [self._encode(run, encoder, samples) for samples in window]
            normalizer, trains = self._normalizer(encoded, accum, len(run.skipped) - before)
            if not trains:   # no rank has a label token: every rank skips the optimizer step together
                self._skip_window(run, len(window), accum)
                continue
            for micro in encoded:
                if run.step + 1 == run.total and (run.step + 1) % accum:
                    run.engine.set_gradient_accumulation_boundary(True)  # apply the stage's last partial batch
                record = self._train_step(run, encoder, micro, normalizer, loader, reporter)
                if val_sets and stage.val_every and run.step % accum == 0 and run.step < run.total \
                        and (run.step // accum) % stage.val_every == 0:
                    self._validate(run, encoder, val_sets, reporter)
                if self._checkpoint_due(run, accum):
                    self._save_checkpoint(run, loader)
                if self.on_step is not None:
                    self.on_step(self, record)
        validation = self._validate(run, encoder, val_sets, reporter) if val_sets else {}
        run.card = model_card(self.curriculum, index, str(self.config.model), loader.plan(index),
                              Path(self.config.shards), global_step=run.global_step, validation=validation)
        self._finish_stage(run, encoder)
        reporter.end_stage()

    def _stage_dir(self, index: int) -> Path:
        return self.run_dir.stage(index, self.curriculum.stages[index].name)

    def _setup_stage(self, index: int, start: Path, loader: CurriculumLoader) -> StageRun:
        import deepspeed

        stage = self.curriculum.stages[index]
        if self.dist.is_main:   # exact lengths and the plan once, cached for the other ranks
            loader.plan(index)
        dist.barrier()
        total = loader.num_steps(index)
        if total == 0:
            raise UsageError(f"stage {index} ({stage.name}) has no batches; see `python -m curricula plan`")
        hidden = json.loads((Path(start) / "config.json").read_text())["text_config"]["hidden_size"]
        ds_config = resolve_deepspeed(self.raw_ds, micro_batch=stage.batch_size, world_size=self.dist.world_size,
                                      hidden_size=hidden, grad_accum=stage.grad_accum)
        self._zero3_context(ds_config)
        bundle = self._load(start, stage)
        groups = param_groups(bundle.model, stage.lr, stage.weight_decay)
        optimizer = build_optimizer(groups, optimizer_defaults(self.raw_ds), offloads_optimizer(ds_config))
        accum = ds_config["gradient_accumulation_steps"]
        schedule = build_schedule(optimizer, -(-total // accum), stage.warmup_ratio)
        engine, _, _, _ = deepspeed.initialize(model=bundle.model, optimizer=optimizer, lr_scheduler=schedule,
                                               config=ds_config)
        engine.train()   # from_pretrained returns eval(): no dropout, and HF checkpointing only fires in train()
        previous = ckpt.load_state(self._stage_dir(index - 1)) if index else {}
        return StageRun(index, stage, bundle, engine, total, global_step=previous.get("global_step", 0),
                        flops=FlopModel.from_model(engine.module, stage.train))

    def _load(self, start: Path, stage: StageSpec) -> Bundle:
        bundle = load(start, dtype=self.dtype, attn_implementation=self._attn(), chat_format=self.config.chat_format)
        if self.config.gradient_checkpointing:
            bundle.model.activation_checkpointing_enable({"use_reentrant": False})
        if "lora" in stage.train:
            bundle.model = add_lora(bundle.model, self.config.lora_rank, self.config.lora_alpha,
                                    self.config.lora_dropout)
        set_trainable(bundle.model, stage.train)
        return bundle

    def _attn(self) -> str:
        choice = self.config.attn_implementation
        if choice != "auto":
            return choice
        import importlib.util

        return "flash_attention_2" if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") \
            else "sdpa"

    def _zero3_context(self, ds_config: dict) -> None:
        """Under ZeRO-3, HF's from_pretrained partitions weights as it loads them, while an
        HfDeepSpeedConfig is alive (transformers docs, main_classes/deepspeed)."""
        self._release_zero3()
        if zero_stage(ds_config) == 3:
            from transformers.integrations import HfDeepSpeedConfig

            self._hf_ds = HfDeepSpeedConfig(ds_config)

    def _release_zero3(self) -> None:
        if self._hf_ds is not None:
            from transformers.integrations.deepspeed import unset_hf_deepspeed_config

            unset_hf_deepspeed_config()
            self._hf_ds = None

    # ------------------------------------------------------------------ steps

    def _encode(self, run: StageRun, encoder, samples) -> list:
        """A micro-batch encoded; a sample that cannot be (over max_seq_len by its exact count,
        placeholders that do not pair up) is skipped, counted and logged with its key, never
        truncated. A rank left with nothing trains a label-free filler, so every rank still
        runs the same step and none waits on another."""
        out = []
        for sample in samples:
            try:
                out.append(encoder.encode(sample))
            except (PlaceholderError, ValueError, OSError) as exc:   # the processor's too: never a dead rank
                run.skipped.append({"key": sample.key, "source": getattr(sample, "source", ""), "reason": str(exc),
                                    "rank": self.dist.rank, "step": run.step})
                log.warning("rank %d skips %s", self.dist.rank, exc)
        return out or [encoder.filler()]

    def _normalizer(self, window: list[list], accum: int, skipped: int = 0) -> tuple[float, bool]:
        """Label tokens of the global batch (all ranks, this accumulation window) x ranks x
        accumulation steps (see train/step.py), and whether the window trains anything: one
        all-reduce, so every rank reaches the same answer and none waits on another. The
        samples skipped on all ranks are logged on rank 0."""
        local = sum(label_tokens(e.labels[None]) for micro in window for e in micro)
        total = dist.all_reduce(torch.tensor([float(local), float(skipped)], dtype=torch.float64,
                                             device=self.dist.device)).tolist()
        if total[1] and self.dist.is_main:
            log.warning("%d samples of this optimizer step skipped on all ranks (keys and reasons in "
                        "trainer_state.json)", int(total[1]))
        return max(total[0], 1.0) / (self.dist.world_size * accum), total[0] > 0

    def _skip_window(self, run: StageRun, micro_steps: int, accum: int) -> None:
        """A window none of whose samples encodes on any rank: no forward, no optimizer step
        (zero gradients would still move AdamW's weights), the loader moves on. The schedule
        still advances: the learning rate follows the planned steps, so a step's rate depends
        on its place in the stage, not on how many windows before it were skipped."""
        run.step += micro_steps
        if run.step % accum == 0 or run.step == run.total:
            run.global_step += 1
            with warnings.catch_warnings():   # torch warns when no optimizer step came first
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
                run.engine.lr_scheduler.step()
        if self.dist.is_main:
            log.warning("stage %s: micro-steps up to %d have no trainable sample on any rank; skipped",
                        run.spec.name, run.step)

    def _train_step(self, run: StageRun, encoder, encoded, normalizer: float, loader,
                    reporter: Reporter) -> StepRecord:
        start = time.perf_counter()
        batch = collate(encoded, encoder, *self._need_visuals(encoded, encoder.spec.has_video))
        lrs = part_lrs(run.engine.optimizer)
        boundary = run.engine.is_gradient_accumulation_boundary()
        result = forward_loss(run.engine, batch, self.dist.device, self.dtype, normalizer)
        run.engine.backward(result.loss)
        run.engine.step()
        run.step += 1
        run.global_step += int(boundary)
        self._report(run, batch, result, lrs, time.perf_counter() - start, loader, reporter)
        mean = float(result.seq_sum.sum() / result.seq_tokens.sum().clamp(min=1))
        record = StepRecord(run.index, run.step, run.global_step, batch.keys, mean, lrs, run.engine.module.training,
                            tuple(int(n) for n in batch.inputs["attention_mask"].sum(1)))
        self.history.append(record)
        return record

    def _need_visuals(self, encoded, has_video: bool) -> tuple[bool, bool]:
        """Whether any rank's batch has images / videos: then every rank runs that path."""
        flags = torch.tensor([max((e.visuals.n_images for e in encoded), default=0) > 0,
                              max((e.visuals.n_videos for e in encoded), default=0) > 0],
                             dtype=torch.int32, device=self.dist.device)
        dist.all_reduce(flags, torch.distributed.ReduceOp.MAX)
        return bool(flags[0]), bool(flags[1]) and has_video

    def _report(self, run: StageRun, batch, result, lrs: dict, seconds: float, loader, reporter: Reporter) -> None:
        """Global figures (one all-reduce), then scalars and the bar on rank 0."""
        sources = [s.label for s in run.spec.sources]   # as batches name them (pattern [task filter])
        flops = run.flops.step_flops([int(n) for n in batch.inputs["attention_mask"].sum(1)], batch.crops,
                                     int(result.seq_tokens.sum()))
        per_source = torch.zeros(len(sources), 2, dtype=torch.float64)
        for src, s, n in zip(batch.sources, result.seq_sum.tolist(), result.seq_tokens.tolist()):
            if src not in sources:   # a filler standing in for skipped samples
                continue
            per_source[sources.index(src)] += torch.tensor([s, n], dtype=torch.float64)
        totals = torch.tensor([batch.tokens, len(batch.keys), flops, seconds], dtype=torch.float64)
        packed = dist.all_reduce(torch.cat([totals, per_source.flatten()]).to(self.dist.device)).cpu()
        tokens, samples, flops, seconds = packed[:4].tolist()
        seconds /= self.dist.world_size
        per_source = packed[4:].view(-1, 2)
        loss = float(per_source[:, 0].sum() / per_source[:, 1].sum().clamp(min=1))
        values = {"train/loss": loss, "perf/tokens_per_s": tokens / seconds, "perf/samples_per_s": samples / seconds}
        values.update({f"loss/{src}": float(s / n) for src, (s, n) in zip(sources, per_source.tolist()) if n})
        values.update({f"lr/{part}": lr for part, lr in lrs.items()})
        peak = peak_flops(self.dist.device)
        if peak:
            values["perf/mfu"] = flops / seconds / (peak * self.dist.world_size)
        mixture = loader.realized_mixture()["sources"]
        values.update({f"mixture/{src}": m["share"] for src, m in mixture.items()})
        if run.step == 1:
            values.update({f"mixture_planned/{src}": m["planned_share"] for src, m in mixture.items()})
        reporter.scalars(run.global_step, values)
        reporter.tick(loss, tokens / seconds)
        if self.dist.is_main:
            append_metrics(self.metrics_path, {"stage": run.index, "stage_name": run.spec.name,
                                               "global_step": run.global_step, "train/loss": loss})

    def _validate(self, run: StageRun, encoder, val_sets: dict, reporter: Reporter) -> dict[str, float]:
        """The validation loss of each split and their mean over splits, logged at
        the current optimizer step to TensorBoard and metrics.jsonl."""
        values: dict[str, float] = {}
        for name, samples in val_sets.items():
            loss = validation_loss(run.engine.module, encoder, samples, self.dist.device, self.dtype,
                                   run.spec.batch_size)
            if loss is not None:
                values[f"val/{name}"] = loss
        if values:
            values["val/loss"] = sum(values.values()) / len(values)
            reporter.scalars(run.global_step, values)
            if self.dist.is_main:
                append_metrics(self.metrics_path, {"stage": run.index, "stage_name": run.spec.name,
                                                   "global_step": run.global_step, **values})
        return values

    def _report_drops(self, run: StageRun, plan, fresh: bool) -> None:
        """What the plan dropped before training, per source and reason: logged on rank 0, and
        one metrics.jsonl line at the stage's first step (`plan/dropped`; written when the
        stage starts, so a resumed stage does not repeat it, and purged with the steps a killed
        run logged)."""
        run.dropped = {sp.pattern: {r: int(n) for r, n in sp.dropped.items()} for sp in plan.sources}
        if not self.dist.is_main:
            return
        for pattern, reasons in run.dropped.items():
            if any(reasons.values()):
                log.warning("stage %s: source %s: %s dropped before training", run.spec.name, pattern,
                            ", ".join(f"{n} for {r}" for r, n in reasons.items() if n))
        if fresh:
            append_metrics(self.metrics_path, {"stage": run.index, "stage_name": run.spec.name,
                                               "global_step": run.global_step + 1, "plan/dropped": run.dropped})

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint_due(self, run: StageRun, accum: int) -> bool:
        every = self.config.save_every
        return bool(every) and run.step % accum == 0 and (run.step // accum) % every == 0 and run.step < run.total

    def _save_checkpoint(self, run: StageRun, loader: CurriculumLoader) -> None:
        """Trainer state and RNG first, then DeepSpeed's files; its `latest` pointer moves last."""
        tag = f"step-{run.global_step}"
        path = self.run_dir.checkpoints / tag
        path.mkdir(parents=True, exist_ok=True)
        torch.save(ckpt.rng_state(), path / f"rng-rank{self.dist.rank}.pt")
        state = self._state(run, loader)   # a collective (every rank's skips): on every rank
        if self.dist.is_main:
            ckpt.write_json(path / ckpt.STATE, state)
        dist.barrier()
        run.engine.save_checkpoint(str(self.run_dir.checkpoints), tag=tag, exclude_frozen_parameters=True)
        if self.dist.is_main:
            ckpt.prune(self.run_dir, self.config.keep_checkpoints)
        dist.barrier()

    def _state(self, run: StageRun, loader: CurriculumLoader) -> dict:
        return {"stage": run.index, "stage_name": run.spec.name, "step": run.step, "total": run.total,
                "global_step": run.global_step, "loader": loader.state_dict(), "skipped": self._all_skipped(run)}

    def _all_skipped(self, run: StageRun) -> list[dict]:
        """Every rank's skipped samples (each entry names its rank), on every rank."""
        if self.dist.world_size == 1:
            return list(run.skipped)
        gathered: list = [None] * self.dist.world_size
        torch.distributed.all_gather_object(gathered, run.skipped)
        return [s for part in gathered for s in part]

    def _restore(self, run: StageRun, loader: CurriculumLoader, tag: str, state: dict) -> None:
        path = self.run_dir.checkpoints / tag
        loaded, _ = run.engine.load_checkpoint(str(self.run_dir.checkpoints), tag=tag, load_module_strict=False)
        if loaded is None:
            raise UsageError(f"{path}: DeepSpeed could not load this checkpoint")
        ckpt.set_rng_state(torch.load(path / f"rng-rank{self.dist.rank}.pt", weights_only=False))
        loader.load_state_dict(state["loader"])
        run.step, run.global_step = state["step"], state["global_step"]
        run.skipped = [s for s in state.get("skipped", []) if s["rank"] == self.dist.rank]

    def _finish_stage(self, run: StageRun, encoder) -> None:
        """Save the stage's HF model (merged, gathered under ZeRO-3); the state file marks it done."""
        state_dict = run.engine._zero3_consolidated_16bit_state_dict() if zero_stage(self.raw_ds) == 3 else None
        out = self._stage_dir(run.index)
        skipped = self._all_skipped(run)   # every rank's skips, not only rank 0's
        if self.dist.is_main:
            tmp = out.with_name(out.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)   # a save a kill interrupted
            bundle = dataclasses.replace(run.bundle, model=merge_lora(run.engine.module))
            bundle.save(tmp, state_dict=state_dict)
            (tmp / "README.md").write_text(run.card)
            ckpt.write_json(tmp / ckpt.STATE, {"stage": run.index, "stage_name": run.spec.name, "step": run.step,
                                               "global_step": run.global_step,
                                               "skipped": skipped, "dropped": run.dropped})
            tmp.rename(out)
        dist.barrier()
        run.engine.destroy()
        run.engine = None
        gc.collect()


def _windows(batches, accum: int, done: int):
    """Micro-batches grouped by optimizer step (the first one completes a window begun before
    a resume at `done` micro-batches; the stage's last may be short)."""
    window: list = []
    size = accum - done % accum
    for samples in batches:
        window.append(samples)
        if len(window) == size:
            yield window
            window, size = [], accum
    if window:
        yield window


def _curriculum_sha1(curriculum: Curriculum) -> str:
    data = dataclasses.asdict(curriculum)
    data.pop("path", None)
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
