"""The one frame choice training and evaluation share: which media of a sample a model sees."""
from __future__ import annotations

import pytest

from dataengine.frames import kept_count, kept_media, spaced


def sample(layout: str, frames: dict[str, int]) -> dict:
    """Cameras' frames interleaved in media order, each camera's listed newest first."""
    media = [{"camera": cam, "time_offset_s": -0.5 * t} for t in range(max(frames.values()))
             for cam, n in frames.items() if t < n]
    return {"layout": layout, "media": media}


def test_spaced_keeps_first_and_last_and_repeats_when_short():
    assert spaced(6, 3) == [0, 3, 5] and spaced(5, 3) == [0, 2, 4] and spaced(7, 1) == [0]
    assert spaced(2, 4) == [0, 0, 1, 1]


@pytest.mark.parametrize("layout, frames, fpv", [
    ("multi_view_video", {"front": 6, "back": 6}, 3),
    ("video", {"front": 2}, 8),
    ("multi_view_video", {"front": 9, "back": 2}, 4),
    ("multi_view", {"front": 1, "back": 1}, 1),
])
def test_kept_media_and_its_count_from_the_manifest_agree(layout, frames, fpv):
    s = sample(layout, frames)
    kept = kept_media(s, fpv)
    assert kept == sorted(set(kept))
    assert len(kept) == kept_count(layout, [m["camera"] for m in s["media"]], fpv)


def test_each_video_keeps_evenly_spaced_frames_in_time():
    s = sample("multi_view_video", {"front": 6, "back": 6})
    kept = [s["media"][i] for i in kept_media(s, 3)]
    for cam in ("front", "back"):
        assert [m["time_offset_s"] for m in kept if m["camera"] == cam] == [-0.0, -1.0, -2.5]
