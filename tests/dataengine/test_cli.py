"""The dataengine command line: one-line errors with exit code 2, validate names the bad file."""
import shutil
import subprocess
import sys

import pytest

from dataengine.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "dataengine", *args], capture_output=True, text=True)


def test_list_names_the_converters():
    proc = run("list")
    assert proc.returncode == 0 and proc.stdout.startswith("") and "nuscenes" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["convert", "nuscenes"], "the following arguments are required: --src, --out"),
    (["convert", "nosuch", "--src", "x", "--out", "y"], "unknown dataset 'nosuch'"),
    (["convert", "nuscenes", "--src", "x", "--out", "y", "--split", "dev"], "invalid choice: 'dev'"),
    (["convert", "nuscenes", "--src", "x", "--out", "y", "--workers", "0"], "--workers must be at least 1"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_one_line_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(args)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def _copy(nuscenes_shards, tmp_path):
    dst = tmp_path / "shards"
    shutil.copytree(nuscenes_shards, dst)
    return dst


def test_validate_accepts_good_shards(nuscenes_shards, tmp_path):
    root = _copy(nuscenes_shards, tmp_path)
    proc = run("validate", str(root))
    assert proc.returncode == 0 and "nuscenes/train: 60 samples ok" in proc.stdout  # 30 planning + 30 motion


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: _flip_byte(d / "shard-000001.tar", 5000), "shard-000001.tar"),
    (lambda d: (d / "shard-000002.tar").unlink(), "shard-000002.tar: named by the manifest but missing"),
    (lambda d: shutil.copy(d / "shard-000000.tar", d / "shard-000009.tar"), "shard-000009.tar: shard not named"),
    (lambda d: (d / "card.json").write_text((d / "card.json").read_text().replace('"samples": 60', '"samples": 61')),
     "card.json: card counts 61 samples"),
])
def test_validate_names_the_first_bad_file(nuscenes_shards, tmp_path, corrupt, message):
    root = _copy(nuscenes_shards, tmp_path)
    corrupt(root / "nuscenes" / "train")
    proc = run("validate", str(root))
    assert proc.returncode == 1
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_stats_writes_cards(nuscenes_shards, tmp_path):
    root = _copy(nuscenes_shards, tmp_path)
    proc = run("stats", str(root))
    assert proc.returncode == 0, proc.stderr
    card = (root / "nuscenes" / "CARD.md").read_text()
    assert "| train | 60 |" in card and "| val | 20 |" in card  # planning + agent-motion samples
    assert (root / "nuscenes" / "card.png").stat().st_size > 10_000


def test_fixtures_then_convert_via_cli(tmp_path):
    assert run("fixtures", "nuscenes", "--out", str(tmp_path / "raw")).returncode == 0
    proc = run("convert", "nuscenes", "--src", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
               "--split", "val", "--version", "v1.0-mini")
    assert proc.returncode == 0, proc.stderr
    assert "nuscenes/val: 20 samples in 1 shards, 0 quarantined, 20 records in" in proc.stdout
    assert not (tmp_path / "out" / "nuscenes" / "train").exists()
