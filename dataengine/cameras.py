"""Canonical camera vocabulary. Each converter maps its own camera names into it with its
`cameras` table, so adding a dataset never touches the engine."""
from __future__ import annotations

from typing import Mapping

CANONICAL = (
    "front", "front_left", "front_right", "back", "back_left", "back_right",
    "side_left", "side_right", "bev",
)

# Human wording used by prompts ("front left view").
VIEW_WORDS = {name: name.replace("_", " ") for name in CANONICAL}
VIEW_WORDS["bev"] = "bird's-eye view"


def canonical(table: Mapping[str, str], source_camera: str, dataset: str) -> str:
    """Map a dataset's own camera name to the canonical one with its `table`; unknown names
    are an error (`dataset` names the culprit in the message)."""
    if not table:
        raise KeyError(f"no camera table for dataset {dataset!r}: set `cameras` on its converter")
    if source_camera not in table:
        raise KeyError(f"{dataset}: unknown camera {source_camera!r}; known: {sorted(table)}")
    return table[source_camera]


def check_table(table: Mapping[str, str], dataset: str) -> None:
    """A camera table may only map into the canonical vocabulary."""
    bad = sorted(v for v in set(table.values()) if v not in CANONICAL)
    if bad:
        raise ValueError(f"{dataset}: camera table maps to {bad}, which are not canonical; use {', '.join(CANONICAL)}")
