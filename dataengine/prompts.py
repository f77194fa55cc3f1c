"""Perspective-aware prompts: a sample's media and first user turn become the model prompt.

Samples carry no placeholders; the renderer places one per image, or one per video frame
group (a camera's frames in time order), and names every view. Styles are registered by
name so a curriculum stage or a benchmark picks one with a string.

`robotron` (default) reproduces RoboTron-Drive's released demo prompts character for
character (`zhijian11/DriveMM:scripts/inference_demo/demo_image.py`, `demo_video.py`
@ d384f43); the question follows the view sentence after one space, not a newline:
  multi-view:  "1: <image> 2: <image> ... 6: <image>. These six images are the front view, ... of the ego vehicle. {q}"
  single:      "<image>\\nThere is an image of traffic captured from the front view of the ego vehicle. {q}"
  video:       "<image>.\\nThere is a video of traffic captured from the front view of the ego vehicle. {q}"
  multi-view video: numbered like multi-view, each item a video ("These six videos are ...").
A single-view question that already says where its image comes from (CODA-LM's own
"There is an image of traffic captured from the perspective of the ego car. ...") gets the
placeholder alone, so the view sentence is never doubled.
`camera_tags` puts each view's camera name next to its placeholder instead:
  "[front image] <image>\\n[front left image] <image>\\n{q}"
`drivebench` is DriveBench's zero-shot prompt (worldbench/drivebench @ 723908f, `prompt.txt`
as `inference/utils.py:replace_system_prompt` adapts it and `inference/llava1.5.py` lays it
out): the placeholders one per line, then the system instructions naming the cameras given
(nuScenes channel names, "a single camera image" for one), then the question; the
instructions are our wording of the official ones.
`plain` writes the placeholders alone, one per line, with no driving text: for
general-domain data (captions for alignment, as LLaVA's `plain` pretraining template):
  "<image>\\n{q}"
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from dataengine.cameras import VIEW_WORDS

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                9: "nine", 10: "ten"}


@dataclass(frozen=True)
class Rendered:
    """The conversation with placeholders in its first user turn, and what each stands for."""

    conversation: list[dict]
    groups: list[list[int]]   # media indices behind each placeholder, in placeholder order
    kinds: list[str]          # "image" or "video", per placeholder
    cameras: list[str]        # canonical camera per placeholder


def media_groups(sample: dict) -> tuple[list[list[int]], list[str], list[str]]:
    """Placeholder groups: one per image; for video layouts one per camera (in order of first
    appearance in `media`), its frames sorted by time offset."""
    media = sample["media"]
    if sample["layout"] in ("single_image", "multi_view"):
        return [[i] for i in range(len(media))], ["image"] * len(media), [m["camera"] for m in media]
    order: dict[str, list[int]] = {}
    for i, m in enumerate(media):
        order.setdefault(m["camera"], []).append(i)
    groups = [sorted(idx, key=lambda i: media[i]["time_offset_s"]) for idx in order.values()]
    return groups, ["video"] * len(groups), list(order)


def view_name(camera: str) -> str:
    """'front left view', 'bird's-eye view': a canonical camera as the prompts name it."""
    words = VIEW_WORDS[camera]
    return words if words.endswith(" view") else f"{words} view"


def _views(cameras: list[str]) -> str:
    words = [view_name(c) for c in cameras]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


SAYS_ITS_VIEW = re.compile(r"\s*There is an? (image|video) of traffic captured from ")


def _robotron(sample: dict, cameras: list[str], kinds: list[str], ph: str) -> str:
    n = len(cameras)
    if n == 0:
        return ""
    noun = "video" if kinds[0] == "video" else "image"
    if n == 1 and SAYS_ITS_VIEW.match(sample["conversations"][0]["content"]):
        return f"{ph}\n" if noun == "image" else f"{ph}.\n"
    if n == 1 and noun == "image":
        return f"{ph}\nThere is an image of traffic captured from the {_views(cameras)} of the ego vehicle. "
    if n == 1:
        return f"{ph}.\nThere is a video of traffic captured from the {_views(cameras)} of the ego vehicle. "
    numbered = " ".join(f"{i + 1}: {ph}" for i in range(n))
    count = NUMBER_WORDS.get(n, str(n))
    return f"{numbered}. These {count} {noun}s are the {_views(cameras)} of the ego vehicle. "


def _camera_tags(sample: dict, cameras: list[str], kinds: list[str], ph: str) -> str:
    return "".join(f"[{VIEW_WORDS[c]} {k}] {ph}\n" for c, k in zip(cameras, kinds))


def _plain(sample: dict, cameras: list[str], kinds: list[str], ph: str) -> str:
    return "".join(f"{ph}\n" for _ in cameras)


DRIVEBENCH_SYSTEM = (
    "You are an autonomous driving assistant that analyses driving scenes and answers questions about them. "
    "{cameras} Image coordinates are normalized to [0, 1]: (0,0) is the top left corner and (1,1) the bottom right.\n"
    "\nInstructions:\n1. How to answer:\n- A multiple-choice question: give the chosen option and explain it.\n"
    "- An \"is\" or \"is not\" question: answer \"Yes\" or \"No\" and explain it.\n"
    "- An open perception or prediction question: say which camera each object you mention is seen by.\n"
    "2. What matters for driving:\n- Focus on the attributes of objects (category, status, appearance) and on "
    "motion (speed, action, acceleration) that bear on safe driving decisions.\n"
    "\nUse the images and the coordinates to answer the perception, prediction, planning or behavior question as "
    "it asks.\n")


def _drivebench(sample: dict, cameras: list[str], kinds: list[str], ph: str) -> str:
    channels = [f"CAM_{c.upper()}" for c in cameras]
    if len(channels) == 1:
        given = f"You are provided with a single camera image: [{channels[0]}]."
    else:
        given = f"You are provided with {len(channels)} camera images in the sequence [{', '.join(channels)}]."
    return "".join(f"{ph}\n" for _ in cameras) + DRIVEBENCH_SYSTEM.format(cameras=given)


# A style takes (sample, camera per placeholder, kind per placeholder, placeholder token) and
# returns the text that goes before the first user turn.
STYLES: dict[str, Callable[[dict, list[str], list[str], str], str]] = {
    "robotron": _robotron,
    "camera_tags": _camera_tags,
    "plain": _plain,
    "drivebench": _drivebench,
}


def render(sample: dict, style: str = "robotron", placeholder: str = "<image>") -> Rendered:
    """Render a sample's conversation for a model whose image placeholder is `placeholder`.

    Raises:
        KeyError: `style` is not in STYLES (the message lists the known names).
    """
    if style not in STYLES:
        raise KeyError(f"unknown prompt style {style!r}; known: {', '.join(STYLES)}")
    groups, kinds, cameras = media_groups(sample)
    prefix = STYLES[style](sample, cameras, kinds, placeholder)
    conversation = [dict(turn) for turn in sample["conversations"]]
    conversation[0]["content"] = prefix + conversation[0]["content"]
    return Rendered(conversation, groups, kinds, cameras)
