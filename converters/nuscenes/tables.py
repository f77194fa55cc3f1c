"""A light index over nuScenes JSON tables, shared by every nuScenes-derived converter.

It reads the 13 tables of one version (the layout nuscenes-devkit's `NuScenes` reads),
resolves a keyframe's six cameras, calibrations, ego poses and annotations, and reports
a broken link as a problem of that keyframe instead of failing the whole load. It does
not build map masks or reverse indexes it does not need, so it loads faster and in
less memory than the devkit.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import json
import marshal
import operator
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

import orjson

from dataengine.errors import UsageError
from dataengine.json_rows import CHUNK_BYTES, iter_rows

TABLES = ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose",
          "log", "scene", "sample", "sample_data", "sample_annotation", "map")
VERSIONS = ("v1.0-trainval", "v1.0-test", "v1.0-mini")
LIDAR = "LIDAR_TOP"
# camera channel -> canonical name, in RoboTron-Drive's order: every nuScenes-derived sample's media order
CAMERAS = {
    "CAM_FRONT": "front", "CAM_FRONT_LEFT": "front_left", "CAM_FRONT_RIGHT": "front_right",
    "CAM_BACK": "back", "CAM_BACK_LEFT": "back_left", "CAM_BACK_RIGHT": "back_right",
}
NUSCENES_ORDER = tuple(CAMERAS)


def find_versions(root: Path) -> list[str]:
    return [v for v in VERSIONS if (Path(root) / v / "scene.json").exists()]


def resolve_versions(root: Path, version: str) -> list[str]:
    """The versions to read: the named one, or with 'auto' trainval+test when present, else mini."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"nuScenes root {root} does not exist or is not a directory")
    present = find_versions(root)
    if version != "auto":
        if version not in VERSIONS:
            raise UsageError(f"unknown nuScenes version {version!r}; use one of {', '.join(VERSIONS)} or auto")
        if version not in present:
            raise UsageError(f"{root} is not a nuScenes root with {version}/ tables (found: {present or 'none'})")
        chosen = [version]
    else:
        full = [v for v in present if v != "v1.0-mini"]
        chosen = full or present
    if not chosen:
        raise UsageError(f"{root} is not a nuScenes root: no v1.0-trainval/, v1.0-test/ or v1.0-mini/ tables")
    for v in chosen:
        missing = [t for t in TABLES if not (root / v / f"{t}.json").exists()]
        if missing:
            raise UsageError(f"{root / v} is missing nuScenes tables: {', '.join(missing)}")
    return chosen


def _parse_table(data: bytes, path: Path):
    """orjson first (trainval's tables are ~1 GB: 2-3x the stdlib's speed); the stdlib for
    what only it reads: NaN and Infinity, which the devkit's `json.load` accepts too."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # not strict JSON: the devkit's dialect, which reports the error
        return _parse_devkit_json(data, path)


def _parse_devkit_json(data: bytes, path: Path):
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})") from None


class PackedRows:
    """The rows of a large table as the converters read them: only `fields`, each row one
    marshal string (about 0.3 KB, where orjson's dict of a whole trainval row takes 1-2 KB;
    1.2M annotations made the dicts alone over 2 GB), decoded back to a dict on access. A
    field the row lacks stays absent. Indexed by token and/or grouped by one field."""

    def __init__(self, fields: tuple[str, ...], rows, index: bool = True, group: str | None = None):
        self.fields = fields
        self.blobs: list[bytes] = []
        self.by_token: dict[str, bytes] = {}
        self.groups: dict[str, list[bytes]] = {}
        whole = operator.itemgetter(*fields)
        for row in rows:
            try:
                values = whole(row)
            except KeyError:  # Ellipsis stands for a missing field
                values = tuple(row.get(k, ...) for k in fields)
            blob = marshal.dumps(values)
            if index:
                self.blobs.append(blob)
                self.by_token[row["token"]] = blob
            if group:
                self.groups.setdefault(row[group], []).append(blob)

    def decode(self, blob: bytes) -> dict:
        values = marshal.loads(blob)
        if ... in values:
            return {k: v for k, v in zip(self.fields, values) if v is not ...}
        return dict(zip(self.fields, values))

    def __len__(self) -> int:
        return len(self.blobs)

    def __iter__(self) -> Iterator[dict]:
        return map(self.decode, self.blobs)

    def group(self, key: str) -> list[dict]:
        return [self.decode(b) for b in self.groups.get(key, ())]

    def tokens(self) -> TokenView:
        return TokenView(self)


class TokenView(Mapping):
    """token -> row of a PackedRows, as `by_token` gives the small tables' rows."""

    def __init__(self, rows: PackedRows):
        self.rows = rows

    def __getitem__(self, token: str) -> dict:
        return self.rows.decode(self.rows.by_token[token])

    def __iter__(self):
        return iter(self.rows.by_token)

    def __len__(self) -> int:
        return len(self.rows.by_token)


# the fields of the three large tables that `keyframe` and the nuScenes-derived converters read
SAMPLE_DATA_FIELDS = ("token", "sample_token", "ego_pose_token", "calibrated_sensor_token", "filename", "width",
                      "height", "timestamp", "is_key_frame")
EGO_POSE_FIELDS = ("token", "timestamp", "translation", "rotation")
ANNOTATION_FIELDS = ("token", "sample_token", "instance_token", "visibility_token", "attribute_tokens",
                     "translation", "size", "rotation", "num_lidar_pts", "next")
LARGE = ("sample_data", "ego_pose", "sample_annotation")


class NuScenesTables:
    """Token-indexed tables of one nuScenes version (key-frame sample_data and their poses).

    The ten small tables are held as parsed. The three large ones are streamed and kept
    packed (PackedRows): the key-frame sample_data of the lidar and cameras (sweeps and
    radars are ~90% of trainval's 2.6M rows and no converter reads them), the ego poses
    those point to, and every annotation grouped by its sample (none with `annotations=False`:
    the datasets that only need a frame's cameras never read the 1.2M rows).
    """

    def __init__(self, root: Path, version: str, chunk_bytes: int = CHUNK_BYTES, annotations: bool = True):
        self.root = Path(root)
        self.version = version
        self.chunk_bytes = chunk_bytes
        self.t: dict = {name: self._load(name) for name in TABLES if name not in LARGE}
        self.by_token: dict = {name: {r["token"]: r for r in rows} for name, rows in self.t.items()}
        radar = self._other_calibrations()
        self.t["sample_data"] = PackedRows(SAMPLE_DATA_FIELDS, (
            sd for sd in self._stream("sample_data")
            if sd.get("is_key_frame") and sd.get("calibrated_sensor_token") not in radar), group="sample_token")
        poses = {sd["ego_pose_token"] for sd in self.t["sample_data"]}
        self.t["ego_pose"] = PackedRows(EGO_POSE_FIELDS, (p for p in self._stream("ego_pose") if p["token"] in poses))
        self._anns = PackedRows(ANNOTATION_FIELDS, self._stream("sample_annotation") if annotations else (),
                                index=False, group="sample_token")
        for name in ("sample_data", "ego_pose"):
            self.by_token[name] = self.t[name].tokens()
        self._samples_of_scene: dict[str, list[dict]] = {}
        for s in self.t["sample"]:
            self._samples_of_scene.setdefault(s["scene_token"], []).append(s)

    def _other_calibrations(self) -> set:
        """Calibrations of sensors no converter reads (the radars): their key frames are not kept."""
        wanted = {LIDAR, *NUSCENES_ORDER}
        sensors = self.by_token["sensor"]
        return {c["token"] for c in self.t["calibrated_sensor"]
                if c.get("sensor_token") in sensors and sensors[c["sensor_token"]].get("channel") not in wanted}

    def _path(self, name: str) -> Path:
        return self.root / self.version / f"{name}.json"

    def _load(self, name: str) -> list[dict]:
        path = self._path(name)
        rows = _parse_table(path.read_bytes(), path)
        if not isinstance(rows, list):
            raise UsageError(f"{path} is not a nuScenes table (expected a JSON list)")
        return rows

    def _stream(self, name: str) -> Iterator[dict]:
        return iter_rows(self._path(name), self.chunk_bytes)

    def get(self, table: str, token: str) -> dict:
        """The row, or KeyError with a message naming the table and token."""
        row = self.by_token[table].get(token)
        if row is None:
            raise KeyError(f"{table} token {token!r} not found")
        return row

    def scenes(self) -> list[dict]:
        return self.t["scene"]

    def scene_samples(self, scene_token: str) -> list[dict]:
        """Keyframes of a scene in time order."""
        return sorted(self._samples_of_scene.get(scene_token, []), key=lambda s: (s["timestamp"], s["token"]))

    def channel(self, sd: dict) -> str:
        calib = self.get("calibrated_sensor", sd["calibrated_sensor_token"])
        return self.get("sensor", calib["sensor_token"])["channel"]

    def keyframe(self, sample: dict, annotations: bool = True) -> dict:
        """Everything a converter needs about one keyframe, with `problems` listing broken links
        (its annotations left out, and unchecked, with `annotations=False`)."""
        problems: list[str] = []
        sensors: dict[str, dict] = {}
        for sd in self.t["sample_data"].group(sample["token"]):
            try:
                calib = self.get("calibrated_sensor", sd["calibrated_sensor_token"])
                channel = self.get("sensor", calib["sensor_token"])["channel"]
                pose = self.get("ego_pose", sd["ego_pose_token"])
            except KeyError as exc:
                problems.append(f"sample_data {sd['token']}: {exc.args[0]}")
                continue
            sensors[channel] = {
                "sample_data_token": sd["token"], "filename": sd["filename"], "width": sd.get("width", 0),
                "height": sd.get("height", 0), "timestamp": sd["timestamp"],
                "ego_pose": {"translation": pose["translation"], "rotation": pose["rotation"]},
                "calibration": {"translation": calib["translation"], "rotation": calib["rotation"],
                                "camera_intrinsic": calib.get("camera_intrinsic", [])},
            }
        for channel in (LIDAR, *NUSCENES_ORDER):
            if channel not in sensors and not any(channel in p for p in problems):
                problems.append(f"no keyframe {channel} sample_data")
        anns = []
        for ann in sorted(self._anns.group(sample["token"]) if annotations else (), key=lambda a: a["token"]):
            try:
                instance = self.get("instance", ann["instance_token"])
                category = self.get("category", instance["category_token"])["name"]
                attributes = [self.get("attribute", t)["name"] for t in ann.get("attribute_tokens", [])]
            except KeyError as exc:
                problems.append(f"sample_annotation {ann['token']}: {exc.args[0]}")
                continue
            anns.append({"token": ann["token"], "instance_token": ann["instance_token"], "category": category,
                         "attributes": attributes, "visibility": ann.get("visibility_token", ""),
                         "translation": ann["translation"], "size": ann["size"], "rotation": ann["rotation"],
                         "num_lidar_pts": ann.get("num_lidar_pts", 0), "next": ann.get("next", "")})
        return {"token": sample["token"], "timestamp": sample["timestamp"], "sensors": sensors,
                "annotations": anns, "problems": problems}


def require_root(value: str, dataset: str) -> Path:
    """The `--nuscenes-root` of a nuScenes-derived dataset, checked to hold nuScenes tables."""
    if not value:
        raise UsageError(f"{dataset} needs --nuscenes-root PATH: the nuScenes dataroot (v1.0-*/ tables, "
                         f"samples/) its records point into")
    root = Path(value)
    try:
        resolve_versions(root, "auto")
    except UsageError as exc:  # same message, naming the flag to fix
        raise UsageError(f"--nuscenes-root: {exc}") from None
    return root


class NuScenesIndex:
    """Frames by token across every version of one dataroot (trainval and test together),
    for datasets that name nuScenes samples or sample_data by token."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.tables = [NuScenesTables(self.root, v, annotations=False) for v in resolve_versions(self.root, "auto")]

    def find(self, table: str, token: str) -> tuple[NuScenesTables, dict] | None:
        """(the version's tables, the row) of a token, or None when no version has it."""
        for tables in self.tables:
            row = tables.by_token[table].get(token)
            if row is not None:
                return tables, row
        return None

    def camera_frame(self, sample_token: str) -> dict | None:
        """A key frame's cameras (file, size, time, calibration, ego pose) without its boxes;
        `problems` lists broken sample_data links. None when the sample is not in the root."""
        found = self.find("sample", sample_token)
        if found is None:
            return None
        tables, sample = found
        frame = tables.keyframe(sample, annotations=False)
        return {"token": sample["token"], "timestamp": sample["timestamp"], "scene_token": sample["scene_token"],
                "sensors": {c: frame["sensors"][c] for c in NUSCENES_ORDER if c in frame["sensors"]},
                "problems": [p for p in frame["problems"] if p.startswith("sample_data")]}

    def scene_info(self, scene_token: str) -> dict:
        """Token, name, description and location (empty when the log is missing) of a scene."""
        tables, scene = self.find("scene", scene_token) or (None, None)
        if scene is None:
            raise KeyError(f"scene token {scene_token!r} not found")
        log = tables.by_token["log"].get(scene["log_token"], {})
        return {"token": scene["token"], "name": scene["name"], "description": scene["description"],
                "location": log.get("location", "")}


_SPLIT_NAMES = {"v1.0-mini": {"mini_train": "train", "mini_val": "val"},
                "v1.0-trainval": {"train": "train", "val": "val"}, "v1.0-test": {"test": "test"}}


@functools.lru_cache(maxsize=None)
def devkit_scene_splits() -> dict[str, tuple[str, ...]]:
    """nuscenes-devkit's official scene lists, read as literals from `nuscenes/utils/splits.py`.

    Importing that module imports the whole devkit (matplotlib, scikit-learn, OpenCV: about
    2 s per conversion job); the lists are plain literals, so reading them is enough. `train`
    is the union of `train_detect` and `train_track`, as the devkit builds it. A test checks
    the result equals `create_splits_scenes()`.
    """
    package = importlib.util.find_spec("nuscenes")  # a top-level spec: the package is not imported
    source = Path(package.submodule_search_locations[0]) / "utils" / "splits.py"
    lists = {}
    for node in ast.parse(source.read_text()).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.List)):
            lists[node.targets[0].id] = tuple(ast.literal_eval(node.value))
    lists["train"] = tuple(sorted(set(lists["train_detect"] + lists["train_track"])))
    return lists


def official_splits(version: str) -> dict[str, str]:
    """Scene name -> our split, from nuscenes-devkit's official scene splits."""
    devkit = devkit_scene_splits()
    return {scene: ours for theirs, ours in _SPLIT_NAMES[version].items() for scene in devkit[theirs]}


def official_scene_names(version: str) -> tuple[list[str], list[str]]:
    """(train scene names, val scene names) of a version, in the devkit's order."""
    devkit = devkit_scene_splits()
    train = [k for k, v in _SPLIT_NAMES[version].items() if v == "train"]
    val = [k for k, v in _SPLIT_NAMES[version].items() if v == "val"]
    return ([s for k in train for s in devkit[k]], [s for k in val for s in devkit[k]])
