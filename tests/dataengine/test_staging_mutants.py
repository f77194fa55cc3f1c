"""Staging, ledger and commit without Ray: `convert_unit`, `prepare`, `finalize` and
`is_up_to_date` called directly on a tiny converter, with ledgers, shard names, byte ranges and
card counts worked out by hand from docs/format.md (1024 bytes a small sample member, parts padded
to 10240-byte tar records), crash leftovers and a ledger that belongs to one job id."""
from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataengine import staging
from dataengine.converter import Converter, Quarantined, Record, Unit
from dataengine.manifest import read_manifest, read_quarantine, write_manifest
from dataengine.staging import convert_unit, finalize, is_up_to_date, prepare

SHARD_BYTES = 3072  # two 1024-byte samples a part: 2048 + 1024 end blocks fit, a third does not
IMAGES = {"a": b"a" * 10, "b": b"b" * 20, "c": b"c" * 30}


def sha1(b: bytes) -> str:
    return hashlib.sha1(b).hexdigest()


def canonical(obj) -> bytes:
    """docs/format.md's canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def frame(key: str, image: str) -> dict:
    return {"scene_id": "st:s", "frame_id": f"st:{key}", "layout": "single_image",
            "media": [{"member": "img0.jpg", "camera": "front", "source_camera": "F", "time_offset_s": 0.0,
                       "width": 4, "height": 2}], "meta": {}}


def own(key: str, task: str = "vqa.t", split: str = "train") -> dict:
    return {"schema": "sample/1", "id": key, "dataset": "st", "split": split, "task": task,
            "conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": key}]}


def rec(key: str, image: str, task: str = "vqa.t", split: str = "train") -> Record:
    return Record({**own(key, task, split), **frame(key, image)}, [IMAGES[image]])


CONTEXT_FRAME = frame("c", "c")


def ctx_rec(key: str) -> Record:
    """A sample whose frame fields are one context shared by c0, c1, c2 (a fresh copy each)."""
    return Record(own(key), [IMAGES["c"]], json.loads(json.dumps(CONTEXT_FRAME)))


def context_bytes() -> bytes:
    stored = json.loads(json.dumps(CONTEXT_FRAME))
    stored["media"][0]["sha1"] = sha1(IMAGES["c"])
    return canonical(stored)


class Crash(Exception):
    pass


class Plan(Converter):
    """Yields each unit's planned items; an exception instance in the plan is raised there."""

    name = "staged"
    version = "1"

    def __init__(self, plan: dict[str, list]):
        super().__init__(Path("/nowhere"))
        self.plan = plan

    def check_source(self) -> None:
        pass

    def units(self):
        return [Unit(u, "train") for u in self.plan]

    def convert_unit(self, unit):
        for item in self.plan[unit.id]:
            if isinstance(item, Exception):
                raise item
            yield item


def plan() -> dict[str, list]:
    return {
        "u0": [rec("a0", "a"), Quarantined("r-t", "truncated JPEG (no end-of-image marker)"), rec("a1", "b")],
        "u1": [rec("b0", "a", task="caption.x"), Quarantined("r-m", "missing image samples/CAM_FRONT/x.jpg")],
        "u2": [ctx_rec("c0"), ctx_rec("c1"), ctx_rec("c2")],
    }


def split_of(root: Path) -> Path:
    d = root / "st" / "train"
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_units(split_dir: Path, job_id: str, p: dict | None = None, units=("u0", "u1", "u2")) -> set[str]:
    p = p or plan()
    done = prepare(split_dir, job_id)
    for u in units:
        if u not in done:
            convert_unit(Plan(p), Unit(u, "train"), split_dir, SHARD_BYTES)
    return done


def card_in(job_id: str = "job-a") -> dict:
    return {"dataset": "st", "split": "train", "job_id": job_id}


EXPECTED_COUNTS = {
    "units": 3, "samples": 6, "quarantined": 2, "records_in": 8, "shards": 4, "bytes": 4 * 10240,
    "media_added": 3, "media_bytes_added": 60, "contexts_added": 1,
}


def test_a_split_end_to_end_by_hand(tmp_path):
    split_dir = split_of(tmp_path)
    assert run_units(split_dir, "job-a") == set()
    given = card_in()
    card = finalize(split_dir, ["u0", "u1", "u2"], given)
    assert given == card_in()  # the caller's card is not written into
    assert card["counts"] == {**EXPECTED_COUNTS, "context_bytes_added": len(context_bytes())}
    assert list(card["tasks"].items()) == [("caption.x", 1), ("vqa.t", 5)]
    assert card["layouts"] == {"single_image": 6}
    assert list(card["quarantine_reasons"].items()) == [("missing image …", 1), ("truncated JPEG", 1)]
    assert json.loads((split_dir / "card.json").read_text()) == {**card_in(), **{k: card[k] for k in (
        "counts", "tasks", "layouts", "quarantine_reasons")}}
    assert sorted(p.name for p in split_dir.iterdir()) == [
        "card.json", "manifest.parquet", "quarantine.jsonl", *(f"shard-00000{i}.tar" for i in range(4))]
    rows = read_manifest(split_dir / "manifest.parquet").to_pylist()
    assert [(r["key"], r["shard"], r["offset"], r["size"], r["unit"], r["task"]) for r in rows] == [
        ("a0", "shard-000000.tar", 0, 1024, "u0", "vqa.t"), ("a1", "shard-000000.tar", 1024, 1024, "u0", "vqa.t"),
        ("b0", "shard-000001.tar", 0, 1024, "u1", "caption.x"),
        ("c0", "shard-000002.tar", 0, 1024, "u2", "vqa.t"), ("c1", "shard-000002.tar", 1024, 1024, "u2", "vqa.t"),
        ("c2", "shard-000003.tar", 0, 1024, "u2", "vqa.t")]
    assert [r["media_sha1"] for r in rows] == [[sha1(IMAGES[i])] for i in "abaccc"]
    assert read_quarantine(split_dir / "quarantine.jsonl") == [
        {"unit": "u0", "record_id": "r-t", "reason": "truncated JPEG (no end-of-image marker)"},
        {"unit": "u1", "record_id": "r-m", "reason": "missing image samples/CAM_FRONT/x.jpg"}]
    for r in rows:  # each range is its sample's member; the stored JSON references the context
        with tarfile.open(split_dir / r["shard"]) as tar:
            member = next(m for m in tar if m.offset == r["offset"])
            stored = json.loads(tar.extractfile(member).read())
        assert member.name == f"{r['key']}.json"
        assert ("context" in stored) == r["key"].startswith("c") == ("media" not in stored)
        if "context" in stored:
            assert stored["context"] == sha1(context_bytes())
    assert (tmp_path / "media" / "index.parquet").exists()  # the store is the shard root's
    assert is_up_to_date(split_dir, "job-a") and not is_up_to_date(split_dir, "job-b")


def test_convert_unit_ledger_by_hand(tmp_path):
    split_dir = split_of(tmp_path)
    prepare(split_dir, "job-a")
    summary = convert_unit(Plan(plan()), Unit("u2", "train"), split_dir, SHARD_BYTES)
    ctx = context_bytes()
    # the pack: image c (512 header + 30 bytes padded to 512), then the context's member
    assert summary["media"] == [
        {"sha1": sha1(IMAGES["c"]), "ext": "jpg", "part": 0, "offset": 512, "size": 30, "width": 4, "height": 2},
        {"sha1": sha1(ctx), "ext": "json", "part": 0, "offset": 1536, "size": len(ctx), "width": 0, "height": 0}]
    assert {k: v for k, v in summary.items() if k not in ("rows", "media")} == {
        "unit": "u2", "parts": ["u2-0000.tar", "u2-0001.tar"], "quarantine": [], "samples": 3, "bytes": 2 * 10240,
        "media_parts": ["u2-0000.tar"]}
    assert [(r["key"], r["part"], r["offset"], r["size"], r["unit"]) for r in summary["rows"]] == [
        ("c0", 0, 0, 1024, "u2"), ("c1", 0, 1024, 1024, "u2"), ("c2", 1, 0, 1024, "u2")]
    work = split_dir / "_work"
    assert (work / "done" / "u2.json").read_bytes() == canonical(summary)
    assert sorted(p.name for p in (work / "done").iterdir()) == ["u2.json"]  # no temporary file left
    assert sorted(p.name for p in (work / "staged").iterdir()) == ["u2-0000.tar", "u2-0001.tar"]
    assert sorted(p.name for p in (work / "media").iterdir()) == ["u2-0000.tar"]
    assert json.loads((work / "job.json").read_bytes()) == {"job_id": "job-a"}


def test_a_quarantined_record_is_listed_with_its_unit(tmp_path):
    split_dir = split_of(tmp_path)
    prepare(split_dir, "job-a")
    summary = convert_unit(Plan(plan()), Unit("u1", "train"), split_dir, SHARD_BYTES)
    assert summary["quarantine"] == [{"unit": "u1", "record_id": "r-m", "reason": "missing image samples/CAM_FRONT/x.jpg"}]
    assert summary["samples"] == 1 and summary["bytes"] == 10240


def test_a_split_of_quarantined_records_only(tmp_path):
    split_dir = split_of(tmp_path)
    p = {"u0": [Quarantined("r", "bad record: x")]}
    run_units(split_dir, "job-a", p, units=["u0"])
    card = finalize(split_dir, ["u0"], card_in())
    assert card["counts"] == {"units": 1, "samples": 0, "quarantined": 1, "records_in": 1, "shards": 0, "bytes": 0,
                              "media_added": 0, "media_bytes_added": 0, "contexts_added": 0,
                              "context_bytes_added": 0}
    assert card["tasks"] == {} and card["quarantine_reasons"] == {"bad record": 1}
    assert read_manifest(split_dir / "manifest.parquet").num_rows == 0
    assert is_up_to_date(split_dir, "job-a")


@pytest.mark.parametrize("item, error, message", [
    ({"id": "x"}, TypeError, "staged.convert_unit yielded dict"),
    (rec("v0", "a", split="val"), ValueError, "sample v0: split 'val' in unit of split 'train'"),
    (rec("a0", "b"), ValueError, "sample key 'a0' repeated in unit u0"),
])
def test_a_bad_item_fails_the_unit_without_a_ledger_entry(tmp_path, item, error, message):
    split_dir = split_of(tmp_path)
    prepare(split_dir, "job-a")
    with pytest.raises(error, match=f"^{message}$"):
        convert_unit(Plan({"u0": [rec("a0", "a"), item]}), Unit("u0", "train"), split_dir, SHARD_BYTES)
    assert prepare(split_dir, "job-a") == set()


def test_a_key_from_two_units_is_refused_at_finalize(tmp_path):
    split_dir = split_of(tmp_path)
    run_units(split_dir, "job-a", {"u0": [rec("k", "a")], "u1": [rec("k", "b")]}, units=["u0", "u1"])
    with pytest.raises(ValueError, match="^sample key 'k' produced by units u0 and u1$"):
        finalize(split_dir, ["u0", "u1"], card_in())


def finished(root: Path, job_id: str = "job-a") -> dict:
    """Shards, manifest and card of a split as bytes and values (for comparing two runs)."""
    d = root / "st" / "train"
    return {"shards": [p.read_bytes() for p in sorted(d.glob("shard-*.tar"))],
            "manifest": read_manifest(d / "manifest.parquet").to_pylist(),
            "card": json.loads((d / "card.json").read_text()), "quarantine": (d / "quarantine.jsonl").read_text()}


def clean_run(root: Path) -> dict:
    run_units(split_of(root), "job-a")
    finalize(split_of(root), ["u0", "u1", "u2"], card_in())
    return finished(root)


def test_a_crash_resumes_from_the_ledger_to_the_same_output(tmp_path):
    split_dir = split_of(tmp_path / "crashed")
    crashing = plan()
    crashing["u2"] = [ctx_rec("c0"), ctx_rec("c1"), ctx_rec("c2"), Crash("simulated")]
    with pytest.raises(Crash):
        run_units(split_dir, "job-a", crashing)
    work = split_dir / "_work"
    assert sorted(p.name for p in (work / "staged").iterdir()) == ["u0-0000.tar", "u1-0000.tar", "u2-0000.tar",
                                                                   "u2-0001.tar"]  # u2's leftovers
    (work / "done" / "u2.tmp").write_bytes(b'{"unit": "u2"')  # a ledger entry cut short by the crash
    assert not is_up_to_date(split_dir, "job-a")
    assert prepare(split_dir, "job-a") == {"u0", "u1"}
    convert_unit(Plan(plan()), Unit("u2", "train"), split_dir, SHARD_BYTES)
    finalize(split_dir, ["u0", "u1", "u2"], card_in())
    assert finished(tmp_path / "crashed") == clean_run(tmp_path / "clean")


def test_an_interrupted_finalize_completes_on_the_rerun(tmp_path, monkeypatch):
    """Parts already renamed and media already committed when the manifest write failed: the rerun
    keeps the renamed shards and reports the media the first attempt added."""
    split_dir = split_of(tmp_path / "interrupted")
    run_units(split_dir, "job-a")

    def fail(rows, path):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(staging, "write_manifest", fail)
        with pytest.raises(OSError, match="disk full"):
            finalize(split_dir, ["u0", "u1", "u2"], card_in())
    assert (split_dir / "shard-000003.tar").exists() and not is_up_to_date(split_dir, "job-a")
    assert prepare(split_dir, "job-a") == {"u0", "u1", "u2"}
    finalize(split_dir, ["u0", "u1", "u2"], card_in())
    assert finished(tmp_path / "interrupted") == clean_run(tmp_path / "clean")
    assert not (split_dir / "_work").exists()


@pytest.mark.parametrize("leftover", ["another job", "no job file"])
def test_a_ledger_of_another_job_is_discarded(tmp_path, leftover):
    split_dir = split_of(tmp_path)
    crashing = plan()
    crashing["u2"] = [Crash("simulated")]
    with pytest.raises(Crash):
        run_units(split_dir, "job-old", crashing)
    if leftover == "no job file":  # crashed between creating the work dir and writing job.json
        (split_dir / "_work" / "job.json").unlink()
        job = "job-old"
    else:
        job = "job-new"
    assert prepare(split_dir, job) == set()
    work = split_dir / "_work"
    assert sorted(p.name for p in work.iterdir()) == ["done", "job.json", "staged"]
    assert not any((work / "staged").iterdir()) and not any((work / "done").iterdir())
    assert json.loads((work / "job.json").read_text()) == {"job_id": job}


def test_prepare_clears_a_finished_split_but_not_its_folders(tmp_path):
    split_dir = split_of(tmp_path)
    for name in ("card.json", "manifest.parquet", "quarantine.jsonl", "shard-000000.tar"):
        (split_dir / name).write_text("old")
    (split_dir / "keep").mkdir()
    assert prepare(split_dir, "job-a") == set()
    assert sorted(p.name for p in split_dir.iterdir()) == ["_work", "keep"]


def test_another_jobs_ledger_gives_another_output(tmp_path):
    """Options changed after a crash: the new job redoes every unit, nothing of the old one stays."""
    split_dir = split_of(tmp_path)
    old = plan()
    old["u0"] = [rec("a0", "a", task="old.task"), rec("old-only", "b")]
    old["u2"] = [Crash("simulated")]
    with pytest.raises(Crash):
        run_units(split_dir, "job-old", old)
    run_units(split_dir, "job-a")
    finalize(split_dir, ["u0", "u1", "u2"], card_in())
    assert finished(tmp_path) == clean_run(tmp_path / "clean")


def write_card(split_dir: Path, **counts) -> None:
    (split_dir / "card.json").write_text(json.dumps({"job_id": "job-a", "counts": counts}))


def test_is_up_to_date_checks_job_shards_and_bytes(tmp_path):
    split_dir = split_of(tmp_path)
    assert not is_up_to_date(split_dir, "job-a")  # no card
    (split_dir / "shard-000000.tar").write_bytes(b"x" * 3)
    (split_dir / "shard-000001.tar").write_bytes(b"y" * 4)
    write_card(split_dir, shards=2, bytes=7)
    assert is_up_to_date(split_dir, "job-a") and not is_up_to_date(split_dir, "job-b")
    write_card(split_dir, shards=2, bytes=8)  # a shard truncated since
    assert not is_up_to_date(split_dir, "job-a")
    write_card(split_dir, shards=3, bytes=7)  # a shard lost since
    assert not is_up_to_date(split_dir, "job-a")
    write_card(split_dir, shards=1, bytes=3)
    assert is_up_to_date(split_dir, "job-a")
    (split_dir / "_work").mkdir()  # a job under way
    assert not is_up_to_date(split_dir, "job-a")


def test_is_up_to_date_of_a_card_without_counts(tmp_path):
    split_dir = split_of(tmp_path)
    (split_dir / "card.json").write_text(json.dumps({"job_id": "job-a"}))
    assert not is_up_to_date(split_dir, "job-a")
    write_card(split_dir, bytes=0)  # no shards listed: nothing to check but the bytes
    assert is_up_to_date(split_dir, "job-a")


def test_finalize_hands_the_manifest_one_row_per_sample_in_unit_order(tmp_path, monkeypatch):
    split_dir = split_of(tmp_path)
    run_units(split_dir, "job-a")
    seen = []

    def check(rows, path):
        seen.extend((r["key"], r["shard"]) for r in rows)  # before pyarrow, which crashes on a non-row
        write_manifest(rows, path)

    monkeypatch.setattr(staging, "write_manifest", check)
    finalize(split_dir, ["u0", "u1", "u2"], card_in())
    assert seen == [("a0", "shard-000000.tar"), ("a1", "shard-000000.tar"), ("b0", "shard-000001.tar"),
                    ("c0", "shard-000002.tar"), ("c1", "shard-000002.tar"), ("c2", "shard-000003.tar")]


@dataclass(frozen=True)
class Word:
    prefix: str = "a"


class Worded(Plan):
    options_type = Word

    def __init__(self, options: Word):
        Converter.__init__(self, Path("/nowhere"), options)


def test_other_options_or_source_make_another_job_whose_prepare_drops_the_ledger(tmp_path):
    """The job id is what ties a ledger to its job (dataengine/job.py): other options or another
    source's units give another id, and `prepare` under it keeps none of the old ledger."""
    from dataengine.job import PackedUnit, _job_id

    def job(prefix: str, word: str) -> str:
        return _job_id(Worded(Word(prefix)), [PackedUnit.pack(Unit("u0", "train", {"word": word}))], SHARD_BYTES)

    assert job("a", "x") == job("a", "x")
    assert len({job("a", "x"), job("b", "x"), job("a", "y")}) == 3
    split_dir = split_of(tmp_path)
    run_units(split_dir, job("a", "x"), units=["u0", "u1"])
    assert prepare(split_dir, job("a", "x")) == {"u0", "u1"}
    assert prepare(split_dir, job("b", "x")) == set()
