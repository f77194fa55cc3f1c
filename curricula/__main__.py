"""The `curricula` command line: `curricula plan FILE --shards DIR [--model tiny|DIR] [--json]`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from dataengine.command import OneLineParser, run_command
from dataengine.errors import UsageError


def _cmd_plan(args: argparse.Namespace) -> int:
    from curricula.lengths import ExactLengths
    from curricula.plan import format_text, plan_curriculum, to_json
    from curricula.sampler import PLAN_CACHE
    from curricula.spec import load_curriculum

    curriculum = load_curriculum(args.file)
    root = Path(args.shards)
    if not root.is_dir():
        raise UsageError(f"--shards {root}: not a directory")
    cache = None if args.no_cache else Path(args.cache_dir) if args.cache_dir else root / PLAN_CACHE
    lengths = ExactLengths.from_model(args.model, args.chat_format) if args.model else None
    stages = plan_curriculum(curriculum, root, cache, lengths)
    if args.json:
        print(json.dumps(to_json(curriculum, root, stages, args.model), indent=2, sort_keys=True))
    else:
        print(format_text(curriculum, root, stages, args.model), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="curricula", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    p = sub.add_parser("plan", help="print what each stage draws from the shards, with warnings")
    p.add_argument("file", help="curriculum YAML, or a preset name (demo, robotron_drive, opendrivevla)")
    p.add_argument("--shards", required=True, help="shard root holding <dataset>/<split>/manifest.parquet")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--model", default=None, help="tiny, tiny-next, or a local HF model directory: exact lengths "
                   "with its tokenizer, chat format and config, as training counts them; without it, estimates")
    p.add_argument("--chat-format", default="auto", choices=("auto", "chatml", "llama3"),
                   help="with --model: the chat format training uses (as python -m train --chat-format)")
    p.add_argument("--cache-dir", default=None, help="where stage plans are cached (default: SHARDS/_plans)")
    p.add_argument("--no-cache", action="store_true", help="build the plans without reading or writing the cache")
    p.set_defaults(fn=_cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("curricula", lambda: args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())
