"""The mixture sampler as a pure function: weights, caps, budgets, drops, determinism, slices.

Tolerance stated by the sampler's rule: every prefix of the order holds each source's
target count to within the number of sources (here 3 draws), and the whole stage to within 1.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from curriculum_shards import rows

from curricula import sampler
from curricula.sampler import allocate, batch_positions, build_plan, fingerprint, interleave, num_steps, plan_stage
from curricula.spec import Budget, SourceSpec, StageSpec


def stage(sources, budget=Budget("samples", 600), temperature=None, **kw) -> StageSpec:
    return StageSpec("s", tuple(sources), temperature, budget, ("llm",), {"llm": 1e-5}, **kw)


def three():
    return [rows("a/train", 300), rows("b/train", 100), rows("c/train", 30)]


WEIGHTED = [SourceSpec("a/train", 3.0), SourceSpec("b/train", 2.0), SourceSpec("c/train", 1.0)]


def test_allocate_meets_weights_and_redistributes_capped_share():
    w = np.array([0.5, 0.3, 0.2])
    assert allocate(1000, w, np.full(3, np.inf)).tolist() == [500, 300, 200]
    counts = allocate(101, w, np.full(3, np.inf))
    assert counts.sum() == 101 and np.all(np.abs(counts - 101 * w) < 1)
    capped = allocate(1000, w, np.array([np.inf, 100, np.inf]))
    # b is capped at 100; its 200 extra draws go to a and c in proportion 5:2
    assert capped.tolist() == [643, 100, 257]
    assert allocate(1000, w, np.array([10.0, 20.0, 30.0])).tolist() == [10, 20, 30]


def test_every_prefix_of_the_interleave_is_within_tolerance():
    counts = np.array([523, 311, 97, 0, 69])
    order = interleave(counts)
    assert np.bincount(order, minlength=5).tolist() == counts.tolist()
    share = counts / counts.sum()
    running = np.cumsum(np.eye(5, dtype=int)[order], axis=0)
    ideal = np.arange(1, len(order) + 1)[:, None] * share[None, :]
    assert np.abs(running - ideal).max() <= len(counts)


def test_weights_are_met_within_tolerance_at_every_prefix():
    plan = build_plan(stage(WEIGHTED), three(), seed=7)
    assert len(plan) == 600
    assert [s.samples for s in plan.sources] == [300, 200, 100]
    running = np.cumsum(np.eye(3, dtype=int)[plan.source], axis=0)
    ideal = np.arange(1, 601)[:, None] * np.array([0.5, 1 / 3, 1 / 6])[None, :]
    assert np.abs(running - ideal).max() <= 3


def test_temperature_shares_follow_size_power():
    specs = [SourceSpec(p) for p in ("a/train", "b/train", "c/train")]
    plan = build_plan(stage(specs, temperature=2.0), three(), seed=1)
    expect = np.sqrt([300, 100, 30]) / np.sqrt([300, 100, 30]).sum()
    assert [s.weight for s in plan.sources] == pytest.approx(expect.tolist())
    assert np.abs(np.array([s.samples for s in plan.sources]) - 600 * expect).max() < 1


def test_same_inputs_same_order_and_seed_or_stage_changes_it():
    a = build_plan(stage(WEIGHTED), three(), seed=7)
    b = build_plan(stage(WEIGHTED), three(), seed=7)
    assert np.array_equal(a.source, b.source) and np.array_equal(a.row, b.row)
    c = build_plan(stage(WEIGHTED), three(), seed=8)
    assert np.array_equal(a.source, c.source) and not np.array_equal(a.row, c.row)
    d = build_plan(dataclasses.replace(stage(WEIGHTED), name="other"), three(), seed=7)
    assert not np.array_equal(a.row, d.row)


def test_order_depends_on_keys_not_manifest_row_order():
    src = three()
    flipped = [dataclasses.replace(r, keys=r.keys[::-1].copy(), text_tokens=r.text_tokens[::-1].copy(),
                                   part=r.part[::-1].copy(), n_images=r.n_images[::-1].copy()) for r in src]
    a, b = build_plan(stage(WEIGHTED), src, 7), build_plan(stage(WEIGHTED), flipped, 7)
    keys_a = [src[d].keys[i] for d, i in zip(a.source, a.row)]
    keys_b = [flipped[d].keys[i] for d, i in zip(b.source, b.row)]
    assert keys_a == keys_b


def test_each_pass_over_a_source_is_a_permutation():
    plan = build_plan(stage([SourceSpec("c/train", 1.0)], Budget("samples", 75)), [rows("c/train", 30)], seed=2)
    r = plan.row.tolist()
    assert sorted(r[:30]) == list(range(30)) and sorted(r[30:60]) == list(range(30))
    assert len(set(r[60:])) == 15 and r[:30] != r[30:60]
    assert plan.sources[0].repeats == pytest.approx(2.5)


def test_caps_bound_draws_and_warn_when_the_budget_is_unreachable():
    specs = [SourceSpec("a/train", 1.0, max_samples=50), SourceSpec("b/train", 1.0, max_repeats=1.5),
             SourceSpec("c/train", 1.0, max_repeats=2)]
    plan = build_plan(stage(specs, Budget("samples", 200)), three(), seed=0)
    assert [s.samples for s in plan.sources] == [50, 90, 60] and len(plan) == 200
    assert [s.cap for s in plan.sources] == [50, 150, 60]
    short = build_plan(stage(specs, Budget("samples", 1000)), three(), seed=0)
    assert [s.samples for s in short.sources] == [50, 150, 60] and len(short) == 260
    assert any("budget not reached: caps allow 260 of 1000 samples" in w for w in short.warnings)


def test_tokens_budget_stops_at_the_first_draw_reaching_it():
    src = three()
    plan = build_plan(stage(WEIGHTED, Budget("tokens", 50_000)), src, seed=4)
    toks = np.array([src[d].tokens[i] for d, i in zip(plan.source, plan.row)])
    assert toks.sum() >= 50_000 and toks[:-1].sum() < 50_000
    assert plan.tokens == toks.sum()
    shares = np.array([s.samples for s in plan.sources]) / len(plan)
    assert np.abs(shares - [0.5, 1 / 3, 1 / 6]).max() < 0.02


def test_epochs_budget_counts_passes_over_eligible_data():
    specs = [SourceSpec(p) for p in ("a/train", "b/train", "c/train")]
    plan = build_plan(stage(specs, Budget("epochs", 2), temperature=1.0), three(), seed=0)
    assert [s.samples for s in plan.sources] == [600, 200, 60]
    assert all(s.repeats == 2 for s in plan.sources)


def test_overlength_and_too_many_images_are_dropped_and_counted_never_drawn():
    toks = [100] * 20
    toks[3] = toks[11] = 9000
    imgs = [1] * 20
    imgs[5] = 12
    src = [rows("a/train", 20, tokens=toks, images=imgs), rows("b/train", 10)]
    plan = build_plan(stage([SourceSpec("a/train", 1.0), SourceSpec("b/train", 1.0)], Budget("samples", 100),
                            max_seq_len=8192, max_images=8), src, seed=0)
    a = plan.sources[0]
    assert (a.size, a.eligible, a.dropped) == (20, 17, {"max_seq_len": 2, "max_images": 1, "video": 0, "encode": 0})
    drawn = set(plan.row[plan.source == 0].tolist())
    assert drawn == set(range(20)) - {3, 5, 11}


def test_reasons_found_by_exact_lengths_drop_first_and_are_counted():
    toks = [100] * 10
    toks[2] = 9000
    reasons = np.array([""] * 10, dtype=object)
    reasons[[2, 4]] = "video"
    reasons[7] = "encode"
    plan = build_plan(stage([SourceSpec("a/train", 1.0)], Budget("samples", 30), max_seq_len=8192),
                      [rows("a/train", 10, tokens=toks)], seed=0, reasons=[reasons])
    a = plan.sources[0]
    assert a.dropped == {"max_seq_len": 0, "max_images": 0, "video": 2, "encode": 1} and a.eligible == 7
    assert set(plan.row.tolist()) == set(range(10)) - {2, 4, 7}


def test_missing_and_zero_weight_sources_warn_and_draw_nothing():
    empty = rows("z/train", 0)
    empty.parts = ()
    src = [rows("a/train", 10), empty, rows("b/train", 10)]
    specs = [SourceSpec("a/train", 1.0), SourceSpec("z/train", 1.0), SourceSpec("b/train", 0.0)]
    plan = build_plan(stage(specs, Budget("samples", 20)), src, seed=0)
    assert [s.samples for s in plan.sources] == [20, 0, 0]
    assert any("'z/train': missing" in w for w in plan.warnings)
    assert any("'b/train': zero weight" in w for w in plan.warnings)


def test_length_grouping_sorts_within_windows_and_keeps_the_mixture():
    src = three()
    plain = build_plan(stage(WEIGHTED), src, seed=3)
    grouped = build_plan(stage(WEIGHTED, length_group_window=40), src, seed=3)
    toks = np.array([src[d].tokens[i] for d, i in zip(grouped.source, grouped.row)])
    for start in range(0, 600, 40):
        window = toks[start:start + 40]
        assert np.all(np.diff(window) <= 0)
        def pairs(p):
            return sorted(zip(p.source[start:start + 40].tolist(), p.row[start:start + 40].tolist()))
        assert pairs(plain) == pairs(grouped)


@pytest.mark.parametrize("n,batch,world", [(600, 4, 3), (601, 2, 5), (7, 3, 2)])
def test_rank_slices_are_disjoint_and_complete(n, batch, world):
    steps = num_steps(n, batch, world)
    seen = []
    for step in range(steps):
        block = [batch_positions(n, step, r, batch, world).tolist() for r in range(world)]
        flat = [p for b in block for p in b]
        assert len(set(flat)) == len(flat)           # ranks disjoint within a global batch
        seen += flat
    assert seen[:n] == list(range(n))                 # together: every draw once, in order
    assert len(seen) - n < batch * world              # padding only completes the last global batch
    assert seen[n:] == list(range(len(seen) - n))


def test_fingerprint_covers_order_inputs_only():
    src = three()
    base = fingerprint(stage(WEIGHTED), src, 7)
    assert base == fingerprint(dataclasses.replace(stage(WEIGHTED), lr={"llm": 1.0}, batch_size=9), src, 7)
    assert base != fingerprint(stage(WEIGHTED), src, 8)
    assert base != fingerprint(stage(WEIGHTED, max_seq_len=100), src, 7)
    changed = [dataclasses.replace(src[0], fingerprint="other"), *src[1:]]
    assert base != fingerprint(stage(WEIGHTED), changed, 7)


def test_plan_is_cached_by_fingerprint(tmp_path, monkeypatch):
    src = three()
    first = plan_stage(stage(WEIGHTED), src, 7, tmp_path)
    cached = tmp_path / f"{first.fingerprint}.npz"
    blob = cached.read_bytes()
    cached.unlink()
    plan_stage(stage(WEIGHTED), src, 7, tmp_path)
    assert cached.read_bytes() == blob              # same plan, same bytes

    def boom(*a, **k):
        raise AssertionError("rebuilt instead of read from the cache")

    monkeypatch.setattr(sampler, "build_plan", boom)
    again = plan_stage(stage(WEIGHTED), src, 7, tmp_path)
    assert np.array_equal(first.source, again.source) and np.array_equal(first.row, again.row)
    assert [dataclasses.asdict(s) for s in first.sources] == [dataclasses.asdict(s) for s in again.sources]
    with pytest.raises(AssertionError, match="rebuilt"):
        plan_stage(stage(WEIGHTED), src, 99, tmp_path)


def test_samples_made_long_by_visual_tokens_are_dropped():
    """Eligibility counts text + visual tokens: short text with many image tokens is too long,
    and a sample at exactly max_seq_len is kept."""
    src = rows("a/train", 10, tokens=[100] * 10)
    visual = np.full(10, 500, dtype=np.int64)
    visual[2] = 8100          # 100 + 8100 = 8200 > 8192 through images alone
    visual[6] = 8092          # 100 + 8092 = 8192: exactly the limit, kept
    src = dataclasses.replace(src, visual_tokens=visual)
    plan = build_plan(stage([SourceSpec("a/train", 1.0)], Budget("samples", 40), max_seq_len=8192, max_images=8),
                      [src], seed=0)
    a = plan.sources[0]
    assert (a.eligible, a.dropped) == (9, {"max_seq_len": 1, "max_images": 0, "video": 0, "encode": 0})
    assert set(plan.row.tolist()) == set(range(10)) - {2}
    assert a.tokens == sum(100 + int(visual[r]) for r in plan.row)


def test_plan_stage_without_a_cache_and_through_a_new_cache_folder_is_build_plan(tmp_path):
    """Same plan three ways: built directly, through plan_stage without a cache, and read back
    from a cache folder plan_stage had to create (parents too); reasons and seed pass through."""
    src = [rows("a/train", 12), rows("b/train", 6)]
    reasons = [np.array([""] * 12, dtype=object), np.array([""] * 6, dtype=object)]
    reasons[0][[1, 5]] = "encode"
    spec = stage([SourceSpec("a/train", 1.0, max_samples=8), SourceSpec("b/train", 1.0, max_samples=2)],
                 Budget("samples", 30))
    fp = fingerprint(spec, src, 7)
    direct = build_plan(spec, src, 7, fp, reasons)
    cache = tmp_path / "deep" / "cache"
    built, read = plan_stage(spec, src, 7, cache, reasons), plan_stage(spec, src, 7, cache, reasons)
    for plan in (plan_stage(spec, src, 7, None, reasons), built, read):
        assert np.array_equal(plan.source, direct.source) and np.array_equal(plan.row, direct.row)
        assert (plan.stage, plan.fingerprint, plan.budget, plan.warnings) == ("s", fp, spec.budget, direct.warnings)
        assert plan.sources == direct.sources
    assert direct.sources[0].dropped["encode"] == 2 and 1 not in direct.row[direct.source == 0]
    assert direct.warnings == ["budget not reached: caps allow 10 of 30 samples"]
    assert (cache / f"{fp}.npz").exists()


def test_an_empty_stage_has_no_steps():
    assert num_steps(0, 4, 2) == 0 and num_steps(1, 4, 2) == 1 and num_steps(8, 4, 2) == 1 and num_steps(9, 4, 2) == 2


def test_splitmix64_is_the_reference_mixer():
    """The first three outputs of the reference splitmix64.c (Vigna, prng.di.unimi.it) seeded
    with 0: its state before mixing is k x 0x9E3779B97F4A7C15, and `_splitmix64` adds one step."""
    state = np.array([0, 0x9E3779B97F4A7C15, (2 * 0x9E3779B97F4A7C15) % 2**64], dtype=np.uint64)
    assert [int(v) for v in sampler._splitmix64(state)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4,
                                                            0x06C45D188009454F]


def test_salt_is_the_little_endian_sha1_prefix_of_the_nul_joined_parts():
    import hashlib

    digest = hashlib.sha1(b"7\x00s\x00a/train\x000").digest()
    assert sampler._salt(7, "s", "a/train", 0) == np.uint64(int.from_bytes(digest[:8], "little"))


def test_draw_order_of_an_empty_source_and_stable_length_groups():
    empty = sampler.draw_order(np.zeros(0, dtype=np.uint64), 0, (0, "s", "a"))
    assert empty.dtype == np.int64 and empty.shape == (0,)
    assert sampler.group_by_length(np.array([5, 9, 5, 5, 9, 1]), 6).tolist() == [1, 4, 0, 2, 3, 5]


def test_exactly_max_images_is_kept_and_temperature_gives_a_one_sample_source_its_share():
    src = rows("a/train", 4)
    src = dataclasses.replace(src, n_images=np.array([8, 9, 7, 8]))
    plan = build_plan(stage([SourceSpec("a/train", 1.0)], Budget("samples", 6), max_images=8), [src], seed=0)
    assert plan.sources[0].dropped["max_images"] == 1 and set(plan.row.tolist()) == {0, 2, 3}
    shares = sampler.target_weights(stage([SourceSpec("a/train", 1.0), SourceSpec("b/train", 1.0),
                                           SourceSpec("c/train", 1.0)], temperature=2.0), np.array([4, 1, 0]))
    assert shares.tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
