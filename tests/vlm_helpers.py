"""Samples shaped like the curriculum loader's (key, conversation, groups, kinds, images),
rendered by the real prompt renderer, for the model-layer and training tests."""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from dataengine.prompts import render

QUESTION = "What should the ego vehicle do?"
ANSWER = "Slow down: a pedestrian is crossing."


@dataclass
class Sample:
    """LoadedSample-shaped (curricula/loader.py)."""

    key: str
    conversation: list[dict]
    groups: list[list[int]]
    kinds: list[str]
    images: list = field(default_factory=list)
    source: str = "test/train"


def color(value: int, size=(28, 28)) -> Image.Image:
    return Image.new("RGB", size, (value, value, value))


def conv(prefix: str, answer: str = ANSWER) -> list[dict]:
    return [{"role": "user", "content": prefix + QUESTION}, {"role": "assistant", "content": answer}]


def rendered(n_views: int, layout: str = "multi_view", frames: int = 1) -> Sample:
    """A sample through the real prompt renderer (dataengine.prompts)."""
    cams = ["front", "front_left", "front_right", "back", "back_left", "back_right"][:n_views]
    media = [{"camera": c, "time_offset_s": -0.5 * (frames - 1 - t)} for c in cams for t in range(frames)]
    r = render({"layout": layout, "media": media, "conversations": conv("")})
    return Sample(f"{layout}-{n_views}", r.conversation, r.groups, r.kinds,
                  [color(20 * i) for i in range(len(media))])


def runs(ids, token: int) -> list[int]:
    """Lengths of the runs of `token` in a sequence (a tensor or a list): one per placeholder."""
    out, n = [], 0
    for t in (ids.tolist() if hasattr(ids, "tolist") else list(ids)) + [-1]:
        if t == token:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out
