"""A real Ray cluster (tests/faults/ray_cluster.py: `ray start --head` plus a second worker
node on this machine, loopback addresses, free ports, its own temp dir): a conversion joined
with `--address` and the same submitted with `ray job submit` (as docs/conversion.md shows)
write the bytes the embedded default writes; a failed authentication is one line, exit 2."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_cluster import RAY, Cluster

from dataengine.fixtures import fixture_jobs

REPO = Path(__file__).parents[2]
pytestmark = pytest.mark.slow  # a two-node cluster starts in 20-90 s on 2 shared cores


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    src, _ = fixture_jobs("drama", tmp_path_factory.mktemp("drama") / "src")[0]
    return Path(src)


def convert(src: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataengine", "convert", "drama", "--src", str(src), "--out",
                           str(out), *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def output(out: Path) -> dict[str, bytes]:
    """Every file the job leaves (shards, media, manifest, quarantine, card), the card without
    `created_by` (the command that made it, which names --out and --address)."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    for name in [n for n in files if n.endswith("card.json")]:
        card = json.loads(files[name])
        assert card.pop("created_by")
        files[name] = json.dumps(card, sort_keys=True).encode()
    return files


@pytest.fixture(scope="module")
def embedded(src, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("embedded")
    proc = convert(src, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return output(out)


def test_address_joins_the_cluster_and_writes_the_embedded_bytes(cluster, src, embedded, tmp_path):
    proc = convert(src, tmp_path, "--address", cluster.address, env=cluster.env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Connected to Ray cluster" in proc.stderr
    assert output(tmp_path) == embedded


def test_ray_job_submit_writes_the_embedded_bytes(cluster, src, embedded, tmp_path):
    cmd = [RAY, "job", "submit", "--address", cluster.dashboard, "--working-dir", ".", "--",
           "python", "-m", "dataengine", "convert", "drama", "--src", str(src), "--out", str(tmp_path),
           "--address", "auto"]
    deadline = time.monotonic() + 180
    while True:  # the head's job agent registers some seconds after `ray start` returns
        proc = subprocess.run(cmd, cwd=REPO, env=cluster.env(), capture_output=True, text=True, timeout=600)
        if proc.returncode == 0 or "No available agent" not in proc.stderr or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "succeeded" in proc.stdout + proc.stderr
    assert output(tmp_path) == embedded


def test_a_wrong_token_is_one_line_exit_2(cluster, src, tmp_path):
    env = dict(cluster.env(), RAY_AUTH_TOKEN="0" * 32)
    proc = convert(src, tmp_path, "--address", cluster.address, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    # Ray's own C++ client logs a warning per retry before giving up; ours is the one error line
    lines = [line for line in proc.stderr.strip().splitlines() if "error" in line and "gcs_client" not in line]
    assert len(lines) == 1 and f"cannot join the Ray cluster at {cluster.address}" in lines[0], proc.stderr
