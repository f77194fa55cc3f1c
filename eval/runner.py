"""Generation over benchmarks: every selected benchmark's samples, in batches, written as they finish.

Work order is fixed: benchmarks in `--benchmarks` order, samples in manifest order (after
the benchmark's task filter and `--limit`). Rank r of W takes every W-th item of that
list, so ranks never overlap, and skips items any earlier run already wrote (see
eval/predictions.py). A sample with several questions (BDD-X: action, then justification)
is asked turn by turn, each turn seeing the model's own earlier answers, never the
references. A benchmark whose shards are missing is reported and skipped; the others run.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from dataengine.errors import UsageError
from dataengine.manifest import MANIFEST
from dataengine.reader import DatasetReader
from eval.predictions import PartWriter, check_same_run, done_rows
from eval.predictor import Generation, Predictor, Request, decoding_record
from eval.prompting import conversation_upto, prompt_sha1, reduce_media, references, turns, user_turns
from eval.registry import Benchmark, Decoding

SAMPLE_FIELDS = ("scene_id", "frame_id", "layout", "meta", "trajectory", "objects", "ego", "command")


@dataclass(frozen=True)
class RunConfig:
    shards: Path
    out: Path                          # this variant's folder (parts/, predictions.jsonl)
    benchmarks: tuple[Benchmark, ...]
    variant: str                       # "fine_tuned", "zero_shot" or "model"
    zero_shot: bool = False            # use each benchmark's zero_shot_prompt
    batch_size: int = 8
    limit: int | None = None           # at most this many samples per benchmark
    max_new_tokens: int | None = None  # overrides every benchmark's generation.max_new_tokens
    rank: int = 0
    world_size: int = 1


@dataclass
class Plan:
    """What the run covers: (benchmark, id) in order, and benchmarks that could not be read."""

    order: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


@dataclass
class Loaded:
    key: str
    sample: dict
    user: list[str]
    groups: list[list[int]]
    kinds: list[str]
    images: list
    sha1: str
    media_sizes: list[list[int]]


def shard_problem(root: Path, bench: Benchmark) -> str | None:
    """Why a benchmark's shards cannot be read, or None."""
    d = Path(root) / bench.dataset / bench.split
    if not (d / MANIFEST).is_file():
        return f"no shards at {d} (convert {bench.dataset} with a {bench.split} split first)"
    reader = DatasetReader(root, bench.dataset, bench.split)
    absent = sorted({s for s in reader.manifest.column("shard").to_pylist() if not (d / s).is_file()})
    return f"{d}: shard file(s) {', '.join(absent)} missing" if absent else None


def benchmark_keys(root: Path, bench: Benchmark, limit: int | None) -> list[str]:
    reader = DatasetReader(root, bench.dataset, bench.split)
    keys = reader.manifest.column("key").to_pylist()
    tasks = reader.manifest.column("task").to_pylist()
    keys = [k for k, t in zip(keys, tasks) if not bench.tasks or t in bench.tasks]
    return keys[:limit] if limit is not None else keys


def make_plan(cfg: RunConfig) -> Plan:
    plan = Plan()
    for bench in cfg.benchmarks:
        problem = shard_problem(cfg.shards, bench)
        if problem:
            plan.missing[bench.name] = problem
            continue
        keys = benchmark_keys(cfg.shards, bench, cfg.limit)
        plan.counts[bench.name] = len(keys)
        plan.order += [(bench.name, k) for k in keys]
    if not plan.order and plan.missing:
        raise UsageError("no benchmark has shards: " + "; ".join(f"{b}: {why}" for b, why in plan.missing.items()))
    return plan


def load(reader: DatasetReader, key: str, bench: Benchmark, zero_shot: bool, decode) -> Loaded:
    """A benchmark sample rendered for the model; `decode` is the predictor's (training's) image path."""
    stored = reader.get(key)
    sample, _ = reduce_media(stored.sample, bench.frames_per_video)
    spec = bench.prompt_for(zero_shot)
    user, rendered = user_turns(sample, spec)
    images = decode([stored.media[m["member"]] for m in sample["media"]], rendered.groups, rendered.kinds)
    return Loaded(key, sample, user, rendered.groups, rendered.kinds, images, prompt_sha1(user, spec, rendered.kinds),
                  [[m["width"], m["height"]] for m in sample["media"]])


def _signature(item: Loaded) -> tuple[int, ...]:
    """Video frame counts: a batch must share them (the model stacks videos)."""
    return tuple(sorted({len(g) for g, k in zip(item.groups, item.kinds) if k == "video"}))


def generate_turns(predictor: Predictor, items: list[Loaded], decoding: Decoding) -> list[tuple[list[str], str | None]]:
    """Answers per item, turn by turn; an item whose turn fails keeps "" for its remaining turns."""
    answers: list[list[str]] = [[] for _ in items]
    errors: list[str | None] = [None] * len(items)
    for k in range(max(len(it.user) for it in items)):
        idx = [i for i, it in enumerate(items) if k < len(it.user) and errors[i] is None]
        if not idx:
            break
        reqs = [Request(items[i].key, conversation_upto(items[i].user, answers[i], k), items[i].groups,
                        items[i].kinds, items[i].images) for i in idx]
        gens: list[Generation] = predictor.generate(reqs, decoding)
        for i, gen in zip(idx, gens):
            answers[i].append(gen.text)
            errors[i] = gen.error
    return [(a + [""] * (len(it.user) - len(a)), e) for a, e, it in zip(answers, errors, items)]


def make_row(cfg: RunConfig, bench: Benchmark, item: Loaded, answers: list[str], error: str | None,
             predictor: Predictor, decoding: Decoding) -> dict:
    spec = bench.prompt_for(cfg.zero_shot)
    sample = item.sample
    return {
        "benchmark": bench.name, "benchmark_version": bench.version, "benchmark_sha1": bench.fingerprint(),
        "variant": cfg.variant, "id": item.key, "dataset": sample["dataset"], "split": sample["split"],
        "task": sample["task"], "prompt_sha1": item.sha1,
        "prompt": {"style": spec.style, "reasoning": spec.reasoning, "answer_marker": spec.answer_marker},
        "questions": [t.question for t in turns(sample)], "prediction": answers, "references": references(sample),
        "error": error, "model": predictor.identity, "decoding": decoding_record(decoding),
        "sample": {**{k: sample[k] for k in SAMPLE_FIELDS if k in sample}, "media_sizes": item.media_sizes},
    }


def decoding_for(cfg: RunConfig, bench: Benchmark) -> Decoding:
    return replace(bench.generation, max_new_tokens=cfg.max_new_tokens or bench.generation.max_new_tokens)


def _check_resume(cfg: RunConfig, done: dict, predictor: Predictor) -> None:
    benches = {b.name: (b.fingerprint(), decoding_record(decoding_for(cfg, b))) for b in cfg.benchmarks}
    for (name, _), row in done.items():
        if name in benches:
            check_same_run(row, predictor.identity, *benches[name], cfg.out)


def predict(cfg: RunConfig, predictor: Predictor, plan: Plan, progress=print) -> dict[str, int]:
    """Generate this rank's share of `plan` not yet done; returns rows written per benchmark."""
    done = done_rows(cfg.out)
    _check_resume(cfg, done, predictor)
    mine = [item for i, item in enumerate(plan.order) if i % cfg.world_size == cfg.rank and item not in done]
    written: dict[str, int] = {}
    writer = PartWriter(cfg.out, cfg.rank)
    try:
        for bench in cfg.benchmarks:
            keys = [k for b, k in mine if b == bench.name]
            if keys:
                written[bench.name] = _predict_benchmark(cfg, bench, keys, predictor, writer, progress)
    finally:
        writer.close()
    return written


def _predict_benchmark(cfg: RunConfig, bench: Benchmark, keys: list[str], predictor: Predictor,
                       writer: PartWriter, progress) -> int:
    reader = DatasetReader(cfg.shards, bench.dataset, bench.split)
    decoding = decoding_for(cfg, bench)
    n = 0
    for start in range(0, len(keys), cfg.batch_size):
        chunk = keys[start:start + cfg.batch_size]
        items = [load(reader, k, bench, cfg.zero_shot, predictor.decode) for k in chunk]
        for sig in dict.fromkeys(_signature(it) for it in items):
            group = [it for it in items if _signature(it) == sig]
            results = generate_turns(predictor, group, decoding)
            writer.write_batch([make_row(cfg, bench, it, answers, error, predictor, decoding)
                                for it, (answers, error) in zip(group, results)])
            n += len(group)
        progress(f"[eval {cfg.variant}] {bench.name}: {min(start + cfg.batch_size, len(keys))}/{len(keys)} "
                 f"(rank {cfg.rank})")
    return n
