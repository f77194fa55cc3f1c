"""Rewrites one marked section of docs/performance.md with a benchmark's figures."""
from __future__ import annotations

import datetime
from pathlib import Path


def rewrite_section(path: Path, name: str, lines: list[str]) -> None:
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    text = path.read_text() if path.exists() else "# Performance\n"
    stamp = f"_Measured {datetime.date.today().isoformat()} by `make bench`._"
    block = "\n".join([begin, stamp, "", *lines, end])
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## {name}\n\n" + block + "\n"
    path.write_text(text)
