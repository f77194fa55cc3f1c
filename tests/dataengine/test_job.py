"""The Ray conversion job: same bytes whatever the worker count, resume after a crash,
records in = written + quarantined."""
import filecmp
import hashlib
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import convert
from PIL import Image

from dataengine.converter import Converter, Quarantined, Record, Unit
from dataengine.errors import UsageError
from dataengine.manifest import read_manifest, read_quarantine
from dataengine.validate import validate_root


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 12), (i % 255, 40, 90)).save(buf, format="JPEG")
    return buf.getvalue()


@dataclass(frozen=True)
class FlakyOptions:
    crash_marker: str = ""


class Flaky(Converter):
    """Test converter: 6 units x 4 records, every 5th record bad; crashes on unit u3 while a marker exists."""

    name = "flaky"
    version = "1"
    options_type = FlakyOptions

    def check_source(self) -> None:
        pass

    def units(self):
        return [Unit(f"u{i}", "train" if i < 4 else "val", {"n": 4}) for i in range(6)]

    def convert_unit(self, unit):
        if unit.id == "u3" and self.options.crash_marker and Path(self.options.crash_marker).exists():
            raise RuntimeError("simulated crash")
        for j in range(unit.payload["n"]):
            rid = f"{unit.id}-{j}"
            if (int(unit.id[1:]) * 4 + j) % 5 == 4:
                yield Quarantined(rid, "bad record: simulated")
                continue
            yield Record({
                "schema": "sample/1", "id": f"flaky-{rid}", "dataset": "flaky", "split": unit.split,
                "task": "vqa.test", "scene_id": f"flaky:{unit.id}", "frame_id": f"flaky:{rid}",
                "layout": "single_image",
                "media": [{"member": "img0.jpg", "camera": "front", "source_camera": "f", "time_offset_s": 0.0,
                           "width": 24, "height": 12}],
                "conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": rid}],
                "meta": {}}, [_jpeg(j)])


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_flaky(out, marker="", **kw):
    from dataengine.job import JobConfig, run_job

    return run_job(JobConfig(dataset="flaky", src=Path("/flaky-src"), out=out, options=FlakyOptions(marker), progress=False, **kw))


@pytest.fixture(autouse=True)
def _register_flaky(monkeypatch):
    from dataengine import converter

    monkeypatch.setitem(converter._REGISTRY, "flaky", Flaky)


def test_counts_conserved_and_quarantine_kept(tmp_path, ray_session):
    result = run_flaky(tmp_path)
    total_in = 0
    for split, card in result.cards.items():
        c = card["counts"]
        assert c["records_in"] == c["samples"] + c["quarantined"]
        total_in += c["records_in"]
        q = read_quarantine(tmp_path / "flaky" / split / "quarantine.jsonl")
        assert all(e["reason"] == "bad record: simulated" and e["unit"] for e in q)
    assert total_in == 24
    assert result.cards["train"]["counts"]["quarantined"] == 3  # records 4, 9, 14 of units u0..u3
    validate_root(tmp_path)


def test_resume_after_crash_skips_finished_units_and_matches_clean_run(tmp_path, ray_session):
    marker = tmp_path / "marker"  # same option value in every run; its presence makes u3 crash
    clean = tmp_path / "clean"
    run_flaky(clean, str(marker))
    crashed = tmp_path / "crashed"
    marker.write_text("crash")
    with pytest.raises(Exception, match="simulated crash"):
        run_flaky(crashed, str(marker), max_retries=0)
    done = {p.stem for split in ("train", "val")
            for p in (crashed / "flaky" / split / "_work" / "done").glob("*.json")}
    assert "u3" not in done and done  # the ledger kept the units that finished
    marker.unlink()
    result = run_flaky(crashed, str(marker))
    assert result.units_run == 6 - len(done)
    assert _same_but_options(clean, crashed)


def _same_but_options(clean: Path, crashed: Path) -> bool:
    """Shards, manifests and quarantine byte-identical; cards differ only in the paths they name."""
    for split in ("train", "val"):
        a, b = clean / "flaky" / split, crashed / "flaky" / split
        names = sorted(p.name for p in a.iterdir())
        assert names == sorted(p.name for p in b.iterdir())
        for name in names:
            if name != "card.json":
                assert filecmp.cmp(a / name, b / name, shallow=False), name
        ca, cb = json.loads((a / "card.json").read_text()), json.loads((b / "card.json").read_text())
        assert ca["counts"] == cb["counts"] and ca["job_id"] == cb["job_id"]
    return True


def test_rerun_is_up_to_date(tmp_path, ray_session):
    run_flaky(tmp_path)
    again = run_flaky(tmp_path)
    assert again.units_run == 0 and sorted(again.skipped_splits) == ["train", "val"]


def test_same_bytes_whatever_the_worker_count(tmp_path, nuscenes_root):
    """Two CLI runs, each starting its own local Ray: 1 worker and 2 workers, small shards."""
    digests = []
    out = tmp_path / "out"  # the same --out both times: the card names it
    for workers in (1, 2):
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-m", "dataengine", "convert", "nuscenes", "--src", str(nuscenes_root),
                               "--out", str(out), "--workers", str(workers), "--shard-mb", "0.5"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "nuscenes/train: 60 samples" in proc.stdout
        validate_root(out)  # every byte range against a scan of its shard, after many rollovers
        digests.append(_tree_digest(out))
    assert digests[0] == digests[1]
    assert sum(name.endswith(".tar") for name in digests[0]) > 4  # several shards per scene at 0.5 MB


def test_limit_converts_first_units_only(tmp_path, nuscenes_root, ray_session):
    result = convert("nuscenes", nuscenes_root, tmp_path, limit=1)
    assert result.cards["train"]["counts"]["units"] == 1
    assert result.cards["train"]["counts"]["samples"] == 20  # 10 key frames: planning + agent-motion samples
    assert len(read_manifest(tmp_path / "nuscenes" / "train" / "manifest.parquet")) == 20


def test_job_leaves_the_garbage_collector_as_it_found_it(tmp_path, nuscenes_root, ray_session):
    """The job pauses the cyclic GC while listing and freezes the listed heap; afterwards the
    GC is on again with nothing frozen, also when the job fails."""
    import gc

    convert("nuscenes", nuscenes_root, tmp_path / "out")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with pytest.raises(UsageError):
        convert("nuscenes", tmp_path / "missing", tmp_path / "out2")
    assert gc.isenabled() and gc.get_freeze_count() == 0
