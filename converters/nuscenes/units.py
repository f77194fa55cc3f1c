"""Work units for datasets whose records point at nuScenes frames by token.

nuScenes-QA, OmniDrive, NuInstruct and Talk2Car annotate nuScenes key frames but ship no
images: the records are linked to their frames through the table index in the driver, and
grouped into one unit per nuScenes scene carrying just those frames' camera data. A record
that cannot be linked (its sample token is not in the given root, or it was already found
malformed) goes to one `unresolved-<split>` unit, whose worker quarantines it with its
reason, so records in = written + quarantined holds even for a partial nuScenes root.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Iterator

from converters.nuscenes.tables import NuScenesIndex
from dataengine.converter import Quarantined, Unit
from dataengine.errors import UsageError

UNRESOLVED = "sample token not in nuScenes root"
_KEY_PART = re.compile(r"^[a-z0-9_-]{1,64}$")


def read_split_lists(files: dict[str, Path], key: str, what: str) -> dict[str, list]:
    """split -> the `key` list of that split's JSON file (nuScenes-QA `questions`, Talk2Car
    `commands`); a file that is not JSON, lacks the list or holds an empty one is a UsageError."""
    out = {}
    for split, path in files.items():
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise UsageError(f"{path} is not a {what} file (no '{key}' list)")
        if not data[key]:
            raise UsageError(f"{path} has an empty '{key}' list")
        out[split] = data[key]
    return out


def split_files(src: Path, folder: str, names: dict[str, str]) -> dict[str, Path]:
    """split -> its file `names[split]`, from `src/<folder>/` (the release's layout) or `src/`."""
    found = {}
    for split, name in names.items():
        for where in (src / folder, src):
            if (where / name).is_file():
                found[split] = where / name
                break
    return found


def key_part(source_id) -> str:
    """A source id as a sample-key part: itself when it is short and in [a-z0-9_-] (lowercased),
    else a sha1 prefix of it, so keys stay derived from source ids and WebDataset-safe."""
    text = str(source_id)
    return text.lower() if _KEY_PART.match(text.lower()) else hashlib.sha1(text.encode()).hexdigest()[:20]


def _link(index: NuScenesIndex, tokens: list[str], frames: dict) -> tuple[str | None, str | None]:
    """(scene token, None) of a record's frames (token strings), filling `frames`; or (None, reason)."""
    scenes = set()
    for token in tokens:
        if token not in frames:
            frames[token] = index.camera_frame(token)
        if frames[token] is None:
            return None, UNRESOLVED
        scenes.add(frames[token]["scene_token"])
    if len(scenes) != 1:
        return None, "sample tokens span several scenes" if scenes else "no sample token"
    scene = scenes.pop()
    if index.find("scene", scene) is None:
        return None, f"broken table link: scene token {scene!r} not found"
    return scene, None


def scene_units(index: NuScenesIndex, split: str, records: list[dict]) -> list[Unit]:
    """Units of one split: one per scene, plus `unresolved-<split>` when some record is not linked.

    Each record is a JSON-able dict with `record_id`, `sample_tokens` (its frames) and, when
    the driver already found it malformed, `problem`. A scene unit's payload holds `scene`
    (`NuScenesIndex.scene_info`), `frames` (token -> `camera_frame`) and its `records` in
    input order; the unresolved unit holds `records`, each with its `problem`.
    """
    frames: dict[str, dict | None] = {}
    scenes: dict[str, dict] = {}
    unresolved = []
    for record in records:
        scene, problem = (None, record["problem"]) if record.get("problem") else \
            _link(index, record["sample_tokens"], frames)
        if problem:
            unresolved.append({**record, "problem": problem})
            continue
        unit = scenes.setdefault(scene, {"scene": index.scene_info(scene), "frames": {}, "records": []})
        unit["frames"].update({t: frames[t] for t in record["sample_tokens"]})
        unit["records"].append(record)
    units = [Unit(scene, split, payload) for scene, payload in sorted(scenes.items())]
    if unresolved:
        units.append(Unit(f"unresolved-{split}", split, {"records": unresolved, "unresolved": True}))
    return units


def is_unresolved(unit: Unit) -> bool:
    return bool(unit.payload.get("unresolved"))


def records_by_frame(unit: Unit) -> dict[str, list[dict]]:
    """A scene unit's records grouped by their one sample token, in input order."""
    by_frame: dict[str, list[dict]] = {}
    for record in unit.payload["records"]:
        by_frame.setdefault(record["sample_tokens"][0], []).append(record)
    return by_frame


def quarantine_unresolved(unit: Unit) -> Iterator[Quarantined]:
    """One Quarantined per record of an unresolved unit, with its reason."""
    for record in unit.payload["records"]:
        yield Quarantined(str(record["record_id"]), record["problem"])
