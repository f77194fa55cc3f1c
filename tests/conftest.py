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
