"""Faults injected into a conversion and survived: a Ray worker SIGKILLed mid-unit, the
output disk full mid-write (ENOSPC at the shard writer), a shard truncated after the job.
Each time the output ends byte-identical to an uninterrupted run."""
from __future__ import annotations

import errno
import hashlib
import io
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from dataengine.converter import Converter, Quarantined, Record, Unit
from dataengine.errors import DataEngineError, ValidationError
from dataengine.validate import validate_root


@dataclass(frozen=True)
class FaultOptions:
    kill_marker: str = ""  # while this file exists, the worker converting u1 SIGKILLs itself mid-unit
    enospc_marker: str = ""  # while this file exists, shard writes of u2 fail with ENOSPC


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (i * 40 % 255, 60, 90)).save(buf, format="JPEG")
    return buf.getvalue()


def _inject_enospc(marker: str) -> None:
    """Make this worker's shard writes fail with ENOSPC while `marker` exists."""
    from dataengine import shards

    original = getattr(shards._write_all, "original", shards._write_all)

    def write_all(fd, chunks):
        if os.path.exists(marker):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(fd, chunks)

    write_all.original = original
    shards._write_all = write_all


class Faulty(Converter):
    """4 units x 3 records (one quarantined per unit), with a kill and a full disk on request."""

    name = "faulty"
    version = "1"
    options_type = FaultOptions

    def check_source(self) -> None:
        pass

    def units(self):
        return [Unit(f"u{i}", "train" if i < 3 else "val", {"n": 3}) for i in range(4)]

    def convert_unit(self, unit):
        if self.options.enospc_marker and unit.id == "u2":
            _inject_enospc(self.options.enospc_marker)
        for j in range(unit.payload["n"]):
            rid = f"{unit.id}-{j}"
            if j == 1 and unit.id == "u1" and self.options.kill_marker and os.path.exists(self.options.kill_marker):
                Path(self.options.kill_marker).rename(self.options.kill_marker + ".killed")
                os.kill(os.getpid(), signal.SIGKILL)  # mid-unit: one sample already staged
            if j == 2:
                yield Quarantined(rid, "bad record: simulated")
                continue
            yield Record({
                "schema": "sample/1", "id": f"faulty-{rid}", "dataset": "faulty", "split": unit.split,
                "task": "vqa.test", "scene_id": f"faulty:{unit.id}", "frame_id": f"faulty:{rid}",
                "layout": "single_image",
                "media": [{"member": "img0.jpg", "camera": "front", "source_camera": "f", "time_offset_s": 0.0,
                           "width": 16, "height": 8}],
                "conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": rid}],
                "meta": {}}, [_jpeg(int(unit.id[1:]) * 3 + j)])
        if self.options.enospc_marker and unit.id == "u2":
            _inject_enospc("")  # the next task on this worker writes normally


@pytest.fixture(scope="module", autouse=True)
def _register():
    from dataengine import converter

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(converter._REGISTRY, "faulty", Faulty)
        yield


def _run(out: Path, options: FaultOptions = FaultOptions(), **kw):
    from dataengine.job import JobConfig, run_job

    return run_job(JobConfig(dataset="faulty", src=Path("/faulty-src"), out=out, options=options,
                             progress=False, **kw))


def _digest(root: Path) -> dict[str, str]:
    """Every output file but the card (which names --out and the options' paths)."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "card.json"}


@pytest.fixture(scope="module")
def clean(tmp_path_factory, ray_session) -> Path:
    out = tmp_path_factory.mktemp("clean")
    _run(out, FaultOptions(kill_marker="/nonexistent", enospc_marker="/nonexistent"))
    return out


def test_worker_sigkilled_mid_unit_is_retried_to_identical_output(tmp_path, clean):
    marker = tmp_path / "kill"
    marker.write_text("")
    out = tmp_path / "out"
    result = _run(out, FaultOptions(kill_marker=str(marker), enospc_marker="/nonexistent"))
    assert Path(str(marker) + ".killed").exists(), "the worker was never killed"
    assert result.cards["train"]["counts"] == {**result.cards["train"]["counts"], "samples": 6, "quarantined": 3}
    assert _digest(out) == _digest(clean)
    validate_root(out)


def test_full_disk_is_one_error_and_the_rerun_resumes_identically(tmp_path, clean):
    marker = tmp_path / "full"
    marker.write_text("")
    out = tmp_path / "out"
    options = FaultOptions(kill_marker="/nonexistent", enospc_marker=str(marker))
    with pytest.raises(DataEngineError, match="no space left on the output disk"):
        _run(out, options)
    done = {p.stem for split in ("train", "val") for p in (out / "faulty" / split / "_work" / "done").glob("*.json")}
    assert "u2" not in done and {"u0", "u1"} <= done  # the ledger kept what finished
    marker.unlink()
    result = _run(out, options)
    assert result.units_run == 4 - len(done)  # only what the ledger lacks
    assert _digest(out) == _digest(clean)
    validate_root(out)


def test_truncated_shard_is_named_by_validate_and_reconverted(tmp_path, clean):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(clean, out)
    shard = out / "faulty" / "train" / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[:700])
    with pytest.raises(ValidationError, match="shard-000001.tar"):
        validate_root(out)
    result = _run(out, FaultOptions(kill_marker="/nonexistent", enospc_marker="/nonexistent"))
    assert result.units_run == 3 and result.skipped_splits == ["val"]
    assert _digest(out) == _digest(clean)
    validate_root(out)
