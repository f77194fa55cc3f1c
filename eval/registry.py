"""Benchmarks and groups, read from YAML: a benchmark is one file, a group is a list of names.

A benchmark names the shards it reads (`dataset`, `split`, optional `tasks` filter), how
its prompts are built (a `dataengine.prompts` style plus optional text before or after the
question, and a separate prompt for zero-shot evaluation, e.g. OpenEMMA-style chain of
thought for planning), its decoding settings, the scorers that compute its metrics
(eval/metrics) and the headline metrics the report plots. `eval/benchmarks/*.yaml` and
`eval/groups.yaml` ship the defaults; `--benchmarks-dir DIR` adds or replaces benchmarks
by name and `--groups FILE` replaces the groups. Every problem is reported as
`FILE: key: what is wrong` (a `UsageError`, exit code 2), before anything runs.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataengine.errors import UsageError
from dataengine.heldout import UNSEEN_DATASETS
from dataengine.keys import check_keys
from dataengine.prompts import STYLES
from eval.prompting import REASONING, PromptSpec

PACKAGE = Path(__file__).parent
BENCHMARKS_DIR = PACKAGE / "benchmarks"
GROUPS_FILE = PACKAGE / "groups.yaml"
KEYS = ("name", "description", "dataset", "split", "tasks", "prompt", "zero_shot_prompt", "generation",
        "frames_per_video", "metrics", "metric_args", "headline", "version")
PROMPT_KEYS = ("style", "pre_prompt", "post_prompt", "reasoning", "answer_marker")
GENERATION_KEYS = ("max_new_tokens", "temperature", "top_p", "num_beams")


@dataclass(frozen=True)
class Decoding:
    """Generation settings; temperature 0 is greedy decoding."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    num_beams: int = 1


@dataclass(frozen=True)
class Headline:
    metric: str                  # a key of the benchmark's scores, e.g. "accuracy", "l2_avg.uniad"
    higher_is_better: bool = True


@dataclass(frozen=True)
class Benchmark:
    name: str
    dataset: str
    split: str
    metrics: tuple[str, ...]                     # scorer names (eval.metrics.SCORERS)
    description: str = ""
    tasks: tuple[str, ...] = ()                  # keep samples of these tasks only; () keeps all
    prompt: PromptSpec = PromptSpec()
    zero_shot_prompt: PromptSpec = PromptSpec()
    generation: Decoding = Decoding()
    frames_per_video: int = 8                    # at most this many frames per video, evenly spaced
    metric_args: dict = field(default_factory=dict)
    headline: tuple[Headline, ...] = ()
    version: int = 1
    source: str = ""                             # the YAML file it came from

    def fingerprint(self) -> str:
        """sha1 over everything that changes predictions or scores (not the file path)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("source", "description")}
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def prompt_for(self, zero_shot: bool) -> PromptSpec:
        return self.zero_shot_prompt if zero_shot else self.prompt


@dataclass(frozen=True)
class Registry:
    benchmarks: dict[str, Benchmark]
    groups: dict[str, tuple[str, ...]]

    def group_of(self, name: str) -> str:
        """The first group listing the benchmark, or "other"."""
        return next((g for g, names in self.groups.items() if name in names), "other")

    def select(self, names: list[str]) -> list[Benchmark]:
        """Benchmarks for `--benchmarks`: group names expand, order kept, repeats dropped."""
        out: dict[str, Benchmark] = {}
        for name in names:
            for b in self.groups.get(name, (name,)):
                if b not in self.benchmarks:
                    raise UsageError(f"--benchmarks {name!r}: unknown benchmark {b!r}; "
                                     f"known: {', '.join(sorted(self.benchmarks))}; groups: {', '.join(self.groups)}")
                out.setdefault(b, self.benchmarks[b])
        return list(out.values())


class _Ctx:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, problem: str) -> UsageError:
        return UsageError(f"{self.path}: {where}: {problem}")

    def mapping(self, obj: Any, where: str, allowed: tuple[str, ...]) -> dict:
        return check_keys(obj, where, allowed, self.fail)

    def strings(self, obj: Any, where: str) -> tuple[str, ...]:
        if not isinstance(obj, list) or not all(isinstance(x, str) and x for x in obj):
            raise self.fail(where, "must be a list of non-empty strings")
        return tuple(obj)


def _prompt(ctx: _Ctx, raw: Any, where: str, base: PromptSpec | None = None) -> PromptSpec:
    d = ctx.mapping(raw or {}, where, PROMPT_KEYS)
    for key, value in d.items():
        if not isinstance(value, str):
            raise ctx.fail(f"{where}.{key}", "must be a string")
    spec = PromptSpec(**{**asdict(base or PromptSpec()), **d})
    if spec.style not in STYLES:
        raise ctx.fail(f"{where}.style", f"{spec.style!r} is not a prompt style; known: {', '.join(STYLES)}")
    if spec.reasoning and spec.reasoning not in REASONING:
        raise ctx.fail(f"{where}.reasoning", f"{spec.reasoning!r} unknown; known: {', '.join(REASONING)}")
    return spec


def _generation(ctx: _Ctx, raw: Any) -> Decoding:
    d = ctx.mapping(raw or {}, "generation", GENERATION_KEYS)
    try:
        gen = Decoding(**{**asdict(Decoding()), **d})
    except TypeError as exc:
        raise ctx.fail("generation", str(exc)) from None
    if not (isinstance(gen.max_new_tokens, int) and gen.max_new_tokens >= 1 and gen.num_beams >= 1
            and gen.temperature >= 0 and 0 < gen.top_p <= 1):
        raise ctx.fail("generation", "needs max_new_tokens >= 1, num_beams >= 1, temperature >= 0, 0 < top_p <= 1")
    return gen


def _headline(ctx: _Ctx, raw: Any) -> tuple[Headline, ...]:
    if not isinstance(raw, list):
        raise ctx.fail("headline", "must be a list of {metric, higher_is_better}")
    out = []
    for i, item in enumerate(raw):
        d = ctx.mapping({"metric": item} if isinstance(item, str) else item, f"headline[{i}]",
                        ("metric", "higher_is_better"))
        if not isinstance(d.get("metric"), str):
            raise ctx.fail(f"headline[{i}].metric", "missing")
        out.append(Headline(d["metric"], bool(d.get("higher_is_better", True))))
    return tuple(out)


def parse_benchmark(raw: Any, path: Path) -> Benchmark:
    """One benchmark YAML document, validated."""
    from eval.metrics import SCORERS

    ctx = _Ctx(path)
    d = ctx.mapping(raw, "<top>", KEYS)
    for key in ("name", "dataset", "split", "metrics"):
        if key not in d:
            raise ctx.fail(key, "missing")
    metrics = ctx.strings(d["metrics"], "metrics")
    unknown = [m for m in metrics if m not in SCORERS]
    if unknown:
        raise ctx.fail("metrics", f"unknown scorer(s) {unknown}; known: {', '.join(sorted(SCORERS))}")
    if not isinstance(d.get("metric_args", {}), dict):
        raise ctx.fail("metric_args", "must be a mapping")
    fpv = d.get("frames_per_video", 8)
    if not isinstance(fpv, int) or fpv < 1:
        raise ctx.fail("frames_per_video", "must be an integer >= 1")
    prompt = _prompt(ctx, d.get("prompt"), "prompt")
    return Benchmark(
        name=str(d["name"]), dataset=str(d["dataset"]), split=str(d["split"]), metrics=metrics,
        description=str(d.get("description", "")).strip(), tasks=ctx.strings(d.get("tasks", []) or [], "tasks")
        if d.get("tasks") else (), prompt=prompt,
        zero_shot_prompt=_prompt(ctx, d.get("zero_shot_prompt"), "zero_shot_prompt", base=prompt),
        generation=_generation(ctx, d.get("generation")), frames_per_video=fpv,
        metric_args=dict(d.get("metric_args", {})), headline=_headline(ctx, d.get("headline", [])),
        version=int(d.get("version", 1)), source=str(path))


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_benchmarks(dirs: list[Path]) -> dict[str, Benchmark]:
    """Every `*.yaml` of each directory in turn; a later file replaces a benchmark of the same name."""
    out: dict[str, Benchmark] = {}
    for d in dirs:
        if not Path(d).is_dir():
            raise UsageError(f"--benchmarks-dir {d}: not a directory")
        for path in sorted(Path(d).glob("*.yaml")):
            bench = parse_benchmark(_read_yaml(path), path)
            out[bench.name] = bench
    return out


def load_groups(path: Path, benchmarks: dict[str, Benchmark]) -> dict[str, tuple[str, ...]]:
    raw = _read_yaml(Path(path))
    ctx = _Ctx(Path(path))
    if not isinstance(raw, dict) or not raw:
        raise ctx.fail("<top>", "must map group names to lists of benchmark names")
    groups = {}
    for name, members in raw.items():
        groups[str(name)] = ctx.strings(members, str(name))
        missing = [m for m in groups[str(name)] if m not in benchmarks]
        if missing:
            raise ctx.fail(str(name), f"unknown benchmark(s) {missing}; known: {', '.join(sorted(benchmarks))}")
        if str(name) in benchmarks:
            raise ctx.fail(str(name), "a group cannot have a benchmark's name")
    if "unseen" not in groups:  # derived from the one declaration of held-out datasets
        groups["unseen"] = tuple(sorted(b for b, bench in benchmarks.items() if bench.dataset in UNSEEN_DATASETS))
    return groups


def load_registry(extra_dir: Path | None = None, groups_file: Path | None = None) -> Registry:
    """The shipped benchmarks (plus `extra_dir`'s, which win) and groups (or `groups_file`)."""
    dirs = [BENCHMARKS_DIR] + ([Path(extra_dir)] if extra_dir else [])
    benchmarks = load_benchmarks(dirs)
    return Registry(benchmarks, load_groups(Path(groups_file) if groups_file else GROUPS_FILE, benchmarks))
