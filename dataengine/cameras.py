"""Canonical camera vocabulary and the one table mapping every dataset's names to it."""
from __future__ import annotations

CANONICAL = (
    "front", "front_left", "front_right", "back", "back_left", "back_right",
    "side_left", "side_right", "bev",
)

# Human wording used by prompts ("front left view").
VIEW_WORDS = {name: name.replace("_", " ") for name in CANONICAL}
VIEW_WORDS["bev"] = "bird's-eye view"

# (dataset, source camera name) -> canonical name. One table for every converter.
_NUSCENES = {
    "CAM_FRONT": "front", "CAM_FRONT_LEFT": "front_left", "CAM_FRONT_RIGHT": "front_right",
    "CAM_BACK": "back", "CAM_BACK_LEFT": "back_left", "CAM_BACK_RIGHT": "back_right",
}
_WAYMO = {
    "FRONT": "front", "FRONT_LEFT": "front_left", "FRONT_RIGHT": "front_right",
    "SIDE_LEFT": "side_left", "SIDE_RIGHT": "side_right",
}
SOURCE_CAMERAS: dict[str, dict[str, str]] = {
    "nuscenes": _NUSCENES,
    "drivelm": _NUSCENES,
    "nuscenes_qa": _NUSCENES,
    "omnidrive": _NUSCENES,
    "nuinstruct": _NUSCENES,
    "talk2car": _NUSCENES,
    "waymo": _WAYMO,
    "bddx": {"front": "front"},
    "lingoqa": {"front": "front"},
    "codalm": {"front": "front"},
    "drama": {"front": "front"},
    "maplm": {"front": "front", "bev": "bev", "photo_forward": "front", "point_cloud_bev": "bev"},
}

# nuScenes camera order used by every nuScenes-derived sample (RoboTron-Drive's order).
NUSCENES_ORDER = tuple(_NUSCENES)


def canonical(dataset: str, source_camera: str) -> str:
    """Map a dataset's own camera name to the canonical one; unknown names are an error."""
    table = SOURCE_CAMERAS.get(dataset)
    if table is None:
        raise KeyError(f"no camera table for dataset {dataset!r}; known: {sorted(SOURCE_CAMERAS)}")
    if source_camera not in table:
        raise KeyError(f"{dataset}: unknown camera {source_camera!r}; known: {sorted(table)}")
    return table[source_camera]
