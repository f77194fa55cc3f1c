"""The deterministic mixture sampler: a stage's sample order as a pure function of
(stage spec, manifests, seed), built once and cached on disk by the hash of those inputs.

Semantics (docs/curriculum.md has the long form):
- Eligible samples: a sample whose text + visual tokens exceed `max_seq_len`, or whose images
  (after keeping `frames_per_video` frames per video) exceed `max_images`, is dropped and
  counted per source; nothing is truncated.
- Target shares: the weights normalized over sources that have eligible samples, or, with a
  temperature T, shares proportional to eligible size**(1/T). A weight counts samples drawn.
- Caps: `max_samples` and `max_repeats` (x eligible size) bound a source's draws; the share
  a capped source cannot take goes to the others in proportion to their weights (water
  filling). Counts are rounded with largest remainders, so they sum to the stage length.
- Length: `samples` is the number of draws; `epochs` is that many passes over the eligible
  data (draws = round(epochs x sum of eligible sizes)); `tokens` ends the stage at the first
  draw where the cumulative text + visual tokens reach the budget.
- Interleave (no RNG): source d's k-th draw sits at time (k + 0.5) / count_d, and draws are
  ordered by time (ties by source order), so every prefix is within a few samples of the
  target shares (Megatron's blend and Ray's `Dataset.mix` use the same "furthest behind" idea).
- Within a source: each pass is a fresh permutation ordered by a 64-bit hash of (seed, stage
  name, pattern, pass number, sample key): it depends on the keys, not on manifest row order.
- Length grouping (optional): inside each window of `length_group_window` draws, samples are
  sorted by length, longest first; the window's multiset of samples is unchanged.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curricula.sources import SourceRows
from curricula.spec import Budget, StageSpec

PLAN_VERSION = 2
PLAN_CACHE = "_plans"   # default cache folder under the shard root
# max_seq_len, max_images: from the lengths; video: a video sample the spec drops for a family
# without video; encode: a sample the model cannot encode (both only with exact lengths)
DROP_REASONS = ("max_seq_len", "max_images", "video", "encode")


@dataclass
class SourcePlan:
    """What the plan draws from one source."""

    pattern: str
    parts: list[str]          # "dataset/split" matched by the pattern
    size: int                 # samples in the manifests
    eligible: int             # of those, within max_seq_len and max_images
    dropped: dict[str, int]   # per reason in DROP_REASONS
    weight: float             # target share before caps (0 for a missing or emptied source)
    cap: int | None           # the most draws max_samples/max_repeats allow
    samples: int = 0          # draws in the plan
    tokens: int = 0           # text + visual tokens of those draws

    @property
    def repeats(self) -> float:
        return self.samples / self.eligible if self.eligible else 0.0


@dataclass
class StagePlan:
    """The whole stage: position i draws row `row[i]` of source `source[i]`."""

    stage: str
    fingerprint: str
    budget: Budget
    source: np.ndarray        # int32, index into the stage's sources
    row: np.ndarray           # int64, row in that source's SourceRows
    sources: list[SourcePlan]
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.source)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sources)


# ---------------------------------------------------------------- pure building blocks

def eligibility(rows: SourceRows, stage: StageSpec,
                reasons: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """Indices of the eligible rows, and the drop counts per reason (`reasons`: a reason
    per row found by exact lengths, "" for none; then length, then image count)."""
    reasons = np.full(len(rows), "", dtype=object) if reasons is None else reasons
    other = reasons != ""
    too_long = ~other & (rows.tokens > stage.max_seq_len)
    too_many = ~other & ~too_long & (rows.n_images > stage.max_images)
    keep = np.flatnonzero(~other & ~too_long & ~too_many)
    return keep, {"max_seq_len": int(too_long.sum()), "max_images": int(too_many.sum()),
                  "video": int((reasons == "video").sum()), "encode": int((reasons == "encode").sum())}


def target_weights(stage: StageSpec, eligible: np.ndarray) -> np.ndarray:
    """Normalized target shares; zero for sources without eligible samples."""
    sizes = eligible.astype(np.float64)
    if stage.temperature is not None:
        raw = np.where(sizes > 0, sizes ** (1.0 / stage.temperature), 0.0)
    else:
        raw = np.where(sizes > 0, [s.weight for s in stage.sources], 0.0)
    total = raw.sum()
    return raw / total if total > 0 else raw


def source_caps(stage: StageSpec, eligible: np.ndarray) -> np.ndarray:
    """The most draws each source allows (inf when uncapped)."""
    caps = np.full(len(eligible), np.inf)
    for i, spec in enumerate(stage.sources):
        if spec.max_samples is not None:
            caps[i] = min(caps[i], spec.max_samples)
        if spec.max_repeats is not None:
            caps[i] = min(caps[i], math.floor(spec.max_repeats * eligible[i]))
    return caps


def allocate(n: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Integer draws per source summing to min(n, reachable): shares by weight, capped
    sources fixed at their cap and the rest re-shared (water filling), largest remainders."""
    fixed = weights <= 0
    alloc = np.zeros(len(weights))
    while True:
        free = ~fixed
        left = n - alloc[fixed].sum()
        if not free.any() or left <= 0:
            break
        share = np.zeros(len(weights))
        share[free] = left * weights[free] / weights[free].sum()
        over = free & (share >= caps)
        if not over.any():
            alloc[free] = share[free]
            break
        alloc[over] = caps[over]
        fixed |= over
    counts = np.floor(alloc + 1e-9).astype(np.int64)
    short = int(round(min(n, alloc.sum()))) - int(counts.sum())
    frac = np.where(np.isfinite(caps) & (counts >= caps), -1.0, alloc - counts)
    for i in np.argsort(-frac, kind="stable")[:max(short, 0)]:
        counts[i] += 1
    return counts


def interleave(counts: np.ndarray) -> np.ndarray:
    """Source index per position: draw k of source d at time (k + 0.5) / counts[d]."""
    src = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    if len(src) == 0:
        return src
    k = np.arange(len(src)) - np.repeat(np.cumsum(counts) - counts, counts)
    t = (k + 0.5) / counts[src]
    return src[np.lexsort((src, t))]


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """A 64-bit hash per sample key (sha1 prefix), the basis of every permutation."""
    blob = b"".join(hashlib.sha1(str(k).encode()).digest()[:8] for k in keys)
    return np.frombuffer(blob, dtype="<u8").copy()


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _salt(*parts) -> np.uint64:
    digest = hashlib.sha1("\0".join(map(str, parts)).encode()).digest()
    return np.uint64(int.from_bytes(digest[:8], "little"))


def draw_order(hashes: np.ndarray, count: int, salt_parts: tuple) -> np.ndarray:
    """`count` positions into `hashes`: pass after pass, each a hash-ordered permutation."""
    size = len(hashes)
    passes = []
    for p in range(math.ceil(count / size) if size else 0):
        passes.append(np.argsort(_splitmix64(hashes ^ _salt(*salt_parts, p)), kind="stable"))
    return np.concatenate(passes)[:count] if passes else np.zeros(0, dtype=np.int64)


def group_by_length(tokens: np.ndarray, window: int) -> np.ndarray:
    """A permutation of positions: inside each window, longest first (stable)."""
    order = np.arange(len(tokens))
    for start in range(0, len(tokens), window):
        block = order[start:start + window]
        order[start:start + window] = block[np.argsort(-tokens[block], kind="stable")]
    return order


# ---------------------------------------------------------------- building a stage plan

def _draws(n: int, weights, caps, eligible_idx, hashes, seed: int, stage: StageSpec):
    counts = allocate(n, weights, caps)
    source = interleave(counts)
    row = np.zeros(len(source), dtype=np.int64)
    for d, spec in enumerate(stage.sources):
        if counts[d]:
            picks = draw_order(hashes[d], int(counts[d]), (seed, stage.name, spec.label))
            row[source == d] = eligible_idx[d][picks]
    return source, row


def _stage_length(stage: StageSpec, weights, caps, eligible: np.ndarray, means: np.ndarray) -> int:
    """Draws to build: the samples/epochs budget, or enough draws to cover a tokens budget
    in expectation (plus a margin; the plan is then cut at the budget)."""
    reachable = caps[weights > 0].sum()
    if stage.budget.kind == "samples":
        return int(stage.budget.value)
    if stage.budget.kind == "epochs":
        return int(round(stage.budget.value * eligible[weights > 0].sum()))
    if not (means[weights > 0] > 0).any():
        return 0  # samples without tokens can never fill a tokens budget
    lo, hi = 1, 1
    while (allocate(hi, weights, caps) * means).sum() < stage.budget.value and hi < reachable:
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if (allocate(mid, weights, caps) * means).sum() >= stage.budget.value:
            hi = mid
        else:
            lo = mid + 1
    return int(min(math.ceil(hi * 1.05) + len(weights), reachable))


def _draw_to_budget(stage: StageSpec, n: int, weights, caps, eligible_idx, hashes, token_of, seed: int):
    """Draw n; for a tokens budget, grow n until the draws reach the budget, then cut the
    order at the first draw where the cumulative tokens reach it."""
    while True:
        source, row = _draws(n, weights, caps, eligible_idx, hashes, seed, stage)
        if stage.budget.kind != "tokens":
            return source, row
        cum = np.cumsum(_tokens_at(token_of, source, row))
        if len(cum) and cum[-1] >= stage.budget.value:
            cut = int(np.searchsorted(cum, stage.budget.value)) + 1
            return source[:cut], row[:cut]
        if len(source) < n or n >= caps[weights > 0].sum() or n == 0:
            return source, row  # every source is capped: the budget cannot be reached
        n = math.ceil(n * 1.5)


def build_plan(stage: StageSpec, rows: list[SourceRows], seed: int, fingerprint: str = "",
               reasons: list[np.ndarray] | None = None) -> StagePlan:
    """The stage's full sample order (pure: same inputs, same arrays)."""
    kept = [eligibility(r, stage, None if reasons is None else reasons[i]) for i, r in enumerate(rows)]
    eligible_idx = [k for k, _ in kept]
    eligible = np.array([len(k) for k in eligible_idx], dtype=np.int64)
    weights, caps = target_weights(stage, eligible), source_caps(stage, eligible)
    hashes = [key_hashes(r.keys[k]) for r, k in zip(rows, eligible_idx)]
    token_of = [r.tokens for r in rows]
    means = np.array([token_of[d][k].mean() if len(k) else 0.0 for d, k in enumerate(eligible_idx)])
    n = _stage_length(stage, weights, caps, eligible, means) if weights.any() else 0
    source, row = _draw_to_budget(stage, n, weights, caps, eligible_idx, hashes, token_of, seed)
    if stage.length_group_window and len(source):
        order = group_by_length(_tokens_at(token_of, source, row), stage.length_group_window)
        source, row = source[order], row[order]
    plan = StagePlan(stage.name, fingerprint, stage.budget, source, row,
                     _source_plans(stage, rows, kept, weights, caps))
    _count(plan, token_of)
    plan.warnings = _warnings(stage, plan, n)
    return plan


def _tokens_at(token_of: list[np.ndarray], source: np.ndarray, row: np.ndarray) -> np.ndarray:
    out = np.zeros(len(source), dtype=np.int64)
    for d, toks in enumerate(token_of):
        mask = source == d
        out[mask] = toks[row[mask]]
    return out


def _source_plans(stage, rows, kept, weights, caps) -> list[SourcePlan]:
    return [SourcePlan(spec.label, [f"{d}/{s}" for d, s in r.parts], len(r), len(k), dropped,
                       float(weights[i]), None if not np.isfinite(caps[i]) else int(caps[i]))
            for i, (spec, r, (k, dropped)) in enumerate(zip(stage.sources, rows, kept))]


def _count(plan: StagePlan, token_of: list[np.ndarray]) -> None:
    tokens = _tokens_at(token_of, plan.source, plan.row)
    for d, sp in enumerate(plan.sources):
        mask = plan.source == d
        sp.samples, sp.tokens = int(mask.sum()), int(tokens[mask].sum())


def _warnings(stage: StageSpec, plan: StagePlan, n: int) -> list[str]:
    out = []
    for spec, sp in zip(stage.sources, plan.sources):
        if not sp.parts:
            out.append(f"source {sp.pattern!r}: missing (no <dataset>/<split> under the shard root matches it)")
        elif sp.eligible == 0:
            out.append(f"source {sp.pattern!r}: every sample is dropped (over max_seq_len {stage.max_seq_len}: "
                       f"{sp.dropped['max_seq_len']}, over max_images {stage.max_images}: {sp.dropped['max_images']})")
        elif sp.weight == 0:
            out.append(f"source {sp.pattern!r}: zero weight, nothing drawn")
    drawn = len(plan)
    if drawn == 0:
        out.append(f"stage {stage.name!r} draws no samples")
    elif stage.budget.kind == "tokens" and plan.tokens < stage.budget.value:
        out.append(f"budget not reached: caps allow {plan.tokens} of {stage.budget.value:.0f} tokens")
    elif stage.budget.kind != "tokens" and drawn < n:
        out.append(f"budget not reached: caps allow {drawn} of {n} samples")
    return out


# ---------------------------------------------------------------- fingerprint and cache

def fingerprint(stage: StageSpec, rows: list[SourceRows], seed: int) -> str:
    """sha1 of everything the order depends on (not lr, train parts or batch size)."""
    spec = dataclasses.asdict(stage)
    for unused in ("train", "lr", "prompt_style", "batch_size", "warmup_ratio", "weight_decay", "description"):
        spec.pop(unused)
    desc = {"plan_version": PLAN_VERSION, "seed": seed, "stage": spec,
            "sources": [[r.pattern, [list(p) for p in r.parts], r.fingerprint] for r in rows]}
    return hashlib.sha1(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def _meta(plan: StagePlan) -> str:
    return json.dumps({"stage": plan.stage, "fingerprint": plan.fingerprint,
                       "budget": dataclasses.asdict(plan.budget), "warnings": plan.warnings,
                       "sources": [dataclasses.asdict(s) for s in plan.sources]}, sort_keys=True)


def _from_cache(path: Path) -> StagePlan:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        source, row = z["source"], z["row"]
    return StagePlan(meta["stage"], meta["fingerprint"], Budget(**meta["budget"]), source, row,
                     [SourcePlan(**s) for s in meta["sources"]], meta["warnings"])


def plan_stage(stage: StageSpec, rows: list[SourceRows], seed: int, cache_dir: Path | None,
               reasons: list[np.ndarray] | None = None) -> StagePlan:
    """The stage plan, from `cache_dir/<fingerprint>.npz` when present, else built and cached
    (written to a temporary name and renamed, so ranks building at once cannot clash).
    Exact lengths come in as `rows` whose fingerprints name the model, with their `reasons`."""
    fp = fingerprint(stage, rows, seed)
    if cache_dir is None:
        return build_plan(stage, rows, seed, fp, reasons)
    path = Path(cache_dir) / f"{fp}.npz"
    if path.exists():
        return _from_cache(path)
    plan = build_plan(stage, rows, seed, fp, reasons)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{fp}.{os.getpid()}.tmp")
    _write_npz(tmp, {"source": plan.source, "row": plan.row, "meta": np.array(_meta(plan))})
    os.replace(tmp, path)
    return plan


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz with fixed member timestamps (np.savez stamps the current time),
    so the same plan is the same bytes."""
    with zipfile.ZipFile(path, "w") as z:
        for name, array in arrays.items():
            with z.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=False)


# ---------------------------------------------------------------- rank and batch slicing

def num_steps(n: int, batch_size: int, world_size: int) -> int:
    """Global steps in a stage of n draws: the last global batch is completed by wrapping
    around to the stage's first draws, so every rank gets the same number of full batches."""
    return math.ceil(n / (batch_size * world_size)) if n else 0


def batch_positions(n: int, step: int, rank: int, batch_size: int, world_size: int) -> np.ndarray:
    """Plan positions of `rank`'s batch at global step `step`: the global batch is the
    contiguous block [step*G, (step+1)*G) with G = batch_size*world_size, rank r takes the
    r-th sub-block of batch_size (rank slices are disjoint and together cover the block)."""
    start = step * batch_size * world_size + rank * batch_size
    return (start + np.arange(batch_size)) % n
