"""The training data loader: a curriculum's stages as batches of decoded, prompt-rendered samples.

Per stage, the sampler's plan (cached on disk) fixes the global order. Given a model's
`lengths` (curricula.lengths.ExactLengths, as the trainer gives it), each stage is planned
on the model's exact lengths, exactly as `curricula plan --model` plans it: over-length and
unencodable samples are dropped, and counted per source, before the first batch. Global step s is the
block of G = batch_size x world_size draws starting at s x G; rank r takes the r-th
batch_size of it. Batches are numbered, and a torch DataLoader over the batch numbers gives
whole batches to its workers in turn and returns them in number order, so the order does
not depend on the worker count. The state is the stage index plus the global draws
consumed: a fresh loader given a state continues with exactly the next batch.

Samples are read by key through the manifests' byte ranges (one seek and one read per
sample), images are decoded by the trainer's `decoder` (the model's own resolution path,
vlm.vision.MediaDecoder) or, without one, at a fixed reduced size (dataengine.decode), videos keep the stage's
`frames_per_video` (dataengine.frames), and the first user turn is rendered with the stage's
prompt style.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from curricula.sampler import PLAN_CACHE, StagePlan, batch_positions, num_steps, plan_stage
from curricula.sources import SourceRows, resolve
from curricula.spec import Curriculum, StageSpec
from dataengine.decode import decode_resized
from dataengine.errors import UsageError
from dataengine.frames import kept_media
from dataengine.prompts import render
from dataengine.reader import DatasetReader, StoredSample

if TYPE_CHECKING:
    from curricula.lengths import ExactLengths


@dataclass
class LoadedSample:
    key: str
    dataset: str
    split: str
    source: str                  # the SourceSpec.pattern it was drawn from
    conversation: list[dict]     # rendered: "<image>" placeholders placed in the first user turn
    groups: list[list[int]]      # per placeholder: indices into `images`
    kinds: list[str]             # per placeholder: "image" | "video"
    images: list                 # PIL RGB images, media order (from `decoder`, else resized to image_size)
    text_tokens: int
    visual_tokens: int


def load_sample(stored: StoredSample, stage: StageSpec, source: str, image_size: tuple[int, int],
                text_tokens: int, visual_tokens: int, decoder: Callable | None = None) -> LoadedSample:
    """Decode and render one stored sample for `stage`; `decoder(payloads, groups, kinds)`
    decodes the media when given."""
    sample = stored.sample
    kept = kept_media(sample, stage.frames_per_video)
    reduced = dict(sample, media=[sample["media"][i] for i in kept])
    rendered = render(reduced, stage.prompt_style)
    payloads = [stored.media[m["member"]] for m in reduced["media"]]
    images = (decoder(payloads, rendered.groups, rendered.kinds) if decoder is not None
              else [decode_resized(data, image_size) for data in payloads])
    return LoadedSample(stored.key, sample["dataset"], sample["split"], source, rendered.conversation,
                        rendered.groups, rendered.kinds, images, text_tokens, visual_tokens)


class StageBatches:
    """Map-style dataset: item `step` is this rank's batch at global step `step` of one stage.
    Picklable and cheap to copy into DataLoader workers; readers open lazily per process."""

    def __init__(self, root: Path, stage: StageSpec, rows: list[SourceRows], plan: StagePlan, rank: int,
                 world_size: int, image_size: tuple[int, int], decoder: Callable | None = None):
        self.root, self.stage, self.rows, self.plan = Path(root), stage, rows, plan
        self.rank, self.world_size, self.image_size = rank, world_size, tuple(image_size)
        self.decoder = decoder
        self._readers: dict[tuple[str, str], DatasetReader] = {}

    def __len__(self) -> int:
        return num_steps(len(self.plan), self.stage.batch_size, self.world_size)

    def positions(self, step: int) -> np.ndarray:
        return batch_positions(len(self.plan), step, self.rank, self.stage.batch_size, self.world_size)

    def _reader(self, part: tuple[str, str]) -> DatasetReader:
        if part not in self._readers:
            self._readers[part] = DatasetReader(self.root, *part)
        return self._readers[part]

    def __getitem__(self, step: int) -> list[LoadedSample]:
        if not 0 <= step < len(self):
            raise IndexError(f"step {step} outside stage {self.stage.name!r} ({len(self)} steps)")
        batch = []
        for pos in self.positions(step):
            d, i = int(self.plan.source[pos]), int(self.plan.row[pos])
            rows = self.rows[d]
            stored = self._reader(rows.parts[rows.part[i]]).get(rows.keys[i])
            batch.append(load_sample(stored, self.stage, rows.pattern, self.image_size,
                                     int(rows.text_tokens[i]), int(rows.visual_tokens[i]), self.decoder))
        return batch

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _readers={})


def _identity(batch):
    return batch


class CurriculumLoader:
    """Batches of a curriculum's stages for one rank; resumable from `state_dict()`."""

    def __init__(self, curriculum: Curriculum, shards_root, *, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, image_size: tuple[int, int] = (384, 384), cache_dir=None,
                 mp_context: str | None = None, decoder: Callable | None = None,
                 lengths: "ExactLengths | None" = None):
        if world_size < 1 or not 0 <= rank < world_size:
            raise UsageError(f"rank {rank} must be in [0, world_size={world_size})")
        if num_workers < 0:
            raise UsageError(f"num_workers must be >= 0, got {num_workers}")
        self.curriculum = curriculum
        self.root = Path(shards_root)
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.image_size = tuple(image_size)
        self.decoder = decoder
        self.lengths = lengths
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.root / PLAN_CACHE
        self.mp_context = mp_context
        self._stages: dict[int, StageBatches] = {}
        self._stage, self._consumed = 0, 0
        self._expected_plan: str | None = None
        self._served: dict[str, list[int]] = {}

    # -- plans

    def _data(self, index: int) -> StageBatches:
        if not 0 <= index < len(self.curriculum.stages):
            raise UsageError(f"stage index {index} outside 0..{len(self.curriculum.stages) - 1}")
        if index not in self._stages:
            stage = self.curriculum.stages[index]
            rows, reasons = resolve(stage, self.root), None
            if self.lengths is not None:
                rows, reasons = self.lengths.stage_rows(self.root, stage, rows, self.cache_dir)
            plan = plan_stage(stage, rows, self.curriculum.seed, self.cache_dir, reasons)
            self._stages[index] = StageBatches(self.root, stage, rows, plan, self.rank, self.world_size,
                                               self.image_size, self.decoder)
        return self._stages[index]

    def plan(self, stage_index: int) -> StagePlan:
        return self._data(stage_index).plan

    def num_steps(self, stage_index: int) -> int:
        """Batches this rank gets in the stage (the same on every rank)."""
        return len(self._data(stage_index))

    # -- iteration

    def _start_step(self, data: StageBatches) -> int:
        g = data.stage.batch_size * self.world_size
        if self._consumed % g:
            raise UsageError(f"state consumed={self._consumed} is not a multiple of the global batch {g} "
                             f"(batch_size x world_size): resume with the same global batch size")
        if self._expected_plan is not None and self._expected_plan != data.plan.fingerprint:
            raise UsageError(f"stage {data.stage.name!r}: the checkpoint's plan {self._expected_plan[:12]} differs "
                             f"from the plan now built, {data.plan.fingerprint[:12]} (spec, seed or manifests "
                             f"changed); resuming would not continue the same order")
        return self._consumed // g

    def stage_batches(self, stage_index: int) -> Iterator[list[LoadedSample]]:
        """Batches of stage `stage_index` for this rank, starting at the current position
        (state_dict). Each yielded batch advances `consumed` by batch_size * world_size."""
        data = self._data(stage_index)
        if stage_index != self._stage:
            self._stage, self._consumed, self._expected_plan = stage_index, 0, None
        if not len(data.plan):
            raise UsageError(f"stage {data.stage.name!r} draws no samples: {'; '.join(data.plan.warnings)}")
        start = self._start_step(data)
        self._served = self._served_before(data, start)
        g = data.stage.batch_size * self.world_size
        for batch in self._batches(data, start):
            self._consumed += g
            for s in batch:
                counts = self._served[s.source]
                counts[0] += 1
                counts[1] += s.text_tokens + s.visual_tokens
            yield batch

    def _batches(self, data: StageBatches, start: int) -> Iterator[list[LoadedSample]]:
        steps = range(start, len(data))
        if self.num_workers == 0:
            return (data[s] for s in steps)
        import torch
        from torch.utils.data import DataLoader

        # A private generator: starting the workers draws their base seed from it, never from
        # the global torch RNG, so a resumed trainer's RNG stream is not shifted by the loader.
        seeds = torch.Generator().manual_seed(self.curriculum.seed * 1000 + self._stage)
        return iter(DataLoader(data, batch_size=None, sampler=steps, num_workers=self.num_workers,
                               collate_fn=_identity, multiprocessing_context=self.mp_context, generator=seeds))

    # -- state and the realized mixture

    def state_dict(self) -> dict:
        state = {"stage": self._stage, "consumed": self._consumed}
        if self._stage in self._stages:
            state["plan"] = self._stages[self._stage].plan.fingerprint
        return state

    def load_state_dict(self, state: dict) -> None:
        stage, consumed = state["stage"], state["consumed"]
        if not 0 <= stage < len(self.curriculum.stages) or consumed < 0:
            raise UsageError(f"bad loader state {state!r}")
        self._stage, self._consumed = int(stage), int(consumed)
        self._expected_plan = state.get("plan")
        self._served = {}

    def _served_before(self, data: StageBatches, steps: int) -> dict[str, list[int]]:
        """This rank's per-source samples and tokens in the stage's first `steps` batches."""
        served = {r.pattern: [0, 0] for r in data.rows}
        if steps:
            pos = np.concatenate([data.positions(s) for s in range(steps)])
            src, row = data.plan.source[pos], data.plan.row[pos]
            for d, rows in enumerate(data.rows):
                mask = src == d
                served[rows.pattern] = [int(mask.sum()), int(rows.tokens[row[mask]].sum())]
        return served

    def realized_mixture(self) -> dict:
        """Per source: samples and tokens this rank was served in the current stage so far,
        their shares, and the plan's shares for the whole stage."""
        data = self._data(self._stage)
        if not self._served:
            self._served = self._served_before(data, self._consumed // (data.stage.batch_size * self.world_size))
        total_s = sum(v[0] for v in self._served.values()) or 1
        total_t = sum(v[1] for v in self._served.values()) or 1
        plan_s, plan_t = max(len(data.plan), 1), max(data.plan.tokens, 1)
        sources = {}
        for sp in data.plan.sources:
            n, t = self._served.get(sp.pattern, [0, 0])
            sources[sp.pattern] = {
                "samples": n, "tokens": t, "share": n / total_s, "token_share": t / total_t,
                "planned_samples": sp.samples, "planned_tokens": sp.tokens,
                "planned_share": sp.samples / plan_s, "planned_token_share": sp.tokens / plan_t}
        return {"stage": data.stage.name, "stage_index": self._stage, "consumed": self._consumed,
                "rank": self.rank, "world_size": self.world_size, "sources": sources}
