import copy

import pytest

from dataengine.errors import SchemaError
from dataengine.schema import validate_sample


def good_sample() -> dict:
    return {
        "schema": "sample/1", "id": "demo-abc_1", "dataset": "demo", "split": "train", "task": "vqa.test",
        "scene_id": "demo:scene1", "frame_id": "demo:scene1:0", "layout": "single_image",
        "media": [{"member": "img0.jpg", "camera": "front", "source_camera": "CAM_FRONT", "time_offset_s": 0.0,
                   "width": 16, "height": 8, "sha1": "0" * 40}],
        "conversations": [{"role": "user", "content": "What is ahead?"},
                          {"role": "assistant", "content": "A car."}],
        "meta": {},
    }


def test_good_sample_passes():
    validate_sample(good_sample())


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s.pop("scene_id"), "scene_id: missing"),
    (lambda s: s.update(id="Has.Dot"), "id: 'Has.Dot'"),
    (lambda s: s.update(split="training"), "split: 'training'"),
    (lambda s: s.update(layout="panorama"), "layout: 'panorama'"),
    (lambda s: s["media"][0].update(camera="CAM_FRONT"), "media[0].camera"),
    (lambda s: s["media"][0].update(width=0), "media[0].width"),
    (lambda s: s["media"][0].update(intrinsics=[[1, 0], [0, 1]]), "media[0].intrinsics"),
    (lambda s: s["conversations"][0].update(content="<image>\nWhat?"), "conversations[0].content"),
    (lambda s: s["conversations"][0].update(role="system"), "conversations[0].role"),
    (lambda s: s.update(command="u_turn"), "command: 'u_turn'"),
    (lambda s: s.update(trajectory={"dt_s": 0.5, "xy": [[1, 2]], "valid": [True, False]}), "trajectory.valid"),
    (lambda s: s.update(ego={"speed_mps": float("nan")}), "ego.speed_mps"),
    (lambda s: s.update(scene_id="no-namespace"), "scene_id: 'no-namespace'"),
    (lambda s: s.update(extra_field=1), "unknown top-level fields ['extra_field']"),
])
def test_bad_field_is_named_with_the_sample(mutate, field):
    sample = copy.deepcopy(good_sample())
    mutate(sample)
    with pytest.raises(SchemaError) as err:
        validate_sample(sample)
    assert str(err.value).startswith("sample ")
    assert field in str(err.value)


def test_every_problem_reported_at_once():
    sample = good_sample()
    sample["split"] = "dev"
    sample["media"][0]["camera"] = "left"
    with pytest.raises(SchemaError) as err:
        validate_sample(sample)
    assert "split" in str(err.value) and "media[0].camera" in str(err.value)
