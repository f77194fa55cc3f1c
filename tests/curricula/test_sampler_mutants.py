"""Sampler details by hand: largest-remainder ties and water filling in `allocate`, stable
orders where many keys tie, and each warning's text and boundary."""
from __future__ import annotations

import warnings

import numpy as np
from curriculum_shards import rows
from test_sampler import stage

from curricula import sampler
from curricula.sampler import allocate, build_plan
from curricula.spec import Budget, SourceSpec

INF = np.inf


def test_allocate_by_hand():
    # 20 sources tie on remainder 0.5: the extra draws go to the first ones (stable, source order)
    assert allocate(10, np.full(20, 1 / 20), np.full(20, INF)).tolist() == [1] * 10 + [0] * 10
    # a capped source below its cap still competes on its remainder
    assert allocate(3, np.array([0.5, 0.5]), np.array([10, INF])).tolist() == [2, 1]
    # largest remainder, not largest share: 2.1 and 0.9
    assert allocate(3, np.array([0.7, 0.3]), np.full(2, INF)).tolist() == [2, 1]
    assert allocate(1, np.array([0.5, 0.5]), np.full(2, INF)).tolist() == [1, 0]
    assert allocate(5, np.zeros(2), np.full(2, INF)).tolist() == [0, 0]      # nothing to draw from
    # water filling over rounds: source 0 capped first, then source 1; the rest goes to source 2
    assert allocate(30, np.ones(3) / 3, np.array([2, 12, INF])).tolist() == [2, 12, 16]
    # a zero-weight source stays at zero even when the others are capped
    assert allocate(30, np.array([0.5, 0.5, 0.0]), np.array([4, 5, INF])).tolist() == [4, 5, 0]


def test_length_groups_and_draw_order_are_stable_over_many_ties():
    tokens = np.array([5, 9, 5, 5, 9, 1] * 8)
    order = sampler.group_by_length(tokens, 48)
    assert order.tolist() == [i for t in (9, 5, 1) for i in range(48) if tokens[i] == t]
    # equal hashes: every pass keeps the source's row order
    same = np.zeros(40, dtype=np.uint64)
    assert sampler.draw_order(same, 80, (0, "s", "a")).tolist() == list(range(40)) * 2


def test_draw_order_passes_are_fresh_permutations():
    hashes = sampler.key_hashes(np.array([f"k{i}" for i in range(30)], dtype=object))
    order = sampler.draw_order(hashes, 75, (1, "s", "a"))
    assert order.dtype == np.int64 and len(order) == 75
    for p in range(2):
        assert sorted(order[30 * p:30 * (p + 1)].tolist()) == list(range(30))
    assert order[:30].tolist() != order[30:60].tolist()       # each pass is salted with its number
    assert len(set(order[60:].tolist())) == 15


def two_sources(tokens_a, images_a=None):
    return [rows("a/train", len(tokens_a), tokens=tokens_a, images=images_a), rows("b/train", 10, tokens=[100] * 10)]


SPECS = [SourceSpec("a/train", 1.0), SourceSpec("b/train", 1.0)]


def test_a_source_with_every_sample_dropped_says_why():
    plan = build_plan(stage(SPECS, Budget("samples", 10), max_seq_len=8192, max_images=8),
                      two_sources([9000, 100], [1, 12]), seed=0)
    assert plan.warnings == ["source 'a/train': every sample is dropped (over max_seq_len 8192: 1, "
                             "over max_images 8: 1)"]
    one = build_plan(stage(SPECS, Budget("samples", 10), max_seq_len=8192), two_sources([9000, 100]), seed=0)
    assert one.warnings == [] and one.sources[0].eligible == 1


def test_budget_warnings_and_their_boundaries():
    src = two_sources([100] * 10)
    assert build_plan(stage(SPECS, Budget("samples", 1)), src, seed=0).warnings == []   # one draw: no warning
    assert build_plan(stage(SPECS, Budget("samples", 40)), src, seed=0).warnings == []  # uncapped: reached exactly
    capped = [SourceSpec("a/train", 1.0, max_samples=3), SourceSpec("b/train", 1.0, max_samples=2)]
    assert build_plan(stage(capped, Budget("samples", 5)), src, seed=0).warnings == []   # caps allow exactly 5
    # every sample 100 tokens: a 1000-token budget is reached exactly at the 10th draw
    tokens = build_plan(stage(SPECS, Budget("tokens", 1000)), src, seed=0)
    assert len(tokens) == 10 and tokens.tokens == 1000 and tokens.warnings == []
    short = build_plan(stage(capped, Budget("tokens", 1000)), src, seed=0)
    assert short.tokens == 500 and short.warnings == ["budget not reached: caps allow 500 of 1000 tokens"]
    gone = [SourceSpec("x/train", 1.0)]
    empty = rows("x/train", 0)
    empty.parts = ()
    nothing = build_plan(stage(gone, Budget("samples", 5)), [empty], seed=0)
    assert nothing.warnings == ["source 'x/train': missing (no <dataset>/<split> under the shard root matches it)",
                                "stage 's' draws no samples"]


def test_interleave_times_by_hand_and_source_dtype():
    # source 0's draw at 0.5; source 1's at 1/6, 1/2, 5/6; the tie at 1/2 goes to the lower source
    assert sampler.interleave(np.array([1, 3])).tolist() == [1, 0, 1, 1]
    assert sampler.interleave(np.array([2, 1])).tolist() == [0, 1, 0]
    plan = build_plan(stage(SPECS, Budget("samples", 7)), two_sources([100] * 5), seed=0)
    assert plan.source.dtype == np.int32 and plan.row.dtype == np.int64    # as StagePlan documents
    assert plan.fingerprint == ""                                           # built outside plan_stage


def test_reported_weights_are_normalised_even_when_they_sum_below_one():
    specs = [SourceSpec("a/train", 0.2), SourceSpec("b/train", 0.3)]
    plan = build_plan(stage(specs, Budget("samples", 10)), two_sources([100] * 10), seed=0)
    assert [s.weight for s in plan.sources] == [0.4, 0.6] and [s.samples for s in plan.sources] == [4, 6]


def test_epochs_count_weighted_sources_only():
    specs = [SourceSpec("a/train", 1.0), SourceSpec("b/train", 0.0)]
    plan = build_plan(stage(specs, Budget("epochs", 2)), two_sources([100] * 5), seed=0)
    assert len(plan) == 10 and [s.samples for s in plan.sources] == [10, 0]


def test_samples_without_tokens_never_fill_a_tokens_budget():
    plan = build_plan(stage(SPECS[:1], Budget("tokens", 100)), [rows("a/train", 5, tokens=[0] * 5)], seed=0)
    assert len(plan) == 0 and plan.warnings == ["stage 's' draws no samples"]
    # the weighted source has no tokens; a zero-weight source's tokens do not count
    specs = [SourceSpec("a/train", 1.0), SourceSpec("b/train", 0.0)]
    plan = build_plan(stage(specs, Budget("tokens", 100)), two_sources([0] * 5), seed=0)
    assert len(plan) == 0


def test_a_tokens_budget_is_reached_when_the_first_estimate_falls_short():
    """Two 400-token samples among 1-token ones: for some seeds the first draws (sized by the
    mean) miss them and the plan must grow until the budget is reached, never give up."""
    src = [rows("a/train", 20, tokens=[1] * 18 + [400, 400])]
    for seed in range(20):
        plan = build_plan(stage(SPECS[:1], Budget("tokens", 1000)), src, seed=seed)
        toks = src[0].tokens[plan.row]
        assert toks.sum() >= 1000 and toks[:-1].sum() < 1000 and plan.warnings == [], seed


def test_a_tokens_budget_from_samples_below_one_token_on_average():
    """Mean 0.2 tokens is still tokens: the budget of 1 is reached, not given up."""
    plan = build_plan(stage(SPECS[:1], Budget("tokens", 1)), [rows("a/train", 5, tokens=[0, 0, 0, 0, 1])], seed=0)
    assert plan.tokens == 1 and plan.warnings == [] and rows("a/train", 5).keys[plan.row[-1]] == "a-00004"


def test_an_emptied_source_under_a_tokens_budget_raises_no_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # e.g. numpy's "Mean of empty slice"
        plan = build_plan(stage(SPECS, Budget("tokens", 500), max_seq_len=8192), two_sources([9000, 9000]), seed=0)
    assert plan.sources[0].eligible == 0 and plan.tokens >= 500
