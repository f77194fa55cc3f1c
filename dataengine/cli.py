"""The `dataengine` command line: convert, build, validate, stats, audit, export-llava, export-webdataset,
fixtures, list."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from dataengine import show
from dataengine.command import OneLineParser, run_command
from dataengine.converter import get, parse_options, registry
from dataengine.errors import UsageError
from dataengine.fixtures import fixture_jobs
from dataengine.heldout import UNSEEN_DATASETS


def _converter_option_flags(parser: argparse.ArgumentParser, cls) -> None:
    """The named converter's typed options become flags (e.g. --nuscenes-root, --version).
    Only that converter is imported, so one broken plugin cannot take the CLI down."""
    for f in dataclasses.fields(cls.options_type):
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f"opt_{f.name}", default=None,
                            help=f"{cls.name} option (default {f.default!r})")


def _cmd_convert(args: argparse.Namespace) -> int:
    from dataengine.job import JobConfig, run_job

    cls = get(args.dataset)
    raw = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_")}
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    cfg = JobConfig(dataset=args.dataset, src=Path(args.src), out=Path(args.out),
                    options=parse_options(cls, raw), splits=tuple(args.split or ()), workers=args.workers,
                    address=args.address, limit=args.limit, shard_bytes=int(args.shard_mb * 1024 * 1024))
    result = run_job(cfg)
    for split in result.skipped_splits:
        print(f"{args.dataset}/{split}: up to date, nothing to do")
    for split, card in result.cards.items():
        c = card["counts"]
        print(f"{args.dataset}/{split}: {c['samples']} samples in {c['shards']} shards, "
              f"{c['quarantined']} quarantined, {c['records_in']} records in")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from dataengine.build import BuildConfig
    from dataengine.build import main as build

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    return build(BuildConfig(corpus=Path(args.corpus), out=Path(args.out) if args.out else None,
                             base=Path(args.base) if args.base else None, workers=args.workers))


def _cmd_validate(args: argparse.Namespace) -> int:
    from dataengine.validate import validate_root

    for name, n in validate_root(Path(args.dir)).items():
        print(f"{name}: {n} samples ok")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from dataengine.cards import write_cards
    from dataengine.stats import INDEX

    for path in write_cards(Path(args.dir)):
        print(f"wrote {path} and {path.with_name('card.png')}")
    print(f"wrote {Path(args.dir) / INDEX}")
    from dataengine.storage import storage_figures, storage_markdown

    print(storage_markdown(storage_figures(Path(args.dir))).strip())
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from dataengine.audit import AuditConfig
    from dataengine.audit_report import main as audit

    unseen = UNSEEN_DATASETS if args.unseen is None else tuple(args.unseen)
    return audit(AuditConfig(root=Path(args.dir), out=Path(args.out) if args.out else None, unseen=unseen))


def _cmd_export_llava(args: argparse.Namespace) -> int:
    from dataengine.export_llava import ExportConfig
    from dataengine.export_llava import main as export

    return export(ExportConfig(root=Path(args.dir), out=Path(args.out), style=args.style))


def _cmd_export_webdataset(args: argparse.Namespace) -> int:
    from dataengine.export_webdataset import WebDatasetExportConfig
    from dataengine.export_webdataset import main as export

    return export(WebDatasetExportConfig(root=Path(args.dir), out=Path(args.out), shard_mb=args.shard_mb))


def _cmd_fixtures(args: argparse.Namespace) -> int:
    for src, options in fixture_jobs(args.dataset, Path(args.out)):
        print(f"{args.dataset}: fixture written; convert it with --src {src}{_option_flags(options)}")
    return 0


def _option_flags(options) -> str:
    """The flags that give `options` where they differ from the defaults (e.g. --nuscenes-root)."""
    default = type(options)()
    return "".join(f" --{f.name.replace('_', '-')} {getattr(options, f.name)}" for f in dataclasses.fields(options)
                   if getattr(options, f.name) != getattr(default, f.name))


def _cmd_list(args: argparse.Namespace) -> int:
    for name, cls in registry().items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:14s} v{cls.version:6s} {doc}")
    return 0


def build_parser(converter=None) -> argparse.ArgumentParser:
    parser = OneLineParser(prog="dataengine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("convert", help="convert a source dataset into shards (a Ray job)")
    p.add_argument("dataset")
    p.add_argument("--src", required=True, help="the source dataset root")
    p.add_argument("--out", required=True, help="shard root; writes <out>/<dataset>/<split>/")
    p.add_argument("--split", action="append", choices=["train", "val", "test"], help="only these splits")
    p.add_argument("--workers", type=int, default=2, help="local Ray workers (default 2)")
    p.add_argument("--address", default=None, help="join this Ray cluster (default: RAY_ADDRESS or local)")
    p.add_argument("--limit", type=int, default=None, help="at most N work units per split")
    p.add_argument("--shard-mb", type=float, default=256, help="target shard size in MB (default 256)")
    if converter is not None:
        _converter_option_flags(p, converter)
    p.set_defaults(fn=_cmd_convert)

    p = sub.add_parser("build", help="convert every source of a corpus file into one root, validate, audit, "
                       "write the cards; a rerun skips what is current")
    p.add_argument("corpus", help="corpus YAML (see corpora/robotron_drive.yaml)")
    p.add_argument("--out", default=None, help="shard root (default: the file's `out:`)")
    p.add_argument("--base", default=None, help="folder relative paths in the file start from (default: its folder)")
    p.add_argument("--workers", type=int, default=2, help="local Ray workers (default 2)")
    p.set_defaults(fn=_cmd_build)

    p = sub.add_parser("validate", help="re-read every shard and check it against its manifest")
    p.add_argument("dir")
    p.set_defaults(fn=_cmd_validate)

    p = sub.add_parser("stats", help="write dataset cards (markdown + PNG)")
    p.add_argument("dir")
    p.set_defaults(fn=_cmd_stats)

    p = sub.add_parser("audit", help="leakage audit: evaluation samples sharing a scene, frame or image with "
                       "training data")
    p.add_argument("dir")
    p.add_argument("--unseen", nargs="*", metavar="NAME", default=None,
                   help=f"datasets that must not overlap training data (default: {' '.join(UNSEEN_DATASETS)})")
    p.add_argument("--out", default=None, help="report directory (default: DIR/audit)")
    p.set_defaults(fn=_cmd_audit)

    p = sub.add_parser("export-llava", help="write the LLaVA-NeXT training format (JSON + images folder)")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="export directory (JSON files and images/)")
    p.add_argument("--style", default="robotron", help="prompt style of dataengine.prompts (default robotron)")
    p.set_defaults(fn=_cmd_export_llava)

    p = sub.add_parser("export-webdataset", help="write self-contained WebDataset shards (images inline)")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="export directory (<dataset>/<split>/shard-NNNNNN.tar)")
    p.add_argument("--shard-mb", type=float, default=256, help="target shard size in MB (default 256)")
    p.set_defaults(fn=_cmd_export_webdataset)

    p = sub.add_parser("fixtures", help="write a small dataset in a source's real raw format")
    p.add_argument("dataset")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=_cmd_fixtures)

    p = sub.add_parser("list", help="list the registered converters")
    p.set_defaults(fn=_cmd_list)

    show.add_parser(sub)
    return parser


def _named_converter(argv: list[str]):
    """The converter class of `convert DATASET ...`, so its options can become flags."""
    if len(argv) >= 2 and argv[0] == "convert" and not argv[1].startswith("-"):
        return get(argv[1])
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv

    def body() -> int:
        args = build_parser(_named_converter(argv)).parse_args(argv)
        return args.fn(args)

    return run_command("dataengine", body)
