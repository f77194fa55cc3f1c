"""Rigid transforms and pinhole projection shared by the converters.

Quaternions are (w, x, y, z), as nuScenes stores them. Camera frames follow OpenCV
(x right, y down, z forward) unless a converter says otherwise.
"""
from __future__ import annotations

import math

import numpy as np


def _product_map() -> np.ndarray:
    """(16, 9): the rotation matrix entries as sums of the quaternion's pairwise products
    q_i * q_j (flattened 4i + j, order w, x, y, z), halved; see `quat_to_matrix`."""
    w, x, y, z = range(4)
    terms = [[(y, y, -1), (z, z, -1)], [(x, y, 1), (z, w, -1)], [(x, z, 1), (y, w, 1)],
             [(x, y, 1), (z, w, 1)], [(x, x, -1), (z, z, -1)], [(y, z, 1), (x, w, -1)],
             [(x, z, 1), (y, w, -1)], [(y, z, 1), (x, w, 1)], [(x, x, -1), (y, y, -1)]]
    m = np.zeros((16, 9))
    for entry, pairs in enumerate(terms):
        for i, j, sign in pairs:
            m[4 * i + j, entry] = sign
    return m


_PRODUCTS = _product_map()
_IDENTITY = np.eye(3).reshape(9)


def quat_to_matrix(q) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion: (4,) -> (3, 3), or (..., 4) -> (..., 3, 3).

    R = I + 2 * (linear map of the pairwise products q_i q_j of the unit quaternion): one
    outer product and one small matmul for any batch, instead of nine array expressions."""
    q = np.asarray(q, dtype=float)
    q = q / np.sqrt((q * q).sum(axis=-1, keepdims=True))
    products = (q[..., :, None] * q[..., None, :]).reshape(q.shape[:-1] + (16,))
    return (_IDENTITY + 2 * (products @ _PRODUCTS)).reshape(q.shape[:-1] + (3, 3))


def yaw_to_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def matrix_yaw(rot: np.ndarray) -> float:
    return math.atan2(rot[1, 0], rot[0, 0])


def pose_matrix(translation, rotation) -> np.ndarray:
    """Homogeneous transform from a translation and a (w, x, y, z) quaternion: (3,), (4,)
    -> (4, 4), or a batch (..., 3), (..., 4) -> (..., 4, 4) in one go."""
    rotation = np.asarray(rotation, dtype=float)
    m = np.zeros(rotation.shape[:-1] + (4, 4))
    m[..., :3, :3] = quat_to_matrix(rotation)
    m[..., :3, 3] = np.asarray(translation, dtype=float)
    m[..., 3, 3] = 1.0
    return m


def quat_yaw(q) -> float:
    """Yaw (rotation about z) of a (w, x, y, z) quaternion: `matrix_yaw(quat_to_matrix(q))`
    without building the matrix."""
    w, x, y, z = (float(v) for v in q)
    n = w * w + x * x + y * y + z * z
    return math.atan2(2 * (x * y + z * w) / n, 1 - 2 * (y * y + z * z) / n)


def invert(m: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform, or of a stack (..., 4, 4) of them."""
    rot_t = np.swapaxes(m[..., :3, :3], -1, -2)
    out = np.zeros(m.shape)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ m[..., :3, 3, None])[..., 0]
    out[..., 3, 3] = 1.0
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


def project_boxes(corners_cam: np.ndarray, intrinsics: np.ndarray, sizes) -> tuple[np.ndarray, np.ndarray]:
    """Boxes in cameras, batched: (..., 8, 3) camera-frame corners, (..., 3, 3) intrinsics and
    (..., 2) image (width, height), broadcast together -> visible (...) and xyxy (..., 4).

    Visible follows nuScenes-devkit `box_in_image(..., BoxVisibility.ANY)`: every corner is
    more than 0.1 m in front of the camera and at least one corner more than 1 m in front
    projects inside the image. The 2D box is the corners' extent clipped to the image.
    """
    z = corners_cam[..., 2]
    uvw = corners_cam @ np.swapaxes(intrinsics, -1, -2)
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[..., :2] / uvw[..., 2:3]
    size = np.asarray(sizes, dtype=float)[..., None, :]
    inside = (uv > 0).all(axis=-1) & (uv < size).all(axis=-1) & (z > 1)
    visible = (z > 0.1).all(axis=-1) & inside.any(axis=-1)
    size = size[..., 0, :]
    xyxy = np.concatenate([np.clip(uv.min(axis=-2), 0, size), np.clip(uv.max(axis=-2), 0, size)], axis=-1)
    return visible, xyxy


def boxes_2d_in_image(corners_cam: np.ndarray, intrinsics, width: int, height: int) -> list:
    """[x1, y1, x2, y2] per box of (N, 8, 3) camera-frame corners in one camera, or None
    where not visible (`project_boxes`' rule)."""
    corners_cam = np.asarray(corners_cam, dtype=float).reshape(-1, 8, 3)
    visible, xyxy = project_boxes(corners_cam, np.asarray(intrinsics, dtype=float), [width, height])
    return [[float(v) for v in box] if seen else None for seen, box in zip(visible, xyxy)]


def box_2d_in_image(corners_cam: np.ndarray, intrinsics, width: int, height: int):
    """`boxes_2d_in_image` for one box's (8, 3) corners."""
    return boxes_2d_in_image(corners_cam[None], intrinsics, width, height)[0]
