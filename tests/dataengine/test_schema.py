import copy
import re

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
    (lambda s: s["conversations"][0].update(role="system"), "conversations[0].role: must be 'user' or 'assistant'"),
    (lambda s: s["conversations"].reverse(), "conversations[0].role: the first turn must be the user's"),
    (lambda s: s["conversations"].insert(0, {"role": "assistant", "content": "Hello."}),
     "conversations[0].role: the first turn must be the user's"),
    (lambda s: s.update(command="u_turn"), "command: 'u_turn'"),
    (lambda s: s.update(trajectory={"dt_s": 0.5, "xy": [[1, 2]], "valid": [True, False]}), "trajectory.valid"),
    (lambda s: s.update(ego={"speed_mps": float("nan")}), "ego.speed_mps"),
    (lambda s: s.update(scene_id="no-namespace"), "scene_id: 'no-namespace'"),
    (lambda s: s.update(extra_field=1), "unknown top-level fields ['extra_field']"),
    (lambda s: s.update(schema="sample/9"), "schema: 'sample/9', this engine reads"),
    (lambda s: s.update(id=7), "id: 7 must match"),
    (lambda s: s.update(dataset=""), "dataset: must be a non-empty string"),
    (lambda s: s.update(task=3), "task: must be a non-empty string"),
    (lambda s: s.update(frame_id="x"), "frame_id: 'x' must be '<namespace>:<source id>'"),
    (lambda s: s.update(media={}), "media: must be a list"),
    (lambda s: s["media"].append("img1.jpg"), "media[1]: must be an object"),
    (lambda s: s["media"][0].update(member="IMG0.jpg"), "media[0].member: 'IMG0.jpg' must look like"),
    (lambda s: s["media"].append(dict(s["media"][0], camera="back")), "media[1].member: 'img0.jpg' repeated"),
    (lambda s: s["media"][0].update(source_camera=""), "media[0].source_camera: must be a non-empty string"),
    (lambda s: s["media"][0].update(time_offset_s="0"), "media[0].time_offset_s: must be a finite number"),
    (lambda s: s["media"][0].update(height=True), "media[0].height: must be a positive integer"),
    (lambda s: s["media"][0].update(sha1="A" * 40), "media[0].sha1: must be 40 lowercase hex digits"),
    (lambda s: s["media"][0].update(extrinsics=[[1, 0, 0]] * 3), "media[0].extrinsics: must be a 4x4 matrix"),
    (lambda s: s.update(conversations=[]), "conversations: must be a non-empty list"),
    (lambda s: s["conversations"][1].update(content=None), "conversations[1].content: must be a string"),
    (lambda s: s["conversations"][1].update(content="see <video>"), "conversations[1].content: carries an image"),
    (lambda s: s.update(meta=[]), "meta: must be an object"),
    (lambda s: s.update(ego=[1]), "ego: must be an object"),
    (lambda s: s.update(ego={"accel_mps2": "fast"}), "ego.accel_mps2: must be a finite number"),
    (lambda s: s.update(ego={"yaw_rate_rps": float("inf")}), "ego.yaw_rate_rps: must be a finite number"),
    (lambda s: s.update(ego={"history_xy": [[1.0]]}), "ego.history_xy: must be a list of [x, y]"),
    (lambda s: s.update(trajectory=[]), "trajectory: must be an object"),
    (lambda s: s.update(trajectory={"dt_s": 0.5, "xy": [], "valid": [], "frame": "enu"}), "trajectory.frame: 'enu'"),
    (lambda s: s.update(trajectory={"dt_s": 0, "xy": [], "valid": []}), "trajectory.dt_s: must be a positive number"),
    (lambda s: s.update(trajectory={"xy": [], "valid": []}), "trajectory.dt_s: must be a positive number"),
    (lambda s: s.update(trajectory={"dt_s": 0.5, "xy": "1,2", "valid": []}), "trajectory.xy: must be a list"),
    (lambda s: s.update(trajectory={"dt_s": 0.5, "xy": [[1, 2]], "valid": [1]}),
     "trajectory.valid: must be a list of bool"),
    (lambda s: s.update(objects={}), "objects: must be a list"),
    (lambda s: s.update(objects=[{"category": None}]), "objects[0].category: must be a string"),
    (lambda s: s.update(objects=[{"category": "car", "box_2d": [{"camera": "CAM_FRONT", "xyxy": [0, 0, 1, 1]}]}]),
     "objects[0].box_2d[0]: needs a canonical camera"),
    (lambda s: s.update(objects=[{"category": "car", "box_2d": [{"camera": "front", "xyxy": [0, 0, 1]}]}]),
     "objects[0].box_2d[0]: needs a canonical camera"),
])
def test_bad_field_is_named_with_the_sample(mutate, field):
    sample = copy.deepcopy(good_sample())
    mutate(sample)
    with pytest.raises(SchemaError) as err:
        validate_sample(sample)
    name, problems = _problems(str(err.value))
    assert name == (sample["id"] if isinstance(sample.get("id"), str) else "<no id>")
    assert any(p.startswith(field) for p in problems), problems


def _problems(message: str) -> tuple[str, list[str]]:
    """The sample's name and its problems: each problem starts with the field it names."""
    m = re.fullmatch(r"sample (<no id>|\S+): (.+)", message, re.S)
    assert m, message
    return m.group(1), m.group(2).split("; ")


def test_every_problem_reported_at_once():
    sample = good_sample()
    sample["split"] = "dev"
    sample["media"][0]["camera"] = "left"
    with pytest.raises(SchemaError) as err:
        validate_sample(sample)
    assert str(err.value) == (
        "sample demo-abc_1: split: 'dev' is not one of ('train', 'val', 'test'); "
        "media[0].camera: 'left' is not one of front, front_left, front_right, back, back_left, back_right, "
        "side_left, side_right, bev")


def test_a_missing_schema_is_reported_once():
    sample = good_sample()
    del sample["schema"]
    with pytest.raises(SchemaError) as err:
        validate_sample(sample)
    assert str(err.value) == "sample demo-abc_1: schema: missing"


@pytest.mark.parametrize("mutate, expected", [
    (lambda s: s.update(media=["a.jpg", "b.jpg"]), ["media[0]: must be an object", "media[1]: must be an object"]),
    (lambda s: s["conversations"].extend([{"role": "system"}, {"role": "tool"}]),
     ["conversations[2].role: must be 'user' or 'assistant'", "conversations[3].role: must be 'user' or 'assistant'"]),
    (lambda s: s.update(objects=[{"category": 1}, {"category": None}]),
     ["objects[0].category: must be a string", "objects[1].category: must be a string"]),
])
def test_a_second_bad_entry_after_a_first_is_named_too(mutate, expected):
    sample = good_sample()
    mutate(sample)
    with pytest.raises(SchemaError) as err:
        validate_sample(sample)
    assert _problems(str(err.value)) == ("demo-abc_1", expected)


NAN, INF = float("nan"), float("inf")
TRAJ = {"dt_s": 0.5, "xy": [[1.0, 0.5], [2.0, 1.0]], "valid": [True, True]}
BOX = {"category": "car", "box_2d": [{"camera": "front", "xyxy": [1.0, 2.0, 3.0, 4.0]}]}
EYE3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
EYE4 = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def _set(path, value):
    """A mutation that puts a good nested structure on the sample, then `value` at `path`."""
    def mutate(s):
        s["trajectory"] = copy.deepcopy(TRAJ)
        s["ego"] = {"speed_mps": 1.0, "history_xy": [[-1.0, 0.0], [-0.5, 0.0]]}
        s["objects"] = [copy.deepcopy(BOX)]
        s["media"][0].update(intrinsics=copy.deepcopy(EYE3), extrinsics=copy.deepcopy(EYE4))
        target = s
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return mutate


def test_good_nested_structures_pass():
    sample = good_sample()
    _set(["meta", "x"], 1)(sample)
    validate_sample(sample)


@pytest.mark.parametrize("path, field", [
    (["trajectory", "xy", 1, 0], "trajectory.xy"),
    (["ego", "history_xy", 0, 1], "ego.history_xy"),
    (["media", 0, "intrinsics", 0, 2], "media[0].intrinsics"),
    (["media", 0, "extrinsics", 2, 3], "media[0].extrinsics"),
    (["objects", 0, "box_2d", 0, "xyxy", 3], "objects[0].box_2d[0]"),
])
@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_non_finite_floats_in_points_matrices_and_boxes_are_named(path, field, value):
    """Plain floats take a fast path through the finiteness check; NaN and infinities must not
    slip through it (orjson would write them as null)."""
    sample = good_sample()
    _set(path, value)(sample)
    with pytest.raises(SchemaError) as err:
        validate_sample(sample)
    assert field in str(err.value) and "finite" in str(err.value)


@pytest.mark.parametrize("value", [True, "1.0", None], ids=["bool", "str", "none"])
def test_non_numbers_in_points_are_named(value):
    sample = good_sample()
    _set(["trajectory", "xy", 0, 1], value)(sample)
    with pytest.raises(SchemaError, match=r"trajectory\.xy"):
        validate_sample(sample)


def test_every_optional_field_at_its_best_passes():
    sample = good_sample()
    _set(["meta", "x"], 1)(sample)
    sample["ego"].update(accel_mps2=-0.5, yaw_rate_rps=0)
    sample["trajectory"]["frame"] = "lidar_xright_yfwd"
    sample["command"] = "turn_left"
    sample["layout"] = "multi_view_video"
    sample["media"][0].update(member="img0.png", time_offset_s=-0.5)
    validate_sample(sample)


def test_integers_one_pixel_images_and_objects_without_boxes_pass():
    """Integers are numbers too (points, matrices, boxes); 1 is a positive size; box_2d is optional."""
    sample = good_sample()
    sample["media"][0].update(width=1, height=1, intrinsics=[[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    sample["trajectory"] = {"dt_s": 1, "xy": [[1, 0], [2, -1]], "valid": [True, True]}
    sample["ego"] = {"speed_mps": 3, "history_xy": [[-1, 0]]}
    sample["objects"] = [{"category": "car"}, {"category": "bus", "box_2d": [{"camera": "back", "xyxy": [0, 0, 4, 2]}]}]
    validate_sample(sample)


def test_a_sample_without_an_id_is_named_as_such():
    sample = good_sample()
    del sample["id"]
    with pytest.raises(SchemaError, match=r"^sample <no id>: id: missing"):
        validate_sample(sample)
    with pytest.raises(SchemaError, match="must be a JSON object, got list"):
        validate_sample([sample])
