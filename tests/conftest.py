"""Shared fixtures: one Ray instance per test session, generated nuScenes data, real samples."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataengine.job import JobConfig, run_job


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session (ray.init costs 2-4 s)."""
    import ray

    tests_dir = Path(__file__).parent
    # workers import test-only converters defined in test modules, which pytest imports by their
    # folder (tests/dataengine/test_job.py is `test_job`): every test folder goes on their path
    folders = [tests_dir, *sorted(d for d in tests_dir.iterdir() if d.is_dir() and d.name[0] not in "._")]
    path = os.pathsep.join([*map(str, folders), str(tests_dir.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 1024 * 1024,
             configure_logging=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def nuscenes_root(tmp_path_factory) -> Path:
    from converters.nuscenes.fixture import make_nuscenes_root

    return make_nuscenes_root(tmp_path_factory.mktemp("nuscenes") / "root")


@pytest.fixture(scope="session")
def nuscenes_shards(tmp_path_factory, nuscenes_root, ray_session) -> Path:
    out = tmp_path_factory.mktemp("nuscenes_shards")
    run_job(JobConfig(dataset="nuscenes", src=nuscenes_root, out=out, progress=False))
    return out


def convert(dataset: str, src: Path, out: Path, options=None, **kw):
    """Run a conversion job in-process on the session's Ray (tests must request ray_session)."""
    return run_job(JobConfig(dataset=dataset, src=src, out=out, options=options, progress=False, **kw))


FRAME_FIELDS = ("scene_id", "frame_id", "layout", "media")  # a key frame's, in a context (sample/3)


def check_frame_contexts(root: Path, dataset: str, frame_meta: tuple[str, ...]) -> tuple[int, int]:
    """Assert that `dataset`'s stored samples (as the shards hold them, before the reader merges
    their context back) carry no frame fields nor `frame_meta` keys, and that the samples of one
    key frame (same frame_id and images in the manifest) reference one context, whose frame_id
    is theirs. Returns (samples, contexts)."""
    import json
    import tarfile

    from dataengine.manifest import read_manifest
    from dataengine.mediastore import PACKS, media_dir

    contexts = {}
    for pack in sorted((media_dir(root) / PACKS).glob("*.tar")):
        with tarfile.open(pack) as tar:
            contexts.update({m.name.partition(".")[0]: json.loads(tar.extractfile(m).read())
                             for m in tar if m.name.endswith(".json")})
    frames: dict[tuple, set[str]] = {}
    n = 0
    for split_dir in sorted(p for p in (root / dataset).iterdir() if (p / "manifest.parquet").is_file()):
        rows = {r["key"]: r for r in read_manifest(split_dir / "manifest.parquet").to_pylist()}
        for shard in sorted(split_dir.glob("shard-*.tar")):
            with tarfile.open(shard) as tar:
                for member in tar:
                    stored = json.loads(tar.extractfile(member).read())
                    assert not set(FRAME_FIELDS) & set(stored) and not set(frame_meta) & set(stored["meta"]), stored
                    row, context = rows[stored["id"]], contexts[stored["context"]]
                    assert context["frame_id"] == row["frame_id"] and set(frame_meta) <= set(context["meta"])
                    frames.setdefault((row["frame_id"], tuple(row["media_sha1"])), set()).add(stored["context"])
                    n += 1
    assert n > 0
    assert all(len(sha1s) == 1 for sha1s in frames.values()), frames
    assert len(set().union(*frames.values())) == len(frames)  # and one key frame per context
    return n, len(frames)


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """The shared real sample files; tests using them skip when DATAENGINE_REAL_SAMPLES is unset."""
    value = os.environ.get("DATAENGINE_REAL_SAMPLES")
    if not value:
        pytest.skip("DATAENGINE_REAL_SAMPLES is not set: real-sample conformance tests need ../shared/realdata")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"DATAENGINE_REAL_SAMPLES={value} is not a directory")
    return path
