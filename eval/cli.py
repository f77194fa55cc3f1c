"""`python -m eval`: predict, score and report, on seen and unseen benchmarks.

    python -m eval --run RUN_DIR  --benchmarks seen unseen --shards DIR --out DIR [--compare]
    python -m eval --model PATH|tiny --benchmarks maplm nuscenes_qa --shards DIR --out DIR [--zero-shot]
    python -m eval score BENCHMARK --predictions FILE --references FILE --out DIR   (another model's predictions)

`--run` evaluates the run's last finished stage ("fine_tuned"); with `--compare` also the
model the run started from, prompted zero-shot ("zero_shot": each benchmark's
zero_shot_prompt, e.g. chain-of-thought planning), on the same samples, in one report.
Re-running the same command resumes generation where it stopped; `--score-only` re-scores
existing predictions on a CPU machine. Under `torchrun` every rank generates a disjoint
share; rank 0 merges, scores and writes the report.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

from dataengine.command import OneLineParser, run_command
from dataengine.errors import UsageError
from vlm.dist import DistEnv


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--run", help="training run directory: evaluates its last finished stage")
    src.add_argument("--model", help="a local HF model directory, or tiny / tiny-next (random, for checks)")
    p.add_argument("--benchmarks", nargs="+", default=["seen", "unseen"], help="group or benchmark names")
    p.add_argument("--shards", default="shards", help="shard root holding the benchmarks' dataset/split folders")
    p.add_argument("--out", help="output folder (re-running the same command resumes)")
    p.add_argument("--compare", action="store_true", help="with --run: also the base model, zero-shot prompted")
    p.add_argument("--zero-shot", action="store_true", help="with --model: use the benchmarks' zero-shot prompts")
    p.add_argument("--limit", type=int, help="at most N samples per benchmark")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, help="override every benchmark's max_new_tokens")
    p.add_argument("--score-only", action="store_true", help="score existing predictions; load no model")
    p.add_argument("--judge-url", help="OpenAI-compatible endpoint for judged metrics, e.g. http://host:8000/v1")
    p.add_argument("--judge-model", help="the judge's model name at that endpoint")
    p.add_argument("--judge-temperature", type=float, default=0.0)
    p.add_argument("--judge-api-key-env", default="", help="environment variable holding the judge's API key")
    p.add_argument("--lingo-judge", help="local Lingo-Judge weights directory (LingoQA's learned judge)")
    p.add_argument("--skip-meteor", action="store_true", help="leave METEOR out (its JVM takes ~10 s to start)")
    p.add_argument("--benchmarks-dir", help="extra benchmark YAMLs; a name here replaces the shipped one")
    p.add_argument("--groups", help="a groups YAML replacing eval/groups.yaml")
    p.add_argument("--seed", type=int, default=0, help="seed of the tiny models")
    p.add_argument("--list", action="store_true", help="list benchmarks and groups, then exit")
    return p


@dataclass(frozen=True)
class Variant:
    name: str
    model: str
    zero_shot: bool
    label: str


def variants(args) -> list[Variant]:
    from eval.predictor import base_model, check_model, last_stage

    if args.run:
        fine = last_stage(Path(args.run))
        out = [Variant("fine_tuned", str(fine), False, f"{args.run} stage {fine.name}")]
        if args.compare:
            out.insert(0, Variant("zero_shot", base_model(Path(args.run)), True, f"{args.run} base model, zero-shot"))
        return out
    if args.compare:
        raise UsageError("--compare needs --run (its zero-shot side is the run's base model)")
    if not args.model:
        raise UsageError("give --run RUN_DIR or --model PATH|tiny")
    if not args.score_only:
        check_model(args.model)
    name = "zero_shot" if args.zero_shot else "model"
    return [Variant(name, args.model, args.zero_shot, args.model + (" (zero-shot prompts)" if args.zero_shot else ""))]


def _dist() -> DistEnv:
    """This rank's place in the launch; under torchrun the ranks meet in a gloo group
    (barriers only: every rank generates on its own)."""
    env = DistEnv.read()
    if env.world_size > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
    return env


def _finish() -> None:
    """Leave the process group `_dist` joined (torchrun, several ranks) so every rank exits
    cleanly; a group someone else made in this process (a trainer, a test) is left alone."""
    if DistEnv.read().world_size <= 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def check_args(args) -> None:
    if args.list:
        return
    if not args.out:
        raise UsageError("--out DIR is required")
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1) or (args.max_new_tokens or 1) < 1:
        raise UsageError("--batch-size, --limit and --max-new-tokens must be >= 1")
    if bool(args.judge_url) != bool(args.judge_model):
        raise UsageError("--judge-url and --judge-model go together")
    if args.lingo_judge and not (Path(args.lingo_judge) / "config.json").is_file():
        raise UsageError(f"--lingo-judge {args.lingo_judge}: not a model directory (no config.json)")
    if not args.score_only and not Path(args.shards).is_dir():
        raise UsageError(f"--shards {args.shards}: not a directory (make demo writes demo-out/shards)")


def run(args) -> int:
    from eval import report
    from eval.registry import load_registry
    from eval.runner import Plan, RunConfig, make_plan
    from eval.score import score_variant

    check_args(args)
    registry = load_registry(args.benchmarks_dir, args.groups)
    if args.list:
        return _list(registry)
    benches = registry.select(args.benchmarks)
    chosen = variants(args)
    out = Path(args.out)
    env = _dist()
    shards = Path(args.shards)
    base = RunConfig(shards, out, tuple(benches), "", batch_size=args.batch_size, limit=args.limit,
                     max_new_tokens=args.max_new_tokens, rank=env.rank, world_size=env.world_size)
    plan = make_plan(base) if shards.is_dir() else Plan()
    judge = _judge(args, out)  # a bad judge setting fails here, before any generation
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        _write_config(out, args)
        contamination = _contamination(args, benches, registry, shards, out)
    _predict_all(chosen, base, plan, env, args)
    if not env.is_main:
        return 0
    scores = {v.name: score_variant(out / v.name, benches, plan.missing, judge=judge,
                                    lingo_judge=Path(args.lingo_judge) if args.lingo_judge else None,
                                    meteor=not args.skip_meteor) for v in chosen}
    groups = {b.name: registry.group_of(b.name) for b in benches}
    paths = report.write(out, scores, groups, contamination, [b.name for b in benches])
    _print_summary(paths, scores, contamination)
    return 0


def _predict_all(chosen: list[Variant], base, plan, env: DistEnv, args) -> None:
    """Generate every variant (this rank's share), then merge each on rank 0."""
    from eval.predictions import PARTS, merge

    for v in chosen:
        if not args.score_only:
            _generate(v, base, plan, env, args)
        _barrier(base.world_size)
        parts = base.out / v.name / PARTS
        if base.rank == 0 and plan.order and parts.is_dir():  # with --score-only too: a run killed before its merge
            merge(base.out / v.name, plan.order)


def _generate(v: Variant, base, plan, env: DistEnv, args) -> None:
    from eval.predictor import HFPredictor
    from eval.runner import predict

    predictor = HFPredictor(v.model, device=str(env.device()), seed=args.seed, label=v.label)
    cfg = replace(base, out=base.out / v.name, variant=v.name, zero_shot=v.zero_shot)
    written = predict(cfg, predictor, plan)
    print(f"[eval {v.name}] rank {cfg.rank}: {sum(written.values())} new predictions", flush=True)


def _contamination(args, benches, registry, shards: Path, out: Path) -> dict:
    from eval.contamination import assess, training_parts

    if not shards.is_dir():
        return {"basis": f"unknown: no shard root at {shards}", "benchmarks": {}}
    unseen = set(registry.groups.get("unseen", ()))
    parts, basis = training_parts(Path(args.run), shards) if args.run else (None, "")
    return assess(shards, benches, unseen, parts, basis, out / "audit")


def _judge(args, out: Path):
    if not args.judge_url:
        return None
    from eval.judge import Judge, JudgeConfig

    cfg = JudgeConfig(args.judge_url, args.judge_model, args.judge_temperature, api_key_env=args.judge_api_key_env)
    return Judge(cfg, cache_dir=out)


def _write_config(out: Path, args) -> None:
    """The command's settings (no secret is ever an argument: the judge key stays in the environment)."""
    (out / "eval_config.json").write_text(json.dumps(vars(args), indent=2, sort_keys=True, default=str) + "\n")


def _list(registry) -> int:
    for name, b in sorted(registry.benchmarks.items()):
        print(f"{name:20s} {registry.group_of(name):7s} {b.dataset}/{b.split}  metrics: {', '.join(b.metrics)}")
    for g, names in registry.groups.items():
        print(f"group {g}: {' '.join(names)}")
    return 0


def _print_summary(paths: list[Path], scores: dict, contamination: dict) -> None:
    for v, s in scores.items():
        for name, b in s["benchmarks"].items():
            heads = ", ".join(f"{h['metric']}={b['metrics'].get(h['metric'], {}).get('value')}"
                              for h in b.get("headline", []))
            flag = contamination.get("benchmarks", {}).get(name, {}).get("contaminated")
            print(f"[eval {v}] {name}: {b.get('samples', 0)} samples, {b.get('failures', 0)} failures; "
                  f"{heads or b.get('status', '')}{'  CONTAMINATED' if flag else ''}")
    print("report: " + ", ".join(str(p) for p in paths))


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["score"]:  # `python -m eval score BENCHMARK ...`: external predictions (eval/submissions.py)
        from eval.submissions import main as score_main

        return score_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return run_command("eval", lambda: run(args))
    finally:
        _finish()
