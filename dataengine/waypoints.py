"""The one numeric format of planning answers, and its tolerant parser.

Answers read `[(x1, y1), (x2, y2), ...]` with two decimals, metres, in the trajectory's
frame (x forward, y left for ego frames), as GPT-Driver/OpenDriveVLA/OmniDrive print them.
"""
from __future__ import annotations

import re

# an explicit "+" is accepted: OmniDrive prints its points signed, "(+3.50, -0.13)"
_PAIR = re.compile(r"\(\s*([-+]?\d+(?:\.\d+)?)\s*,\s*([-+]?\d+(?:\.\d+)?)\s*\)")


def format_waypoints(xy) -> str:
    return "[" + ", ".join(f"({x:.2f}, {y:.2f})" for x, y in xy) + "]"


def parse_waypoints(text: str) -> list[tuple[float, float]]:
    """Every `(x, y)` pair in the text, in order; an empty list when there is none."""
    return [(float(a), float(b)) for a, b in _PAIR.findall(text)]
