"""Loader details the end-to-end loader tests do not pin down: each usage error's text and
boundary, the defaults (image size, plan cache folder), a model's exact lengths, and the
served counts. Fast: mutation tests run this file once per mutant of curricula/loader.py."""
from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import pytest
from curriculum_shards import mixture_root
from PIL import Image
from test_loader import SIZE, curriculum, keys, loader

from curricula.loader import CurriculumLoader
from curricula.sampler import PLAN_CACHE
from curricula.spec import Budget, Curriculum, SourceSpec, StageSpec
from dataengine.errors import UsageError
from dataengine.reader import DatasetReader


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return mixture_root(tmp_path_factory.mktemp("mixture"))


@pytest.mark.parametrize("rank, world_size", [(0, 0), (-1, 1), (2, 2), (-1, 0)])
def test_a_rank_outside_the_world_is_refused(shards, rank, world_size):
    with pytest.raises(UsageError, match=rf"^rank {rank} must be in \[0, world_size={world_size}\)$"):
        CurriculumLoader(curriculum(), shards, rank=rank, world_size=world_size)


def test_the_last_rank_and_zero_workers_are_accepted(shards, tmp_path):
    L = loader(shards, tmp_path, rank=1, world_size=2, num_workers=0)
    assert (L.rank, L.world_size, L.num_workers) == (1, 2, 0)


def test_negative_workers_are_refused(shards):
    with pytest.raises(UsageError, match=r"^num_workers must be >= 0, got -1$"):
        CurriculumLoader(curriculum(), shards, num_workers=-1)


@pytest.mark.parametrize("index", [-1, 2])
def test_a_stage_index_outside_the_curriculum_is_refused(shards, tmp_path, index):
    with pytest.raises(UsageError, match=rf"^stage index {index} outside 0\.\.1$"):
        loader(shards, tmp_path).plan(index)


@pytest.mark.parametrize("state", [{"stage": 2, "consumed": 0}, {"stage": -1, "consumed": 0},
                                   {"stage": 0, "consumed": -2}])
def test_a_bad_state_is_refused(shards, tmp_path, state):
    with pytest.raises(UsageError, match=r"^bad loader state \{'stage'"):
        loader(shards, tmp_path).load_state_dict(state)


def test_a_step_outside_the_stage_is_an_index_error(shards, tmp_path):
    data = loader(shards, tmp_path)._data(0)          # 30 draws, batch 2: steps 0..14
    assert len(data[14]) == 2 and len(data[0]) == 2
    for step in (-1, 15):
        with pytest.raises(IndexError, match=rf"^step {step} outside stage 'one' \(15 steps\)$"):
            data[step]


def test_defaults_cache_plans_under_the_shards_and_decode_at_384(shards):
    L = CurriculumLoader(curriculum(), shards)
    assert L.state_dict() == {"stage": 0, "consumed": 0}   # no plan built yet
    batch = next(iter(L.stage_batches(0)))
    assert (shards / PLAN_CACHE / f"{L.plan(0).fingerprint}.npz").is_file()
    assert all(img.size == (384, 384) for s in batch for img in s.images)
    assert (L.rank, L.world_size, L.num_workers) == (0, 1, 0)
    assert keys([batch]) == keys([next(iter(loader(shards, shards / "other").stage_batches(0)))])


class Recorder:
    """A `decoder` that records what it was given and where, and returns 7x5 images tagged
    with the process that made them and whether it is the test's object or a pickled copy."""

    def __init__(self):
        self.calls, self.copy = [], "the test's decoder"

    def __getstate__(self):
        return {"calls": [], "copy": "a pickled copy"}

    def __call__(self, payloads, groups, kinds):
        self.calls.append((list(payloads), groups, kinds))
        images = [Image.new("RGB", (7, 5)) for _ in payloads]
        for img in images:
            img.info.update(pid=os.getpid(), copy=self.copy)
        return images


def test_a_decoder_gets_the_kept_payloads_groups_and_kinds(shards, tmp_path):
    rec = Recorder()
    L = loader(shards, tmp_path, decoder=rec, cur=curriculum(prompt_style="plain"))
    samples = [s for b in L.stage_batches(0) for s in b]
    assert len(rec.calls) == len(samples) == 30
    readers = {d: DatasetReader(shards, d, "train") for d in ("alpha", "beta", "gamma")}
    for s, (payloads, groups, kinds) in zip(samples, rec.calls):
        stored = readers[s.dataset].get(s.key)
        question = stored.sample["conversations"][0]["content"]
        # gamma: 2 cameras x 6 frames at -2.5..0 s; 3 kept per camera: frames 0, 3, 5 of each
        kept = {"alpha": [0], "beta": [0, 1], "gamma": [0, 3, 5, 6, 9, 11]}[s.dataset]
        assert payloads == [stored.media[f"img{i}.jpg"] for i in kept]
        assert (groups, kinds) == {"alpha": ([[0]], ["image"]), "beta": ([[0], [1]], ["image"] * 2),
                                   "gamma": ([[0, 1, 2], [3, 4, 5]], ["video"] * 2)}[s.dataset]
        assert (s.groups, s.kinds) == (groups, kinds)
        # the stage's prompt style, not the default: "plain" is one bare placeholder per camera
        assert s.conversation[0]["content"] == "<image>\n" * len(groups) + question
        assert [img.size for img in s.images] == [(7, 5)] * len(kept)
        assert all(img.info["pid"] == os.getpid() for img in s.images)


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_workers_load_in_their_own_processes(shards, tmp_path, workers):
    batches = list(loader(shards, tmp_path, decoder=Recorder(), num_workers=workers).stage_batches(0))
    pids = [{img.info["pid"] for s in b for img in s.images} for b in batches]
    used = set().union(*pids)
    assert len(pids) == 15 and all(len(p) == 1 for p in pids)   # a whole batch comes from one process
    assert used == {os.getpid()} if workers == 0 else (len(used) == workers and os.getpid() not in used)
    # forked workers use the loader's own dataset, decoder included: nothing is pickled
    assert {img.info["copy"] for b in batches for s in b for img in s.images} == {"the test's decoder"}


def test_a_spawned_worker_gets_a_pickled_dataset_and_the_same_batches(shards, tmp_path):
    serial = keys(loader(shards, tmp_path).stage_batches(0))
    L = loader(shards, tmp_path, decoder=Recorder(), num_workers=1, mp_context="spawn")
    batches = list(L.stage_batches(0))
    assert keys(batches) == serial
    assert {img.info["copy"] for b in batches for s in b for img in s.images} == {"a pickled copy"}


def test_a_pickled_stage_reopens_its_readers(shards, tmp_path):
    data = loader(shards, tmp_path)._data(0)
    first = keys([data[3]])
    assert data._readers                                   # opened by the read
    copy = pickle.loads(pickle.dumps(data))
    assert copy._readers == {} and data._readers           # the copy opens its own, the original keeps its
    assert keys([copy[3]]) == first and copy._readers
    assert (copy.rank, copy.world_size, copy.image_size, copy.root) == (0, 1, SIZE, shards)


class OneTokenLengths:
    """Exact lengths as a model would give them: every row 1 text token and no visual ones,
    and the odd rows of every source unencodable. Records its calls."""

    def __init__(self):
        self.calls = []

    def stage_rows(self, root, stage, rows, cache_dir):
        self.calls.append((root, stage.name, [r.pattern for r in rows], cache_dir))
        exact = [dataclasses.replace(r, fingerprint=f"exact-{r.fingerprint}", text_tokens=np.ones(len(r), np.int64),
                                     visual_tokens=np.zeros(len(r), np.int64)) for r in rows]
        return exact, [np.array(["encode" if i % 2 else "" for i in range(len(r))], dtype=object) for r in rows]


def test_a_models_exact_lengths_plan_the_stage(shards, tmp_path):
    lengths = OneTokenLengths()
    L = loader(shards, tmp_path, lengths=lengths)
    plan = L.plan(0)
    assert lengths.calls == [(shards, "one", ["alpha/train", "beta/train", "gamma/train"], tmp_path / "plans")]
    # alpha: 24 rows, 12 odd ones unencodable, the 4 over-length ones (5, 11, 17, 23) are odd too
    assert [sp.dropped["encode"] for sp in plan.sources] == [12, 6, 3]
    assert [sp.dropped["max_seq_len"] for sp in plan.sources] == [0, 0, 0]
    served = [s for b in L.stage_batches(0) for s in b]
    assert len(served) == 30 and all((s.text_tokens, s.visual_tokens) == (1, 0) for s in served)
    assert all(int(s.key.rsplit("s", 1)[1]) % 2 == 0 for s in served)
    assert plan.tokens == 30


def test_the_realized_mixture_by_hand(shards, tmp_path):
    L = loader(shards, tmp_path, rank=1, world_size=2)   # global batch 4: 30 draws are 8 steps
    served = [s for _, b in zip(range(4), L.stage_batches(0)) for s in b]
    mix = L.realized_mixture()
    plan = L.plan(0)
    patterns = ["alpha/train", "beta/train", "gamma/train"]
    n = {p: sum(s.source == p for s in served) for p in patterns}
    t = {p: sum(s.text_tokens + s.visual_tokens for s in served if s.source == p) for p in patterns}
    assert sum(n.values()) == 8 and sum(v > 0 for v in n.values()) >= 2
    planned = {p: int((plan.source == d).sum()) for d, p in enumerate(patterns)}
    assert sum(planned.values()) == 30
    expected = {p: {"samples": n[p], "tokens": t[p], "share": n[p] / 8, "token_share": t[p] / sum(t.values()),
                    "planned_samples": planned[p], "planned_tokens": sp.tokens, "planned_share": planned[p] / 30,
                    "planned_token_share": sp.tokens / plan.tokens} for p, sp in zip(patterns, plan.sources)}
    assert mix == {"stage": "one", "stage_index": 0, "consumed": 16, "rank": 1, "world_size": 2,
                   "sources": expected}
    # the same from a fresh loader given the state: counted from the plan, not from served batches
    resumed = loader(shards, tmp_path, rank=1, world_size=2)
    resumed.load_state_dict(L.state_dict())
    assert resumed.realized_mixture() == mix


def test_one_draw_of_one_token_is_the_whole_plan(shards, tmp_path):
    L = loader(shards, tmp_path, cur=curriculum(samples=1), lengths=OneTokenLengths())
    mix = L.realized_mixture()                            # nothing served yet: shares are 0, not NaN
    assert [(v["samples"], v["share"], v["token_share"]) for v in mix["sources"].values()] == [(0, 0.0, 0.0)] * 3
    next(iter(L.stage_batches(0)))
    mix = L.realized_mixture()["sources"]
    drawn = [p for p, v in mix.items() if v["planned_samples"]]
    assert len(drawn) == 1 and mix[drawn[0]]["planned_share"] == 1.0 and mix[drawn[0]]["planned_token_share"] == 1.0
    assert (mix[drawn[0]]["samples"], mix[drawn[0]]["tokens"], mix[drawn[0]]["token_share"]) == (2, 2, 1.0)


def test_a_fresh_state_is_accepted_and_starts_at_the_first_batch(shards, tmp_path):
    L = loader(shards, tmp_path)
    L.load_state_dict({"stage": 1, "consumed": 0})
    assert L.state_dict() == {"stage": 1, "consumed": 0}
    assert len(next(iter(L.stage_batches(1)))) == 2 and L.state_dict()["consumed"] == 2


def test_a_changed_plan_names_both_fingerprints_by_their_first_12_characters(shards, tmp_path):
    L = loader(shards, tmp_path)
    next(iter(L.stage_batches(0)))
    state = L.state_dict()
    other = loader(shards, tmp_path, cur=curriculum(seed=6))
    now = other.plan(0).fingerprint
    assert state["plan"] != now and len(state["plan"]) > 12 and len(now) > 12
    other.load_state_dict(state)
    with pytest.raises(UsageError, match=rf"^stage 'one': the checkpoint's plan {state['plan'][:12]} differs from "
                                         rf"the plan now built, {now[:12]} \(spec, seed or manifests changed\)"):
        next(other.stage_batches(0))


def test_a_stage_without_data_lists_every_warning(shards, tmp_path):
    gone = StageSpec("none", (SourceSpec("absent/train", 1.0), SourceSpec("gone/train", 1.0)), None,
                     Budget("samples", 4), ("llm",), {"llm": 1e-5})
    L = loader(shards, tmp_path, cur=Curriculum("t", 0, (gone,)))
    warnings = L.plan(0).warnings
    assert len(warnings) == 3 and "'absent/train'" in warnings[0] and "'gone/train'" in warnings[1]
    with pytest.raises(UsageError) as err:
        next(L.stage_batches(0))
    assert str(err.value) == f"stage 'none' draws no samples: {warnings[0]}; {warnings[1]}; {warnings[2]}"
