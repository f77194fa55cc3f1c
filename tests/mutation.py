"""`make mutation`: mutmut over the modules whose bugs would silently corrupt data or numbers.

Each module runs on its own, in a scratch copy of the repository (mutmut rewrites the files it
mutates; the checkout is never touched), against its own fast test files only (`-x`, no
`slow`), one module after another. The per-module counts go into the report section of
docs/testing.md; a surviving mutant is either given a test or listed in EQUIVALENT with the
reason it cannot change behaviour.

    python tests/mutation.py                      # every module below, then rewrite the report
    python tests/mutation.py dataengine/schema.py # one module (its row of the report is updated)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "testing.md"
RESULTS = ROOT / "docs" / "mutation-results.json"
PACKAGES = ["dataengine", "converters", "curricula", "vlm", "train", "eval"]
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", "-o", "addopts="]

# module -> the test files that own it (fast ones: a mutant run repeats them hundreds of times)
MODULES: dict[str, list[str]] = {
    "dataengine/schema.py": ["tests/dataengine/test_schema.py"],
    "dataengine/trajectory.py": ["tests/dataengine/test_trajectory.py"],
    "dataengine/cameras.py": ["tests/dataengine/test_cameras.py"],
    "dataengine/shards.py": ["tests/dataengine/test_shards.py", "tests/dataengine/test_shard_rollover.py"],
    "dataengine/staging.py": ["tests/dataengine/test_resume_ledger.py", "tests/dataengine/test_job.py"],
    "curricula/sampler.py": ["tests/curricula/test_sampler.py"],
    "curricula/loader.py": ["tests/curricula/test_loader.py"],
    "vlm/encode.py": ["tests/vlm/test_encode.py"],
    "train/optim.py": ["tests/train/test_step.py"],
    "eval/metrics/planning.py": ["tests/eval/test_metrics.py"],
    "eval/metrics/drivelm.py": ["tests/eval/test_metrics.py", "tests/eval/test_drivelm_accuracy.py"],
    "eval/metrics/qa.py": ["tests/eval/test_metrics.py"],
    "eval/metrics/grounding.py": ["tests/eval/test_metrics.py"],
    "eval/metrics/captions.py": ["tests/eval/test_metrics.py"],
    "eval/metrics/text.py": ["tests/eval/test_metrics.py", "tests/eval/test_text.py"],
    "eval/metrics/nuinstruct.py": ["tests/eval/test_metrics.py"],
    "eval/metrics/omnidrive.py": ["tests/eval/test_metrics.py"],
    "eval/metrics/core.py": ["tests/eval/test_metrics.py"],
    "eval/metrics/judged.py": ["tests/eval/test_metrics.py", "tests/eval/test_judge.py"],
}

# mutant name -> why no test can tell it from the original (reviewed by hand)
_DT_DEFAULT = "`traj.get('dt_s', d)` runs only after `_is_num(traj.get('dt_s'))` passed: the key is there"
EQUIVALENT: dict[str, str] = {
    "dataengine.schema.x__check_optional__mutmut_61": _DT_DEFAULT,
    "dataengine.schema.x__check_optional__mutmut_63": _DT_DEFAULT,
    "dataengine.schema.x__check_optional__mutmut_66": _DT_DEFAULT,
    "dataengine.schema.x__finite_numbers__mutmut_1": "the float fast path skipped: the slow `_is_num` path "
                                                     "gives the same answer (the fast path exists for speed)",
    "dataengine.trajectory.x_ego_motion__mutmut_86": "`(d - pi) % 2pi` equals `(d + pi) % 2pi`: the two differ by 2pi",
    "dataengine.trajectory.x_ego_motion__mutmut_120": "`clean(yaw_rate, )` is `clean`'s default of 4 digits",
    "dataengine.trajectory.x_track_motion__mutmut_12": "`ego_motion` reads only x, y of `position`: a third row is unused",
    "dataengine.trajectory.x_track_motion__mutmut_16": "`matrix_yaw` reads rot[0, 0] and rot[1, 0] only: extra rows unused",
    "dataengine.trajectory.x_track_motion__mutmut_17": "`matrix_yaw` reads rot[0, 0] and rot[1, 0] only: extra columns unused",
}

STATUS = re.compile(r"^\s+(\S+): (.+)$")


def _copy(dest: Path) -> None:
    """The working tree without .git, .venv and build outputs, as a tar round trip (no rsync)."""
    skip = {".git", ".venv", "mutants", "demo-out", "reports", "bench-out", "__pycache__", ".pytest_cache"}
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(dest / "_copy.tar", "w") as tar:
        for p in sorted(ROOT.iterdir()):
            if p.name not in skip and not p.name.endswith(".egg-info"):
                tar.add(p, arcname=p.name, filter=lambda t: None if Path(t.name).name in skip else t)
    with tarfile.open(dest / "_copy.tar") as tar:
        tar.extractall(dest, filter="data")
    (dest / "_copy.tar").unlink()


def _configure(work: Path, module: str, tests: list[str]) -> None:
    """A [tool.mutmut] table for this one module, appended to the copy's pyproject.toml."""
    cfg = {"source_paths": PACKAGES, "only_mutate": [module], "pytest_add_cli_args": PYTEST_ARGS,
           "pytest_add_cli_args_test_selection": tests, "use_git_change_detection": False}
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in cfg.items()]
    with open(work / "pyproject.toml", "a") as f:
        f.write("\n".join(lines) + "\n")


def run_module(module: str, scratch: Path, children: int) -> dict:
    tests = MODULES[module]
    work = scratch / module.replace("/", "_").removesuffix(".py")
    _copy(work)
    _configure(work, module, tests)
    # on PYTHONPATH before mutmut creates it: a folder missing at start-up is never searched
    (work / "mutants").mkdir()
    env = dict(os.environ, PYTHONPATH=str(work / "mutants"), RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    mutmut = [sys.executable, "-m", "mutmut"]
    start = datetime.datetime.now()
    run = subprocess.run([*mutmut, "run", "--max-children", str(children)], cwd=work, env=env,
                         capture_output=True, text=True)
    listing = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True)
    statuses = {m.group(1): m.group(2).strip() for m in map(STATUS.match, listing.stdout.splitlines()) if m}
    if not statuses or all(s == "not checked" for s in statuses.values()):
        tail = (run.stdout + run.stderr)[-2000:]
        raise SystemExit(f"{module}: mutmut produced no results (exit {run.returncode}):\n{tail}")
    killed = sorted(k for k, s in statuses.items() if s in ("killed", "timeout"))
    # "no tests": no test of the module's files even reaches the mutant, which is a survivor too
    lived = ("survived", "no tests")
    survived = sorted(k for k, s in statuses.items() if s in lived and k not in EQUIVALENT)
    equivalent = sorted(k for k, s in statuses.items() if s in lived and k in EQUIVALENT)
    other = sorted(k for k, s in statuses.items() if k not in {*killed, *survived, *equivalent})
    diffs = {k: subprocess.run([*mutmut, "show", k], cwd=work, env=env, capture_output=True, text=True).stdout
             for k in survived}
    return {"module": module, "tests": tests, "killed": killed, "survived": survived, "equivalent": equivalent,
            "other": {k: statuses[k] for k in other}, "survivor_diffs": diffs,
            "seconds": round((datetime.datetime.now() - start).total_seconds())}


def kill_rate(r: dict) -> float:
    tested = len(r["killed"]) + len(r["survived"])
    return len(r["killed"]) / tested if tested else 1.0


def write_report(results: dict[str, dict], command: str) -> None:
    """Replace the text between the report markers of docs/testing.md."""
    today = datetime.date.today().isoformat()
    rows = ["| module | tests | mutants | killed | survived | equivalent | not run | kill rate | time |",
            "|---|---|---|---|---|---|---|---|---|"]
    for module in MODULES:
        r = results.get(module)
        if r is None:
            rows.append(f"| `{module}` | {', '.join(MODULES[module])} | not yet run | | | | | | |")
            continue
        n = len(r["killed"]) + len(r["survived"]) + len(r["equivalent"]) + len(r["other"])
        rows.append(f"| `{module}` | {', '.join(r['tests'])} | {n} | {len(r['killed'])} | {len(r['survived'])} | "
                    f"{len(r['equivalent'])} | {len(r['other'])} | {kill_rate(r):.0%} | {r['seconds']} s |")
    done = [r for r in results.values()]
    k = sum(len(r["killed"]) for r in done)
    s = sum(len(r["survived"]) for r in done)
    lines = [f"Last run: {today}, `{command}` (mutmut {_mutmut_version()}, {len(done)} of {len(MODULES)} modules).",
             "", *rows, "",
             f"Over the modules run: {k} killed of {k + s} non-equivalent mutants ({k / max(k + s, 1):.1%}).", ""]
    equivalents = [(name, EQUIVALENT[name]) for r in done for name in r["equivalent"]]
    if equivalents:
        lines += ["Equivalent mutants (survive by construction):", ""]
        lines += [f"- `{name}`: {why}" for name, why in equivalents] + [""]
    survivors = [name for r in done for name in r["survived"]]
    if survivors:
        lines += ["Surviving mutants (each needs a test or a reason):", ""]
        lines += [f"- `{name}`" for name in survivors] + [""]
    text = REPORT.read_text()
    begin, end = "<!-- mutation report: begin -->", "<!-- mutation report: end -->"
    head, rest = text.split(begin, 1)
    REPORT.write_text(head + begin + "\n" + "\n".join(lines) + end + rest.split(end, 1)[1])


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to run (default: all of MODULES)")
    parser.add_argument("--scratch", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "dataengine-mutation")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"not a mutation module: {', '.join(unknown)} (see MODULES in tests/mutation.py)", file=sys.stderr)
        return 2
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for module in args.modules or list(MODULES):
        print(f"mutation: {module} against {', '.join(MODULES[module])}", flush=True)
        r = run_module(module, args.scratch, args.children)
        print(f"  {len(r['killed'])} killed, {len(r['survived'])} survived, {len(r['equivalent'])} equivalent "
              f"({kill_rate(r):.0%}) in {r['seconds']} s", flush=True)
        results[module] = r
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    write_report(results, "make mutation" + (f" MODULES='{' '.join(args.modules)}'" if args.modules else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
