"""Which frames of a video sample a model sees, for a stage's or benchmark's `frames_per_video`.

A video sample (layout `video` or `multi_view_video`) holds one video per camera. Each video
keeps at most `frames_per_video` frames, evenly spaced in time with the first and last kept;
images are always kept whole. The training loader, the sampler's token estimates, the
encoder (which then brings every video to exactly that count) and evaluation all pick
frames here, so a model is evaluated on the frames it was trained on.
"""
from __future__ import annotations

import numpy as np

from dataengine.prompts import media_groups

VIDEO_LAYOUTS = ("video", "multi_view_video")


def spaced(n: int, count: int) -> list[int]:
    """`count` positions evenly spaced over 0..n-1 (nearest, halves rounding up), first and
    last included; with count > n some repeat, as LLaVA-NeXT's `force_sample` does."""
    return np.floor(np.linspace(0, n - 1, count) + 0.5).astype(int).tolist()


def kept_media(sample: dict, frames_per_video: int) -> list[int]:
    """Media indices kept, in media order: every image, and per camera's video (frames in
    time order) the `spaced` ones when it has more than `frames_per_video`."""
    if sample["layout"] not in VIDEO_LAYOUTS:
        return list(range(len(sample["media"])))
    kept = []
    for group in media_groups(sample)[0]:
        if len(group) > frames_per_video:
            group = [group[i] for i in spaced(len(group), frames_per_video)]
        kept += group
    return sorted(kept)


def kept_count(layout: str, cameras: list[str], frames_per_video: int) -> int:
    """How many media `kept_media` keeps, from the manifest's columns alone (one camera
    name per media item): no sample is read to plan a stage."""
    if layout not in VIDEO_LAYOUTS:
        return len(cameras)
    per_camera: dict[str, int] = {}
    for cam in cameras:
        per_camera[cam] = per_camera.get(cam, 0) + 1
    return sum(min(n, frames_per_video) for n in per_camera.values())
