"""A real local Ray cluster for tests: a head and a second worker node on this machine, every
port chosen free, every file under one temp dir, stopped by killing exactly its processes.

`ray stop` is not used: it stops every Ray on the machine, other users' included. The
cluster's processes are those whose command line names its temp dir, and their descendants.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    """Every port a node opens by a fixed default (the dashboard agent's 52365 among them)."""
    return ["--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
            "--metrics-export-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port())]


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(entry.name))
    return out


def processes_of(temp_dir: str) -> set[int]:
    """The pids whose command line names `temp_dir`, and all their descendants."""
    roots = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if temp_dir.encode() in (entry / "cmdline").read_bytes():
                    roots.add(int(entry.name))
            except OSError:
                continue
    children, found, todo = _children(), set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found - {os.getpid()}


@dataclass
class Cluster:
    temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="rayc", dir="/tmp"))
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self) -> dict:
        """The nodes' and clients' environment: Ray 2.59+ local clusters use token auth
        (docs/conversion.md); this interpreter's bin first on PATH, as in an activated venv,
        so a submitted job's `python` is the one with the project's dependencies."""
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return dict(os.environ, RAY_AUTH_MODE="token", PATH=path)

    def _ray(self, *args: str, timeout: float = 300) -> None:
        proc = subprocess.run([RAY, *args], env=self.env(), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"ray {args[0]} failed: {proc.stderr[-2000:]}")

    def start(self, tries: int = 3) -> "Cluster":
        """Head, then worker. `ray start` gives a node 30 s to register (fixed in Ray 2.60),
        which a loaded 2-core machine can miss: a failed start is cleaned up and tried again."""
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--temp-dir", self.temp_dir,
                  "--disable-usage-stats"]
        for attempt in range(tries):
            try:
                self._ray("start", "--head", "--port", str(self.gcs_port), "--dashboard-host", "127.0.0.1",
                          "--dashboard-port", str(self.dashboard_port), "--include-dashboard", "true",
                          "--ray-client-server-port", str(free_port()), *_node_ports(), *common)
                self._ray("start", "--address", self.address, *_node_ports(), *common)
                return self
            except RuntimeError:
                self.stop()
                if attempt == tries - 1:
                    raise
                self.gcs_port, self.dashboard_port = free_port(), free_port()
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s, to exactly this cluster's processes."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            pids = processes_of(self.temp_dir)
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while processes_of(self.temp_dir) and time.monotonic() < deadline:
                time.sleep(0.2)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
