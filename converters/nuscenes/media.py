"""nuScenes camera images as sample media, shared by every converter built on nuScenes frames.

A key frame (as `NuScenesTables.keyframe` or `NuScenesIndex.camera_frame` give it) names
each camera's file, size, timestamp and calibration. These helpers read the files under the
nuScenes root (never outside it), check them against the tables, and describe each image as
a media item: canonical camera, time offset from a reference time, intrinsics and the
camera->ego extrinsics. Bytes are returned as read, never re-encoded.
"""
from __future__ import annotations

import functools
from pathlib import Path, PurePosixPath

from converters.nuscenes.tables import CAMERAS, NUSCENES_ORDER
from dataengine.cameras import canonical
from dataengine.geometry import pose_matrix
from dataengine.media import read_image

NUSCENES_DIRS = ("samples", "sweeps")


def nuscenes_relative(path: str) -> str | None:
    """The part of a path from `samples/` or `sweeps/` on, i.e. the path inside a nuScenes
    dataroot (`/data/nuscenes/samples/CAM_X/f.jpg` -> `samples/CAM_X/f.jpg`); None without one."""
    parts = PurePosixPath(path).parts
    start = next((i for i, p in enumerate(parts) if p in NUSCENES_DIRS), None)
    return None if start is None else "/".join(parts[start:])


def camera_item(root: Path, frame: dict, dataset: str, channel: str, index: int,
                reference_us: int) -> tuple[dict | None, bytes | None, str | None]:
    """One camera of a key frame as (media item, bytes, None), or (None, None, reason).

    The member is `img<index>.<jpg|png>` after the bytes' real format; `time_offset_s` is the
    camera's capture time minus `reference_us`.
    """
    cam = frame["sensors"].get(channel)
    if cam is None:
        return None, None, f"no keyframe {channel} sample_data"
    blob, reason = read_image(root, cam["filename"])
    if reason:
        return None, None, f"{channel}: {reason}"
    if cam["width"] and (blob.width, blob.height) != (cam["width"], cam["height"]):
        return None, None, (f"{channel}: image is {blob.width}x{blob.height}, table says "
                            f"{cam['width']}x{cam['height']}")
    calib = cam["calibration"]
    item = {
        "member": f"img{index}.{blob.format}", "camera": canonical(CAMERAS, channel, dataset),
        "source_camera": channel, "time_offset_s": round((cam["timestamp"] - reference_us) / 1e6, 6) + 0.0,
        "width": blob.width, "height": blob.height,
        "intrinsics": [[float(v) for v in row] for row in calib["camera_intrinsic"]],
        "extrinsics": [list(row) for row in _extrinsics(tuple(calib["translation"]), tuple(calib["rotation"]))],
    }
    return item, blob.data, None


@functools.lru_cache(maxsize=4096)
def _extrinsics(translation: tuple, rotation: tuple) -> tuple:
    """Camera->ego matrix of a calibration; a scene's frames share a few calibrations."""
    return tuple(tuple(row) for row in pose_matrix(translation, rotation).tolist())


def camera_media(root: Path, frame: dict, dataset: str,
                 channels: tuple[str, ...] = NUSCENES_ORDER) -> tuple[list[dict], list[bytes], str | None]:
    """A key frame's cameras in `channels` order (RoboTron-Drive's 6-view order by default),
    timed from the key frame; or a reason naming the first bad camera."""
    media, blobs = [], []
    for i, channel in enumerate(channels):
        item, data, reason = camera_item(root, frame, dataset, channel, i, frame["timestamp"])
        if reason:
            return [], [], reason
        media.append(item)
        blobs.append(data)
    return media, blobs, None


def keyframe_media(root: Path, frame: dict, dataset: str,
                   channels: tuple[str, ...] = NUSCENES_ORDER) -> tuple[list[dict], list[bytes], str | None]:
    """`camera_media` of a key frame whose table links are whole; a broken link is the reason."""
    if frame["problems"]:
        return [], [], "broken table link: " + "; ".join(frame["problems"])
    return camera_media(root, frame, dataset, channels)
