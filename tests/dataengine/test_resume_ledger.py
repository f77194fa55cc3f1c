"""A resume ledger belongs to one job: after a crash, a rerun with other options or another
source must redo every unit, never keep the crashed job's finished units."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from dataengine.converter import Converter, Record, Unit
from dataengine.reader import DatasetReader


@dataclass(frozen=True)
class LedgerOptions:
    prefix: str = "a"
    crash_marker: str = ""


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (10, 20, 30)).save(buf, format="JPEG")
    return buf.getvalue()


class Ledgered(Converter):
    """Test converter: 4 units x 2 records; answers are `<prefix>-<source word>-<record>`; unit
    u2 crashes while the marker file exists (so u0/u1 are in the ledger when it does)."""

    name = "ledgered"
    version = "1"
    options_type = LedgerOptions

    def check_source(self) -> None:
        pass

    def units(self):
        word = (self.src / "word.txt").read_text()
        return [Unit(f"u{i}", "train", {"word": word}) for i in range(4)]

    def convert_unit(self, unit):
        if unit.id == "u2" and self.options.crash_marker and Path(self.options.crash_marker).exists():
            raise RuntimeError("simulated crash")
        for j in range(2):
            rid = f"{unit.id}-{j}"
            yield Record({
                "schema": "sample/1", "id": f"ledgered-{rid}", "dataset": "ledgered", "split": "train",
                "task": "vqa.test", "scene_id": f"ledgered:{unit.id}", "frame_id": f"ledgered:{rid}",
                "layout": "single_image",
                "media": [{"member": "img0.jpg", "camera": "front", "source_camera": "f", "time_offset_s": 0.0,
                           "width": 16, "height": 8}],
                "conversations": [{"role": "user", "content": "q"}, {
                    "role": "assistant", "content": f"{self.options.prefix}-{unit.payload['word']}-{rid}"}],
                "meta": {}}, [_jpeg()])


@pytest.fixture(autouse=True)
def _register(monkeypatch):
    from dataengine import converter

    monkeypatch.setitem(converter._REGISTRY, "ledgered", Ledgered)


def source(tmp_path: Path, word: str) -> Path:
    src = tmp_path / f"src-{word}"
    src.mkdir(exist_ok=True)
    (src / "word.txt").write_text(word)
    return src


def run(src: Path, out: Path, prefix: str, marker: Path):
    from dataengine.job import JobConfig, run_job

    return run_job(JobConfig(dataset="ledgered", src=src, out=out, options=LedgerOptions(prefix, str(marker)),
                             progress=False, max_retries=0))


def answers(out: Path) -> dict[str, str]:
    return {s.key: s.sample["conversations"][1]["content"] for s in DatasetReader(out, "ledgered", "train")}


@pytest.mark.parametrize("change", ["options", "source"])
def test_a_crashed_jobs_ledger_is_not_reused_by_another_job(tmp_path, ray_session, change):
    marker = tmp_path / "marker"
    out = tmp_path / "out"
    first_src, first_prefix = source(tmp_path, "x"), "a"
    second_src, second_prefix = (first_src, "b") if change == "options" else (source(tmp_path, "y"), "a")
    marker.write_text("crash")
    with pytest.raises(Exception, match="simulated crash"):
        run(first_src, out, first_prefix, marker)
    done = {p.stem for p in (out / "ledgered" / "train" / "_work" / "done").glob("*.json")}
    assert done and "u2" not in done  # the crashed job left a ledger
    marker.unlink()
    result = run(second_src, out, second_prefix, marker)
    assert result.units_run == 4  # nothing of the other job's ledger is kept
    word = second_src.name.split("-")[1]
    expected = {f"ledgered-u{i}-{j}": f"{second_prefix}-{word}-u{i}-{j}" for i in range(4) for j in range(2)}
    assert answers(out) == expected


def test_the_same_job_after_a_crash_reuses_its_ledger(tmp_path, ray_session):
    marker = tmp_path / "marker"
    out = tmp_path / "out"
    src = source(tmp_path, "x")
    marker.write_text("crash")
    with pytest.raises(Exception, match="simulated crash"):
        run(src, out, "a", marker)
    done = {p.stem for p in (out / "ledgered" / "train" / "_work" / "done").glob("*.json")}
    marker.unlink()
    assert run(src, out, "a", marker).units_run == 4 - len(done)
    assert answers(out) == {f"ledgered-u{i}-{j}": f"a-x-u{i}-{j}" for i in range(4) for j in range(2)}
