"""Rigid transforms and pinhole projection shared by the converters.

Quaternions are (w, x, y, z), as nuScenes stores them. Camera frames follow OpenCV
(x right, y down, z forward) unless a converter says otherwise.
"""
from __future__ import annotations

import math

import numpy as np


def quat_to_matrix(q) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion: (4,) -> (3, 3), or (N, 4) -> (N, 3, 3)."""
    q = np.asarray(q, dtype=float)
    if q.ndim == 1:  # the common single-pose case, without array-op overhead
        w, x, y, z = (float(v) for v in q / math.sqrt(float(q @ q)))
        return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    w, x, y, z = np.moveaxis(q / np.linalg.norm(q, axis=-1, keepdims=True), -1, 0)
    m = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def yaw_to_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def matrix_yaw(rot: np.ndarray) -> float:
    return math.atan2(rot[1, 0], rot[0, 0])


def pose_matrix(translation, rotation) -> np.ndarray:
    """4x4 homogeneous transform from a translation and a (w, x, y, z) quaternion."""
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(rotation)
    m[:3, 3] = np.asarray(translation, dtype=float)
    return m


def invert(m: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = m[:3, :3].T
    out[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return out


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points."""
    return points @ m[:3, :3].T + m[:3, 3]


_UNIT_CORNERS = np.array([[1, 1, 1], [1, -1, 1], [1, -1, -1], [1, 1, -1],
                          [-1, 1, 1], [-1, -1, 1], [-1, -1, -1], [-1, 1, -1]], dtype=float) / 2


def box_corners(center, size_wlh, rotation) -> np.ndarray:
    """The 8 corners of a box, (8, 3), or of N boxes, (N, 8, 3), in the devkit's corner order:
    size is (width, length, height), length along the box's x axis."""
    size = np.asarray(size_wlh, dtype=float)
    local = _UNIT_CORNERS * size[..., None, [1, 0, 2]]  # x by length, y by width, z by height
    rot = quat_to_matrix(rotation)
    return local @ np.swapaxes(rot, -1, -2) + np.asarray(center, dtype=float)[..., None, :]


def project(points_cam: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pinhole projection of (N, 3) camera-frame points to (N, 2) pixels."""
    uvw = points_cam @ np.asarray(intrinsics).T
    return uvw[:, :2] / uvw[:, 2:3]


def boxes_2d_in_image(corners_cam: np.ndarray, intrinsics, width: int, height: int) -> list:
    """[x1, y1, x2, y2] per box of (N, 8, 3) camera-frame corners, or None where not visible.

    Visible follows nuScenes-devkit `box_in_image(..., BoxVisibility.ANY)`: every corner is
    more than 0.1 m in front of the camera and at least one corner more than 1 m in front
    projects inside the image. The 2D box is the corners' extent clipped to the image.
    """
    corners_cam = np.asarray(corners_cam, dtype=float).reshape(-1, 8, 3)
    z = corners_cam[..., 2]
    uvw = corners_cam @ np.asarray(intrinsics, dtype=float).T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[..., :2] / uvw[..., 2:3]
    inside = (uv[..., 0] > 0) & (uv[..., 0] < width) & (uv[..., 1] > 0) & (uv[..., 1] < height) & (z > 1)
    visible = (z > 0.1).all(axis=1) & inside.any(axis=1)
    lo = np.clip(uv.min(axis=1), 0, [width, height])
    hi = np.clip(uv.max(axis=1), 0, [width, height])
    return [[float(lo[i, 0]), float(lo[i, 1]), float(hi[i, 0]), float(hi[i, 1])] if visible[i] else None
            for i in range(len(corners_cam))]


def box_2d_in_image(corners_cam: np.ndarray, intrinsics, width: int, height: int):
    """`boxes_2d_in_image` for one box's (8, 3) corners."""
    return boxes_2d_in_image(corners_cam[None], intrinsics, width, height)[0]
