"""The loader on shards written through the real staging path: determinism across runs and
worker counts, exact resume, rank slices, decoded and rendered samples, the realized mixture."""
from __future__ import annotations

import io

import numpy as np
import pytest
from curriculum_shards import mixture_root
from PIL import Image

from curricula.loader import CurriculumLoader
from curricula.spec import Budget, Curriculum, SourceSpec, StageSpec
from dataengine.errors import UsageError
from dataengine.frames import kept_media
from dataengine.reader import DatasetReader

SIZE = (32, 24)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return mixture_root(tmp_path_factory.mktemp("mixture"))


def curriculum(batch_size=2, samples=30, seed=5, **kw) -> Curriculum:
    sources = (SourceSpec("alpha/train", 2.0), SourceSpec("beta/train", 1.0), SourceSpec("gamma/train", 1.0))
    one = StageSpec("one", sources, None, Budget("samples", samples), ("llm",), {"llm": 1e-5},
                    batch_size=batch_size, frames_per_video=3, max_images=16, **kw)
    two = StageSpec("two", (SourceSpec("*/val"),), 1.0, Budget("epochs", 2), ("llm",), {"llm": 1e-5},
                    batch_size=batch_size)
    return Curriculum("t", seed, (one, two))


def keys(batches) -> list[list[str]]:
    return [[s.key for s in b] for b in batches]


def loader(shards, tmp_path, **kw) -> CurriculumLoader:
    kw.setdefault("image_size", SIZE)
    return CurriculumLoader(kw.pop("cur", curriculum()), shards, cache_dir=tmp_path / "plans", **kw)


def test_same_order_across_runs_and_worker_counts(shards, tmp_path):
    # each run builds its plan afresh (its own cache dir): same order from scratch too
    runs = [keys(loader(shards, tmp_path / str(i), num_workers=w).stage_batches(0))
            for i, w in enumerate((0, 0, 1, 2))]
    assert all(r == runs[0] for r in runs[1:])
    assert len(runs[0]) == 15 and all(len(b) == 2 for b in runs[0])


def test_workers_leave_the_global_torch_rng_alone(shards, tmp_path):
    import torch

    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    keys(loader(shards, tmp_path, num_workers=2).stage_batches(0))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("stop", [1, 6, 14])
def test_exact_resume_continues_with_the_next_batch(shards, tmp_path, stop):
    full = keys(loader(shards, tmp_path).stage_batches(0))
    first = loader(shards, tmp_path)
    head = []
    for batch in first.stage_batches(0):
        head.append([s.key for s in batch])
        if len(head) == stop:
            break
    state = first.state_dict()
    assert state["stage"] == 0 and state["consumed"] == 2 * stop
    resumed = loader(shards, tmp_path, num_workers=2)
    resumed.load_state_dict(state)
    tail = keys(resumed.stage_batches(0))
    assert head + tail == full
    assert resumed.state_dict()["consumed"] == 30


def test_rank_slices_are_disjoint_and_cover_the_stage(shards, tmp_path):
    cur = curriculum(batch_size=2, samples=29)
    single = loader(shards, tmp_path, cur=curriculum(batch_size=6, samples=29))
    plan = single.plan(0)
    per_rank = [keys(loader(shards, tmp_path, cur=cur, rank=r, world_size=3).stage_batches(0)) for r in range(3)]
    steps = [len(p) for p in per_rank]
    assert steps == [5, 5, 5]                      # ceil(29 / 6): the same number of batches on every rank
    global_order = [k for step in range(5) for r in range(3) for k in per_rank[r][step]]
    expected = []
    for d, i in zip(plan.source, plan.row):
        rows = single._data(0).rows[d]
        expected.append(rows.keys[i])
    assert global_order[:29] == expected          # ranks together serve the plan in order
    assert global_order[29:] == expected[:1]      # the last global batch is completed from the start


def test_loaded_samples_are_decoded_rendered_and_counted(shards, tmp_path):
    L = loader(shards, tmp_path)
    samples = [s for b in L.stage_batches(0) for s in b]
    readers = {d: DatasetReader(shards, d, "train") for d in ("alpha", "beta", "gamma")}
    for s in samples:
        stored = readers[s.dataset].get(s.key)
        row = readers[s.dataset].manifest.to_pylist()[readers[s.dataset]._rows[s.key]]
        assert s.source == f"{s.dataset}/train" and s.split == "train"
        first = s.conversation[0]["content"]
        assert first.count("<image>") == len(s.groups) == len(s.kinds)
        assert first.endswith(stored.sample["conversations"][0]["content"])
        assert sorted(i for g in s.groups for i in g) == list(range(len(s.images)))
        assert all(img.size == SIZE and img.mode == "RGB" for img in s.images)
        assert s.text_tokens == row["text_tokens"]
        if s.dataset == "gamma":   # 2 cameras x 6 frames, 3 frames kept per video
            assert len(s.images) == 6 and s.kinds == ["video", "video"] and s.visual_tokens == 6 * 196
            kept = kept_media(stored.sample, 3)
            assert [stored.sample["media"][i]["time_offset_s"] for i in kept] == [-2.5, -1.0, 0.0] * 2
        else:
            assert s.visual_tokens == row["visual_tokens"] and len(s.images) == row["n_media"]


def test_images_match_a_full_decode_resized(shards, tmp_path):
    batch = next(iter(loader(shards, tmp_path, image_size=(24, 16)).stage_batches(0)))
    s = batch[0]
    stored = DatasetReader(shards, s.dataset, "train").get(s.key)
    full = Image.open(io.BytesIO(stored.media_bytes(0))).convert("RGB").resize((24, 16), Image.Resampling.BILINEAR)
    diff = np.abs(np.asarray(full, dtype=int) - np.asarray(s.images[0], dtype=int))
    assert diff.mean() < 4


def test_overlength_samples_never_reach_the_loader(shards, tmp_path):
    L = loader(shards, tmp_path, cur=curriculum(samples=60))
    plan = L.plan(0)
    assert plan.sources[0].dropped == {"max_seq_len": 4, "max_images": 0, "video": 0, "encode": 0}
    served = [s for b in L.stage_batches(0) for s in b]
    assert all(s.text_tokens + s.visual_tokens <= 8192 for s in served)
    long_keys = {f"alpha-s{i:04d}" for i in (5, 11, 17, 23)}
    assert not long_keys & {s.key for s in served}


def test_realized_mixture_matches_the_plan_and_survives_resume(shards, tmp_path):
    L = loader(shards, tmp_path)
    for _ in L.stage_batches(0):
        pass
    mix = L.realized_mixture()
    plan = L.plan(0)
    for sp in plan.sources:
        m = mix["sources"][sp.pattern]
        assert (m["samples"], m["tokens"]) == (sp.samples, sp.tokens)
        assert m["share"] == pytest.approx(m["planned_share"])
    half = loader(shards, tmp_path)
    it = half.stage_batches(0)
    for _ in range(7):
        next(it)
    state = half.state_dict()
    partial = half.realized_mixture()
    resumed = loader(shards, tmp_path)
    resumed.load_state_dict(state)
    assert resumed.realized_mixture()["sources"] == partial["sources"]
    for _ in resumed.stage_batches(0):
        pass
    assert resumed.realized_mixture()["sources"] == mix["sources"]


def test_next_stage_starts_at_zero_and_glob_sources_resolve(shards, tmp_path):
    L = loader(shards, tmp_path)
    for _ in L.stage_batches(0):
        pass
    second = keys(L.stage_batches(1))
    assert L.state_dict()["stage"] == 1 and L.state_dict()["consumed"] == 8
    flat = [k for b in second for k in b]
    assert sorted(flat) == sorted(2 * [f"alpha-s{i:04d}" for i in range(4)])


def test_resume_refuses_a_changed_plan_or_global_batch(shards, tmp_path):
    L = loader(shards, tmp_path)
    it = L.stage_batches(0)
    next(it)
    state = L.state_dict()
    other = loader(shards, tmp_path, cur=curriculum(seed=6))
    other.load_state_dict(state)
    with pytest.raises(UsageError, match="differs from the plan now built"):
        next(other.stage_batches(0))
    wider = loader(shards, tmp_path, cur=curriculum(batch_size=4))
    wider.load_state_dict(state)
    with pytest.raises(UsageError, match="not a multiple of the global batch 4"):
        next(wider.stage_batches(0))


def test_a_stage_without_data_is_a_usage_error(shards, tmp_path):
    empty = StageSpec("none", (SourceSpec("absent/train", 1.0),), None, Budget("samples", 4), ("llm",),
                      {"llm": 1e-5})
    L = loader(shards, tmp_path, cur=Curriculum("t", 0, (empty,)))
    with pytest.raises(UsageError, match="draws no samples.*'absent/train': missing"):
        next(L.stage_batches(0))
    with pytest.raises(UsageError, match=r"rank 3 must be in \[0, world_size=2\)"):
        CurriculumLoader(curriculum(), shards, rank=3, world_size=2)


def test_demo_preset_loads_nuscenes_fixture_samples(nuscenes_shards, tmp_path):
    from curricula.spec import load_curriculum

    L = CurriculumLoader(load_curriculum("demo"), nuscenes_shards, cache_dir=tmp_path)
    batch = next(iter(L.stage_batches(0)))
    s = batch[0]
    assert len(batch) == 2 and s.dataset == "nuscenes" and len(s.images) == 6
    assert all(img.size == (384, 384) for img in s.images)
    assert s.conversation[0]["content"].startswith("1: <image> 2: <image> 3: <image> 4: <image> 5: <image> 6: <image>.")
