"""The curriculum spec: a YAML file loaded into frozen dataclasses, validated once, up front.

A curriculum is a list of stages. A stage names its sources (dataset/split globs over a shard
root) and how to mix them (a relative weight per source, or a temperature over source sizes),
optional per-source caps, a budget (samples, tokens or epochs), which model parts train and
their learning rates, the prompt style, image/video settings and the max sequence length.
Every problem is reported as `FILE: where.key: what is wrong`, one line (a `SpecError`, which
the CLI turns into exit code 2).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataengine.errors import UsageError
from dataengine.keys import check_keys
from dataengine.prompts import STYLES

PARTS = ("projector", "vision", "llm", "lora")
BUDGET_KINDS = ("samples", "tokens", "epochs")
NAME_RE = re.compile(r"^[a-z0-9_-]+$")
# "dataset/split", each side a glob over [a-z0-9_-] names: "drivelm/train", "*/train", "nuscenes*/val"
PATTERN_RE = re.compile(r"^[a-z0-9_*?\[\]-]+/[a-z0-9_*?\[\]-]+$")
TASK_RE = re.compile(r"^[a-z0-9_.*?\[\]-]+$")  # a glob over task names such as "planning.trajectory"
# Video samples on a model family without video input (LLaVA-NeXT): fed as multi-image frames,
# or dropped by the plan with a counted reason (`curricula plan --model`).
VIDEO_POLICIES = ("frames", "drop")


class SpecError(UsageError):
    """A curriculum file that breaks the spec; the message names the file and the bad key."""


@dataclass(frozen=True)
class Budget:
    """How long a stage runs: `samples` (global samples drawn), `tokens` (text + visual
    tokens drawn, from the manifests' estimates) or `epochs` (passes over the stage's data)."""

    kind: str
    value: float


@dataclass(frozen=True)
class SourceSpec:
    pattern: str                 # "dataset/split" glob over the shard root, e.g. "drivelm/train", "*/train"
    weight: float | None = None  # relative weight (None when the stage uses temperature)
    max_samples: int | None = None    # at most this many draws from the source in the stage
    max_repeats: float | None = None  # at most this many passes over the source in the stage
    tasks: tuple[str, ...] = ()       # globs over the sample's task ("planning.*"); () keeps every task
    video: str | None = None          # one of VIDEO_POLICIES; None: the stage's

    @property
    def label(self) -> str:
        """The source's name in plans and logs: the pattern, with its task filter when it has one."""
        return self.pattern + (f" [{', '.join(self.tasks)}]" if self.tasks else "")


@dataclass(frozen=True)
class StageSpec:
    name: str
    sources: tuple[SourceSpec, ...]
    temperature: float | None    # sampling weight ~ size**(1/T) when set
    budget: Budget
    train: tuple[str, ...]       # subset of PARTS
    lr: dict[str, float]         # per trained part, e.g. {"projector": 1e-3, "llm": 2e-5}
    prompt_style: str = "robotron"
    frames_per_video: int = 5    # frames kept per video placeholder (evenly spaced, key frame last)
    max_images: int = 8          # samples with more images (after frame subsampling) are dropped
    max_seq_len: int = 8192      # samples with more text + visual tokens are dropped, never truncated
    batch_size: int = 1          # per rank
    grad_accum: int | None = None  # micro-batches per optimizer step; None: the DeepSpeed JSON's (else 1)
    length_group_window: int = 0  # 0: off; N: sort by length inside each window of N planned samples
    video: str = "frames"        # a family without video input: "frames" (as multi-image) or "drop"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    description: str = ""
    val: tuple[str, ...] = ()    # "dataset/split" globs whose loss is logged, never trained on
    val_every: int = 0           # optimizer steps between validations (0: only at the stage's end)
    val_samples: int = 32        # first N samples of each validation split (by key order)


@dataclass(frozen=True)
class Curriculum:
    name: str
    seed: int
    stages: tuple[StageSpec, ...]
    description: str = ""
    path: str = field(default="", compare=False)  # the file it was loaded from, for messages


TOP_KEYS = ("name", "seed", "stages", "description")
STAGE_KEYS = ("name", "sources", "temperature", "budget", "train", "lr", "prompt_style", "frames_per_video",
              "max_images", "max_seq_len", "batch_size", "grad_accum", "length_group_window", "warmup_ratio",
              "weight_decay", "description", "val", "val_every", "val_samples", "video")
SOURCE_KEYS = ("pattern", "weight", "max_samples", "max_repeats", "tasks", "video")


class _Ctx:
    """Builds error messages that name the file and the path of the bad key."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, problem: str) -> SpecError:
        return SpecError(f"{self.path}: {where}: {problem}")

    def keys(self, obj: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
        check_keys(obj, where, allowed, self.fail)
        for key in required:
            if key not in obj:
                raise self.fail(f"{where}.{key}", "missing")
        return obj

    def number(self, value: Any, where: str, *, minimum: float = 0.0, strict: bool = False) -> float:
        """A finite float >= minimum (> when strict). Numeric strings are accepted because
        YAML 1.1 reads `1e-3` (no dot) as text."""
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.fail(where, f"{value!r} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(where, f"{value!r} is not a finite number")
        if value < minimum or (strict and value == minimum):
            raise self.fail(where, f"{value!r} must be {'>' if strict else '>='} {minimum:g}")
        return float(value)

    def integer(self, value: Any, where: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"{value!r} is not an integer")
        if value < minimum:
            raise self.fail(where, f"{value!r} must be >= {minimum}")
        return value

    def text(self, value: Any, where: str, pattern: re.Pattern | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, "must be a non-empty string")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"{value!r} must match {pattern.pattern}")
        return value


def _source(ctx: _Ctx, raw: Any, where: str) -> SourceSpec:
    if isinstance(raw, str):  # shorthand: "drivelm/train" for a source without weight or caps
        raw = {"pattern": raw}
    d = ctx.keys(raw, where, SOURCE_KEYS, ("pattern",))
    pattern = ctx.text(d["pattern"], f"{where}.pattern", PATTERN_RE)
    weight = None if d.get("weight") is None else ctx.number(d["weight"], f"{where}.weight")
    max_samples = None if d.get("max_samples") is None else ctx.integer(d["max_samples"], f"{where}.max_samples")
    max_repeats = (None if d.get("max_repeats") is None
                   else ctx.number(d["max_repeats"], f"{where}.max_repeats", strict=True))
    tasks = d.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise ctx.fail(f"{where}.tasks", "must be a list of task globs, e.g. [planning.*]")
    tasks = tuple(ctx.text(t, f"{where}.tasks[{i}]", TASK_RE) for i, t in enumerate(tasks))
    video = None if d.get("video") is None else _video(ctx, d["video"], f"{where}.video")
    return SourceSpec(pattern, weight, max_samples, max_repeats, tasks, video)


def _video(ctx: _Ctx, value: Any, where: str) -> str:
    if value not in VIDEO_POLICIES:
        raise ctx.fail(where, f"{value!r} must be one of {', '.join(VIDEO_POLICIES)}")
    return value


def _budget(ctx: _Ctx, raw: Any, where: str) -> Budget:
    d = ctx.keys(raw, where, BUDGET_KINDS, ())
    if len(d) != 1:
        raise ctx.fail(where, f"give exactly one of {', '.join(BUDGET_KINDS)}")
    (kind, value), = d.items()
    value = ctx.number(value, f"{where}.{kind}", strict=True)
    if kind != "epochs" and value != int(value):
        raise ctx.fail(f"{where}.{kind}", f"{value!r} must be a whole number")
    return Budget(kind, value)


def _mixing(ctx: _Ctx, sources: tuple[SourceSpec, ...], temperature: float | None, where: str) -> None:
    """Weights XOR temperature, and at least one positive weight."""
    weighted = [s.weight is not None for s in sources]
    if temperature is not None and any(weighted):
        i = weighted.index(True)
        raise ctx.fail(f"{where}.sources[{i}].weight", "a stage with a temperature takes no weights")
    if temperature is None and not all(weighted):
        i = weighted.index(False)
        raise ctx.fail(f"{where}.sources[{i}].weight", "missing (give every source a weight, "
                                                        "or set the stage's temperature)")
    if temperature is None and not any(s.weight > 0 for s in sources):
        raise ctx.fail(f"{where}.sources", "every weight is zero")
    labels = [s.label for s in sources]
    for i, p in enumerate(labels):
        if labels.index(p) != i:
            raise ctx.fail(f"{where}.sources[{i}].pattern", f"{p!r} is listed twice")


def _training(ctx: _Ctx, d: dict, where: str) -> tuple[tuple[str, ...], dict[str, float]]:
    train = d["train"]
    if not isinstance(train, list) or not train:
        raise ctx.fail(f"{where}.train", f"must be a non-empty list of parts ({', '.join(PARTS)})")
    for part in train:
        if part not in PARTS:
            raise ctx.fail(f"{where}.train", f"unknown part {part!r}; parts: {', '.join(PARTS)}")
    if len(set(train)) != len(train):
        raise ctx.fail(f"{where}.train", "a part is listed twice")
    lr = ctx.keys(d["lr"], f"{where}.lr", PARTS, tuple(train))
    for part in lr:
        if part not in train:
            raise ctx.fail(f"{where}.lr.{part}", f"{part!r} is not trained in this stage (train: {train})")
    return tuple(train), {p: ctx.number(lr[p], f"{where}.lr.{p}", strict=True) for p in train}


def _stage(ctx: _Ctx, raw: Any, where: str) -> StageSpec:
    d = ctx.keys(raw, where, STAGE_KEYS, ("name", "sources", "budget", "train", "lr"))
    name = ctx.text(d["name"], f"{where}.name", NAME_RE)
    if not isinstance(d["sources"], list) or not d["sources"]:
        raise ctx.fail(f"{where}.sources", "must be a non-empty list")
    sources = tuple(_source(ctx, s, f"{where}.sources[{i}]") for i, s in enumerate(d["sources"]))
    temperature = (None if d.get("temperature") is None
                   else ctx.number(d["temperature"], f"{where}.temperature", strict=True))
    _mixing(ctx, sources, temperature, where)
    train, lr = _training(ctx, d, where)
    style = d.get("prompt_style", "robotron")
    if style not in STYLES:
        raise ctx.fail(f"{where}.prompt_style", f"unknown style {style!r}; known: {', '.join(STYLES)}")
    ints = {k: ctx.integer(d[k], f"{where}.{k}") for k in
            ("frames_per_video", "max_images", "max_seq_len", "batch_size", "grad_accum") if k in d}
    if "length_group_window" in d:
        ints["length_group_window"] = ctx.integer(d["length_group_window"], f"{where}.length_group_window", 0)
    if "val_every" in d:
        ints["val_every"] = ctx.integer(d["val_every"], f"{where}.val_every", 0)
    if "val_samples" in d:
        ints["val_samples"] = ctx.integer(d["val_samples"], f"{where}.val_samples")
    floats = {k: ctx.number(d[k], f"{where}.{k}") for k in ("warmup_ratio", "weight_decay") if k in d}
    if floats.get("warmup_ratio", 0.0) > 1:
        raise ctx.fail(f"{where}.warmup_ratio", "must be <= 1")
    description = str(d.get("description", ""))
    if "video" in d:
        floats["video"] = _video(ctx, d["video"], f"{where}.video")
    return StageSpec(name, sources, temperature, _budget(ctx, d["budget"], f"{where}.budget"), train, lr,
                     prompt_style=style, description=description, val=_val(ctx, d.get("val", []), where),
                     **ints, **floats)


def _val(ctx: _Ctx, raw: Any, where: str) -> tuple[str, ...]:
    """Validation splits: "dataset/split" globs, like sources' patterns."""
    if not isinstance(raw, list):
        raise ctx.fail(f"{where}.val", "must be a list of dataset/split patterns, e.g. [nuscenes/val]")
    return tuple(ctx.text(p, f"{where}.val[{i}]", PATTERN_RE) for i, p in enumerate(raw))


def parse_curriculum(raw: Any, path: str = "<curriculum>") -> Curriculum:
    """Validate a parsed YAML document; raises SpecError naming `path` and the bad key."""
    ctx = _Ctx(str(path))
    d = ctx.keys(raw, "curriculum", TOP_KEYS, ("name", "seed", "stages"))
    name = ctx.text(d["name"], "name", NAME_RE)
    seed = ctx.integer(d["seed"], "seed", 0)
    if not isinstance(d["stages"], list) or not d["stages"]:
        raise ctx.fail("stages", "must be a non-empty list")
    stages = tuple(_stage(ctx, s, f"stages[{i}]") for i, s in enumerate(d["stages"]))
    names = [s.name for s in stages]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ctx.fail(f"stages[{i}].name", f"{n!r} is used by stage {names.index(n)} too")
    return Curriculum(name, seed, stages, str(d.get("description", "")), str(path))


def load_curriculum(path) -> Curriculum:
    """Read and validate a curriculum YAML file (a preset name such as `demo` also works)."""
    path = resolve_path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    return parse_curriculum(raw, str(path))


def presets() -> dict[str, Path]:
    """The preset curricula shipped in this package, by name."""
    here = Path(__file__).parent
    return {p.stem: p for p in sorted(here.glob("*.yaml"))}


def resolve_path(path) -> Path:
    """A file path, or the name of a preset (`demo`, `robotron_drive`, `opendrivevla`)."""
    p = Path(path)
    if p.is_file():
        return p
    known = presets()
    if str(path) in known:
        return known[str(path)]
    raise SpecError(f"{path}: no such file, and not a preset ({', '.join(known)})")
