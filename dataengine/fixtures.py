"""Fixtures found by convention: a converter's package may hold `fixture.py` with
`jobs(name, out) -> [(src, options), ...]`, which writes the converter's default fixture
under `out` and returns every conversion the demo runs on it.

Fixture writers pull in PIL drawing, PyAV and the Waymo protos' writers; importing them
here, on request only, keeps them out of discovery and out of the Ray workers.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from dataengine.converter import get
from dataengine.errors import UsageError


def fixture_jobs(name: str, out: Path) -> list[tuple[Path, Any]]:
    """Write converter `name`'s fixture under `out`; returns its (src, options) conversions."""
    package = get(name).__module__.rpartition(".")[0]
    module = f"{package}.fixture"
    try:
        fixture = importlib.import_module(module) if package else None
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise  # the fixture is there but needs a missing module: a real error, not "no fixture"
        fixture = None
    if fixture is None:
        raise UsageError(f"{name} has no fixture: no {module.lstrip('.')} module defining jobs(name, out)")
    return fixture.jobs(name, Path(out))
