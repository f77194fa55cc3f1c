"""Prompt renderer: exact rendered text per layout and style (snapshots), placeholder groups,
and the released RoboTron-Drive demo prompts reproduced from the real demo frames."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from PIL import Image

from converters.nuscenes.tables import CAMERAS, NUSCENES_ORDER
from dataengine.cameras import canonical
from dataengine.prompts import STYLES, render
from dataengine.schema import validate_sample

Q = "What should the ego vehicle do?"
A = "Keep going straight."


def make_sample(layout: str, views: list[tuple[str, float]]) -> dict:
    """A schema-valid sample whose media are (canonical camera, time offset) pairs, in that order."""
    media = [{"member": f"img{i}.jpg", "camera": cam, "source_camera": cam.upper(), "time_offset_s": t,
              "width": 64, "height": 36, "sha1": hashlib.sha1(bytes([i])).hexdigest()}
             for i, (cam, t) in enumerate(views)]
    sample = {"schema": "sample/1", "id": f"test-{layout}", "dataset": "test", "split": "val", "task": "vqa.test",
              "scene_id": "test:s", "frame_id": "test:f", "layout": layout, "media": media,
              "conversations": [{"role": "user", "content": Q}, {"role": "assistant", "content": A}], "meta": {}}
    validate_sample(sample)
    return sample


SIX = [canonical(CAMERAS, c, "nuscenes") for c in NUSCENES_ORDER]
LAYOUTS = {
    "single_image": [("front", 0.0)],
    "multi_view": [(c, 0.0) for c in SIX],
    # video frames stored out of time order: the renderer must sort them
    "video": [("front", -0.5), ("front", -1.5), ("front", 0.0), ("front", -1.0)],
    # three cameras x two frames, stored frame-major
    "multi_view_video": [("front", -0.5), ("back", -0.5), ("side_left", -0.5),
                         ("front", 0.0), ("back", 0.0), ("side_left", 0.0)],
}

SNAPSHOTS = {
    ("single_image", "robotron"):
        "<image>\nThere is an image of traffic captured from the front view of the ego vehicle. " + Q,
    ("multi_view", "robotron"):
        "1: <image> 2: <image> 3: <image> 4: <image> 5: <image> 6: <image>. These six images are the front view, "
        "front left view, front right view, back view, back left view and back right view of the ego vehicle. " + Q,
    ("video", "robotron"):
        "<image>.\nThere is a video of traffic captured from the front view of the ego vehicle. " + Q,
    ("multi_view_video", "robotron"):
        "1: <image> 2: <image> 3: <image>. These three videos are the front view, back view and side left view "
        "of the ego vehicle. " + Q,
    ("single_image", "camera_tags"): "[front image] <image>\n" + Q,
    ("multi_view", "camera_tags"):
        "[front image] <image>\n[front left image] <image>\n[front right image] <image>\n[back image] <image>\n"
        "[back left image] <image>\n[back right image] <image>\n" + Q,
    ("video", "camera_tags"): "[front video] <image>\n" + Q,
    ("multi_view_video", "camera_tags"): "[front video] <image>\n[back video] <image>\n[side left video] <image>\n" + Q,
    ("single_image", "plain"): "<image>\n" + Q,
    ("multi_view", "plain"): "<image>\n" * 6 + Q,
    ("video", "plain"): "<image>\n" + Q,
    ("multi_view_video", "plain"): "<image>\n" * 3 + Q,
}

GROUPS = {
    "single_image": ([[0]], ["image"], ["front"]),
    "multi_view": ([[i] for i in range(6)], ["image"] * 6, SIX),
    "video": ([[1, 3, 0, 2]], ["video"], ["front"]),
    "multi_view_video": ([[0, 3], [1, 4], [2, 5]], ["video"] * 3, ["front", "back", "side_left"]),
}


@pytest.mark.parametrize("layout,style", sorted(SNAPSHOTS))
def test_rendered_text_snapshot(layout, style):
    sample = make_sample(layout, LAYOUTS[layout])
    out = render(sample, style)
    assert out.conversation[0] == {"role": "user", "content": SNAPSHOTS[layout, style]}
    assert out.conversation[1:] == sample["conversations"][1:]
    assert sample["conversations"][0]["content"] == Q  # the sample itself is not modified
    assert out.conversation[0]["content"].count("<image>") == len(out.groups)


CODALM_Q = ("There is an image of traffic captured from the perspective of the ego car. Please provide driving "
            "suggestions for the ego car based on the current scene.")


@pytest.mark.parametrize("layout,expected", [("single_image", "<image>\n" + CODALM_Q),
                                             ("video", "<image>.\n" + CODALM_Q)])
def test_a_question_that_names_its_view_gets_no_second_view_sentence(layout, expected):
    """CODA-LM's questions open with their own view sentence: the robotron style adds only the placeholder."""
    sample = make_sample(layout, LAYOUTS[layout])
    sample["conversations"][0]["content"] = CODALM_Q
    text = render(sample, "robotron").conversation[0]["content"]
    assert text == expected and text.count("captured from") == 1


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_groups_kinds_and_cameras(layout):
    out = render(make_sample(layout, LAYOUTS[layout]))
    assert (out.groups, out.kinds, out.cameras) == GROUPS[layout]
    media = make_sample(layout, LAYOUTS[layout])["media"]
    for group, camera in zip(out.groups, out.cameras):
        assert {media[i]["camera"] for i in group} == {camera}
        times = [media[i]["time_offset_s"] for i in group]
        assert times == sorted(times)
    assert sorted(i for g in out.groups for i in g) == list(range(len(media)))


def test_model_placeholder_token_is_used():
    out = render(make_sample("multi_view", LAYOUTS["multi_view"]), placeholder="<|image_pad|>")
    assert out.conversation[0]["content"].count("<|image_pad|>") == 6
    assert "<image>" not in out.conversation[0]["content"]


def test_bev_is_named_once_as_a_view():
    out = render(make_sample("multi_view", [("front", 0.0), ("bev", 0.0)]))
    assert "These two images are the front view and bird's-eye view of the ego vehicle. " in \
        out.conversation[0]["content"]


def test_text_only_sample_gets_no_prefix():
    sample = make_sample("single_image", [])
    assert render(sample).conversation[0]["content"] == Q


def test_unknown_style_is_an_error_listing_the_known_ones():
    with pytest.raises(KeyError, match="unknown prompt style 'llava'.*robotron.*camera_tags"):
        render(make_sample("single_image", LAYOUTS["single_image"]), "llava")
    assert set(STYLES) >= {"robotron", "camera_tags"}


# --- real samples: RoboTron-Drive's released demo prompts -------------------------------------------
# zhijian11/DriveMM:scripts/inference_demo/demo_image.py and demo_video.py @ d384f43: the prompt text
# up to the question, exactly as the demos write it.
DEMO_DRIVELM_PREFIX = ("1: <image> 2: <image> 3: <image> 4: <image> 5: <image> 6: <image>. These six images are the "
                       "front view, front left view, front right view, back view, back left view and back right view "
                       "of the ego vehicle. ")
DEMO_DRIVELM_Q = "Would <c3,CAM_FRONT,373.7,526.2> be in the moving direction of the ego vehicle?"
DEMO_VIDEO_PREFIX = "<image>.\nThere is a video of traffic captured from the front view of the ego vehicle. "
DEMO_BDDX_Q = "Describe the current action of the ego car, and explain the cause of this car's action."
# demo_video.py lists each BDD-X clip's frames in this order
DEMO_BDDX_ORDER = ["_0.png", "_3.png", "_7.png", "_11.png", "_15.png"]


def _media_item(i: int, path: Path, camera: str, source_camera: str, t: float) -> dict:
    data = path.read_bytes()
    with Image.open(path) as img:
        width, height = img.size
        suffix = "png" if img.format == "PNG" else "jpg"
    return {"member": f"img{i}.{suffix}", "camera": camera,
            "source_camera": source_camera, "time_offset_s": t, "width": width, "height": height,
            "sha1": hashlib.sha1(data).hexdigest()}


def _sample(layout: str, media: list[dict], question: str) -> dict:
    sample = {"schema": "sample/1", "id": "demo", "dataset": "demo", "split": "test", "task": "vqa.demo",
              "scene_id": "demo:s", "frame_id": "demo:f", "layout": layout, "media": media,
              "conversations": [{"role": "user", "content": question}, {"role": "assistant", "content": ""}],
              "meta": {}}
    validate_sample(sample)
    return sample


def test_real_drivelm_demo_prompt(real_samples):
    folder = real_samples / "drivemm_demo" / "drivelm"
    files = {re.search(r"__(CAM_[A-Z_]+)__", p.name).group(1): p for p in folder.glob("*.jpg")}
    assert sorted(files) == sorted(NUSCENES_ORDER)
    media = [_media_item(i, files[c], canonical(CAMERAS, c, "drivelm"), c, 0.0) for i, c in enumerate(NUSCENES_ORDER)]
    out = render(_sample("multi_view", media, DEMO_DRIVELM_Q))
    assert out.conversation[0]["content"] == DEMO_DRIVELM_PREFIX + DEMO_DRIVELM_Q
    assert out.kinds == ["image"] * 6  # demo_image.py: modalities = ['image'] * 6
    assert [media[g[0]]["source_camera"] for g in out.groups] == list(NUSCENES_ORDER)
    assert all((m["width"], m["height"]) == (1600, 900) for m in media)


@pytest.mark.parametrize("clip", ["1", "2"])
def test_real_bddx_demo_prompt(real_samples, clip):
    # stored in file-name order (_0, _11, _15, _3, _7); the frame number orders them in time
    paths = sorted((real_samples / "drivemm_demo" / "bddx" / clip).glob("*.png"))
    frame_no = [int(p.stem.rsplit("_", 1)[1]) for p in paths]
    media = [_media_item(i, p, "front", "front", (n - max(frame_no)) / 15.0)
             for i, (p, n) in enumerate(zip(paths, frame_no))]
    out = render(_sample("video", media, DEMO_BDDX_Q))
    assert out.conversation[0]["content"] == DEMO_VIDEO_PREFIX + DEMO_BDDX_Q
    assert out.kinds == ["video"]  # demo_video.py: modalities = ['video'], the frames as one list
    assert [paths[i].name[-len(s):] for i, s in zip(out.groups[0], DEMO_BDDX_ORDER)] == DEMO_BDDX_ORDER
    assert all((m["width"], m["height"]) == (455, 256) for m in media)
