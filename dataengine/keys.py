"""Checking the keys of a YAML mapping, shared by the curriculum spec and the benchmark
registry: an unknown key is named with its path and the closest known key."""
from __future__ import annotations

import difflib
from typing import Any, Callable


def check_keys(obj: Any, where: str, allowed: tuple[str, ...], fail: Callable[[str, str], Exception]) -> dict:
    """`obj` when it is a mapping with only `allowed` keys; else raise `fail(path, problem)`."""
    if not isinstance(obj, dict):
        raise fail(where, f"must be a mapping, got {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise fail(f"{where}.{key}", f"unknown key{hint}; known: {', '.join(allowed)}")
    return obj
