"""Batched geometry: the one-batch forms agree with the per-item forms and with pyquaternion."""
import copy
import math

import numpy as np
import pytest
from pyquaternion import Quaternion

from converters.nuscenes.converter import NuScenesConverter
from converters.nuscenes.scene import SceneGeometry
from dataengine.geometry import (
    box_corners,
    boxes_2d_in_image,
    invert,
    matrix_yaw,
    pose_matrix,
    project_boxes,
    quat_to_matrix,
    quat_yaw,
    yaw_to_quat,
)


def test_quaternions_match_pyquaternion_single_and_batched():
    q = np.random.default_rng(0).normal(size=(2, 5, 4)) * 3  # not unit length: normalised first
    batch = quat_to_matrix(q)
    assert batch.shape == (2, 5, 3, 3)
    for i, j in np.ndindex(2, 5):
        ref = Quaternion(q[i, j]).normalised.rotation_matrix
        assert np.allclose(batch[i, j], ref, atol=1e-12)
        assert np.allclose(quat_to_matrix(list(q[i, j])), ref, atol=1e-12)
        assert math.isclose(quat_yaw(q[i, j]), matrix_yaw(ref), abs_tol=1e-12)


def test_batched_poses_invert():
    rng = np.random.default_rng(1)
    m = pose_matrix(rng.normal(size=(7, 3)) * 100, rng.normal(size=(7, 4)))
    assert np.allclose(invert(m) @ m, np.eye(4), atol=1e-9)
    assert np.allclose(invert(m[3]), np.linalg.inv(m[3]), atol=1e-9)


def test_project_boxes_broadcast_equals_one_camera_at_a_time():
    rng = np.random.default_rng(2)
    centers = np.c_[rng.uniform(-30, 30, 40), rng.uniform(-30, 30, 40), rng.uniform(-1, 1, 40)]
    corners = box_corners(centers, np.tile([1.9, 4.5, 1.6], (40, 1)),
                          np.array([yaw_to_quat(y) for y in rng.uniform(-3, 3, 40)]))
    # 3 cameras looking forward, left and backward (ego -> OpenCV axes, then turned)
    axes = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)
    turns = [quat_to_matrix(yaw_to_quat(a)) for a in (0.0, math.pi / 2, math.pi)]
    rotations = np.stack([axes @ t.T for t in turns])
    intrinsics = np.array([[[1266.0, 0, 800], [0, 1266.0, 450], [0, 0, 1]]] * 2 + [[[600.0, 0, 320], [0, 600, 240], [0, 0, 1]]])
    sizes = np.array([[1600, 900], [1600, 900], [640, 480]])
    in_cams = corners[None] @ np.swapaxes(rotations, -1, -2)[:, None]  # (3 cameras, 40 boxes, 8, 3)
    visible, xyxy = project_boxes(in_cams, intrinsics[:, None], sizes[:, None])
    assert visible.shape == (3, 40) and xyxy.shape == (3, 40, 4) and 0 < visible.sum() < 120
    for c in range(3):
        one = boxes_2d_in_image(in_cams[c], intrinsics[c], *sizes[c])
        assert [b is not None for b in one] == visible[c].tolist()
        assert all(np.allclose(b, xyxy[c, i]) for i, b in enumerate(one) if b is not None)


@pytest.fixture(scope="module")
def scene_frames(nuscenes_root):
    units = sorted(NuScenesConverter(nuscenes_root, None).units(), key=lambda u: u.id)
    return units[0].payload["frames"]


def test_scene_batch_equals_keyframe_by_keyframe(scene_frames):
    """One batch per scene gives every keyframe the objects a one-keyframe batch gives it."""
    scene = SceneGeometry(scene_frames, list(range(len(scene_frames))))
    assert sum(len(v) for v in scene.objects.values()) > 0
    for k, frame in enumerate(scene_frames):
        assert scene.objects[k] == SceneGeometry([frame], [0]).objects[0]


def test_scene_windows_pad_invalid_points(scene_frames):
    """Past the scene's start and over a bad pose, points repeat the previous valid one."""
    frames = copy.deepcopy(scene_frames)
    frames[3]["sensors"]["LIDAR_TOP"]["ego_pose"]["translation"][0] = float("nan")
    scene = SceneGeometry(frames, [])
    xy, valid = scene.window(1, range(1, 4))  # keyframes 2, 3 (bad), 4
    assert valid == [True, False, True] and xy[1] == xy[0]
    xy, valid = scene.window(1, range(-1, -4, -1))  # keyframes 0, -1, -2
    assert valid == [True, False, False] and xy[1] == xy[2] == xy[0]
    assert scene.window(0, range(0, 1)) == ([[0.0, 0.0]], [True])  # a keyframe is its own origin
