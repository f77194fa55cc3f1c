"""Bad inputs for every converter: each broken record is quarantined with its reason, or the
whole source is refused with one line (UsageError, exit 2); records in = written +
quarantined; the shards validate; nothing else escapes (which the CLI would print as a
traceback). The corpus is `bad_corpus`, made from each converter's own fixture."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from bad_corpus import MEDIA, TABLES, Case, copy_fixture, corpus
from conftest import convert

from dataengine.converter import registry
from dataengine.errors import UsageError
from dataengine.fixtures import fixture_jobs
from dataengine.validate import validate_root

NUSCENES_TABLES = ["sample", "sample_data", "sample_annotation", "ego_pose", "calibrated_sensor", "scene"]



def _tables(name: str, root: Path, src: Path) -> list[str]:
    """The converter's own tables: one file per folder and kind (nuScenes' key tables only
    for `nuscenes`; the derived datasets' nuScenes root is nuscenes' corpus)."""
    picked: dict[tuple, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TABLES):
        rel = path.relative_to(root)
        in_nuscenes = "v1.0-" in str(rel) or rel.parts[0] == "can_bus" or "can_bus" in rel.parts
        if name == "nuscenes":
            if in_nuscenes and (path.stem in NUSCENES_TABLES or "can_bus" in rel.parts):
                picked[(str(rel),)] = str(rel)
            continue
        if in_nuscenes or (src.is_file() and path != src and path.suffix == ".json" and name == "drivelm"):
            continue
        picked.setdefault((rel.parent, path.suffix), str(rel))
    return sorted(picked.values())


def _media(root: Path) -> list[str]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA - {".bin"})
    return [str(files[0].relative_to(root))] if files else []


@lru_cache(maxsize=None)
def _fixture(name: str, base: Path) -> tuple[Path, Path, object]:
    root = base / name / "fixture"
    src, options = fixture_jobs(name, root)[0]
    return root, Path(src), options


def _cases(name: str, base: Path) -> list[Case]:
    root, src, _ = _fixture(name, base)
    prefix = Path("nuscenes") if (root / "nuscenes").is_dir() else Path(".")
    return corpus(root, _tables(name, root, src), _media(root), prefix)


def _moved(value, old: Path, new: Path):
    if isinstance(value, (str, Path)) and str(value).startswith(str(old)):
        return type(value)(str(new) + str(value)[len(str(old)):])
    return value


def run_case(name: str, base: Path, case: Case | None, work: Path) -> dict:
    """Convert one corrupted copy of the fixture; returns {"refused": msg} or the counts."""
    root, src, options = _fixture(name, base)
    copy = work / "src"
    copy_fixture(root, copy)
    if case is not None:
        case.apply(copy)
    src = _moved(src, root, copy)
    options = dataclasses.replace(options, **{f.name: _moved(getattr(options, f.name), root, copy)
                                              for f in dataclasses.fields(options)})
    out = work / "out"
    try:
        result = convert(name, src, out, options)
    except UsageError as exc:
        assert "\n" not in str(exc).strip(), f"a refusal must be one line: {exc}"
        return {"refused": str(exc)}
    counts = {split: card["counts"] for split, card in result.cards.items()}
    for c in counts.values():
        assert c["records_in"] == c["samples"] + c["quarantined"]
    if counts:
        validate_root(out)
    return {"counts": counts}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_inputs")


@pytest.mark.slow  # ~2-3 min for all converters on 2 cores: `make test-all` (CI) runs it
@pytest.mark.parametrize("name", sorted(registry()))
def test_every_bad_input_is_quarantined_or_refused(name, base, tmp_path, ray_session):
    baseline = run_case(name, base, None, tmp_path / "baseline")
    assert "refused" not in baseline and baseline["counts"]
    failures, outcomes = [], {}
    for i, case in enumerate(_cases(name, base)):
        try:
            outcomes[case.name] = run_case(name, base, case, tmp_path / str(i))
        except Exception as exc:  # what the CLI would print as a traceback
            failures.append(f"{case.name}: {type(exc).__name__}: {str(exc)[:300]}")
            continue
        failures += _miscounted(case.name, baseline, outcomes[case.name])
    assert not failures, "\n".join(failures)


def _total(outcome: dict, what: str) -> int:
    return sum(c[what] for c in outcome["counts"].values())


def _miscounted(case: str, baseline: dict, outcome: dict) -> list[str]:
    """A duplicated record is never written twice. (`records_in` is counted by the engine
    from what was written and quarantined, so this is the check against the input.)"""
    if "refused" in outcome or ":duplicate-" not in case:
        return []
    written, before = _total(outcome, "samples"), _total(baseline, "samples")
    if written > before:
        return [f"{case}: {written} samples written, the intact fixture gives {before}"]
    return []


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataengine", "convert", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_cli_prints_no_traceback_on_bad_sources(base, tmp_path):
    """The real command line on corrupt sources: a refused source is one line and exit 2,
    a quarantined record exit 0; never a traceback."""
    root, src, _ = _fixture("codalm", base)
    cases = {c.name: c for c in _cases("codalm", base)}
    for i, (case, code) in enumerate([("CODA-LM/Mini/test_0001.json:general_perception/vehicles:nan-item", 0),
                                      ("CODA-LM/Train/val_0001.json:truncated", 0)]):
        copy = tmp_path / f"c{i}"
        copy_fixture(root, copy)
        cases[case].apply(copy)
        proc = _cli("codalm", "--src", str(copy), "--out", str(tmp_path / f"out{i}"), "--workers", "1")
        assert "Traceback" not in proc.stderr and proc.returncode == code, (case, proc.stderr[-2000:])
    root, src, _ = _fixture("bddx", base)
    copy = tmp_path / "bddx"
    copy_fixture(root, copy)
    {c.name: c for c in _cases("bddx", base)}["test.txt:garbage-non-utf8"].apply(copy)
    proc = _cli("bddx", "--src", str(copy), "--out", str(tmp_path / "out-bddx"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "UnicodeDecodeError" in proc.stderr


def test_unreachable_ray_address_is_one_line_exit_2(base, tmp_path):
    root, src, _ = _fixture("drama", base)
    proc = _cli("drama", "--src", str(src), "--out", str(tmp_path / "out"), "--address", "127.0.0.1:9")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in lines[0]
