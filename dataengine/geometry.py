"""Rigid transforms and pinhole projection shared by the converters.

Quaternions are (w, x, y, z), as nuScenes stores them. Camera frames follow OpenCV
(x right, y down, z forward) unless a converter says otherwise.
"""
from __future__ import annotations

import math

import numpy as np


def quat_to_matrix(q) -> np.ndarray:
    w, x, y, z = (float(v) for v in q)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


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


def box_corners(center, size_wlh, rotation) -> np.ndarray:
    """The 8 corners (8, 3) of a box: size is (width, length, height), length along x."""
    w, l, h = size_wlh
    x = l / 2 * np.array([1, 1, 1, 1, -1, -1, -1, -1])
    y = w / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
    z = h / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    return np.stack([x, y, z], axis=1) @ quat_to_matrix(rotation).T + np.asarray(center, dtype=float)


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
