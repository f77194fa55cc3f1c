"""The one way the project writes a JSON document: indented, keys sorted, through a temporary
file and a rename, so a kill never leaves half a card, checkpoint state or score file."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: Path, obj: dict, *, ensure_ascii: bool = True, default=None) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=ensure_ascii, default=default) + "\n")
    os.replace(tmp, path)
