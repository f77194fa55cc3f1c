"""One nuScenes scene's keyframe geometry, computed for all its keyframes at once.

Per keyframe the planning sample needs the ego positions of its neighbours in its own ego
frame and every annotated box in the ego frame and in the six cameras. Done keyframe by
keyframe that is a dozen small numpy calls each, whose overhead outweighs the arithmetic;
here a scene (about 40 keyframes) takes a fixed handful of batched calls, and a keyframe
reads its slice. The rules are the ones `converters/nuscenes/converter.py` documents (VAD's padding
of invalid points, the devkit's box visibility).
"""
from __future__ import annotations

import math

import numpy as np

from converters.nuscenes.tables import CAMERAS, LIDAR, NUSCENES_ORDER
from dataengine.geometry import box_corners, invert, pose_matrix, project_boxes, quat_to_matrix
from dataengine.trajectory import clean

VIEWS = [CAMERAS[channel] for channel in NUSCENES_ORDER]  # canonical names, in media order


def _numbers(value, n: int) -> bool:
    return (isinstance(value, list) and len(value) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))


def finite_pose(pose: dict | None) -> bool:
    """A translation of 3 and a rotation of 4 finite numbers (a corrupt table row may hold
    anything: a string, a short list, NaN)."""
    return pose is not None and _numbers(pose["translation"], 3) and _numbers(pose["rotation"], 4)


class SceneGeometry:
    """Ego windows and boxes of a scene's keyframes (`frames`, in time order); `usable`
    lists the keyframes whose sensors are whole, the only ones whose boxes are projected."""

    def __init__(self, frames: list[dict], usable: list[int]):
        poses = [f["sensors"].get(LIDAR, {}).get("ego_pose") for f in frames]
        self.valid = [finite_pose(p) for p in poses]
        self.poses = [p if ok else None for p, ok in zip(poses, self.valid)]  # the ego's; None: missing or bad
        ok = [k for k, v in enumerate(self.valid) if v]
        self.ego_to_global = np.tile(np.eye(4), (len(frames), 1, 1))
        if ok:
            self.ego_to_global[ok] = pose_matrix([poses[k]["translation"] for k in ok],
                                                   [poses[k]["rotation"] for k in ok])
        self.world_to_ego = invert(self.ego_to_global)
        # position of keyframe j in the ego frame of keyframe k: (k, j, xy)
        origins = self.ego_to_global[:, :3, 3]
        self.relative = (np.einsum("kij,nj->kni", self.world_to_ego[:, :2, :3], origins)
                         + self.world_to_ego[:, None, :2, 3]).tolist()
        self.objects = {k: [] for k in usable}
        self._boxes([k for k in usable if frames[k]["annotations"]], frames)

    def window(self, k: int, offsets: range) -> tuple[list[list[float]], list[bool]]:
        """Ego positions at keyframes k + offsets in k's ego frame, nearest first: an invalid
        point (past the scene's ends, or a bad pose) repeats the previous valid one, the
        origin when there is none."""
        xy, valid, last = [], [], [0.0, 0.0]
        for j in (k + o for o in offsets):
            ok = 0 <= j < len(self.valid) and self.valid[j]
            if ok:
                x, y = self.relative[k][j]
                last = [clean(x), clean(y)]
            xy.append(list(last))
            valid.append(ok)
        return xy, valid

    def _boxes(self, keyframes: list[int], frames: list[dict]) -> None:
        """Every annotation of `keyframes` in one batch: corners, the 6 cameras of its own
        keyframe, the ego frame; then each keyframe's objects as sample dicts."""
        if not keyframes:
            return
        anns = [a for k in keyframes for a in frames[k]["annotations"]]
        owner = np.repeat(keyframes, [len(frames[k]["annotations"]) for k in keyframes])
        cams = [frames[k]["sensors"][channel] for k in keyframes for channel in NUSCENES_ORDER]
        shape = (len(keyframes), len(NUSCENES_ORDER))
        cam_to_ego = pose_matrix([c["calibration"]["translation"] for c in cams],
                                   [c["calibration"]["rotation"] for c in cams])
        ego_to_world = pose_matrix([c["ego_pose"]["translation"] for c in cams],
                                     [c["ego_pose"]["rotation"] for c in cams])
        world_to_cam = (invert(cam_to_ego) @ invert(ego_to_world)).reshape(shape + (4, 4))
        intrinsics = np.array([c["calibration"]["camera_intrinsic"] for c in cams], dtype=float).reshape(shape + (3, 3))
        sizes = np.array([[c["width"], c["height"]] for c in cams], dtype=float).reshape(shape + (2,))
        row = np.searchsorted(keyframes, owner)  # each annotation's keyframe, as a row of the arrays above

        rotations = np.array([a["rotation"] for a in anns], dtype=float)
        translations = np.array([a["translation"] for a in anns], dtype=float)
        corners = box_corners(translations, np.array([a["size"] for a in anns], dtype=float), rotations)
        to_cam = world_to_cam[row]  # (N, 6, 4, 4)
        in_cams = corners[:, None] @ np.swapaxes(to_cam[..., :3, :3], -1, -2) + to_cam[..., None, :3, 3]
        visible, xyxy = project_boxes(in_cams, intrinsics[row], sizes[row])  # (N, 6), (N, 6, 4)
        to_ego = self.world_to_ego[owner]
        centers = (to_ego[:, :3, :3] @ translations[..., None])[..., 0] + to_ego[:, :3, 3]
        in_ego = to_ego[:, :3, :3] @ quat_to_matrix(rotations)
        yaws = np.arctan2(in_ego[:, 1, 0], in_ego[:, 0, 0]).tolist()
        centers, xyxy, visible = centers.tolist(), xyxy.tolist(), visible.tolist()
        for i, (ann, k) in enumerate(zip(anns, owner.tolist())):
            self.objects[k].append({
                "category": ann["category"], "instance_id": f"nuscenes:{ann['instance_token']}",
                "annotation_id": ann["token"], "attributes": ann["attributes"],
                "visibility": ann["visibility"], "num_lidar_pts": ann["num_lidar_pts"],
                "box_3d": {"center": [clean(v) for v in centers[i]], "size_wlh": [clean(v) for v in ann["size"]],
                           "yaw": clean(yaws[i])},
                "box_2d": [{"camera": VIEWS[c], "xyxy": [clean(v, 2) for v in xyxy[i][c]]}
                           for c in range(len(VIEWS)) if visible[i][c]],
            })
