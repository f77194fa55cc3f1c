"""A small nuScenes dataroot in the real format: 13 tables, camera JPEGs, map PNGs.

The tables follow the devkit's schema with consistent tokens, so `nuscenes.NuScenes`
loads the result. Each split's scenes cycle through four paths (straight, left turn, right
turn, slowing down) so commands, speeds and trajectories vary, and val drives train's first
ones 1 m/s slower: a trajectory follows from the ego state and command the planning prompt
states, so a model can learn it, and val's are not train's. Parked and moving objects sit
around the route so boxes project into several cameras. Deterministic for a given seed.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from converters.fixture_images import render_jpeg
from converters.nuscenes.converter import NuScenesOptions
from converters.nuscenes.tables import official_scene_names
from dataengine.geometry import apply, box_2d_in_image, box_corners, invert, pose_matrix, yaw_to_quat

CATEGORIES = (
    "human.pedestrian.adult", "human.pedestrian.child", "human.pedestrian.wheelchair",
    "human.pedestrian.stroller", "human.pedestrian.personal_mobility", "human.pedestrian.police_officer",
    "human.pedestrian.construction_worker", "animal", "vehicle.car", "vehicle.motorcycle", "vehicle.bicycle",
    "vehicle.bus.bendy", "vehicle.bus.rigid", "vehicle.truck", "vehicle.construction",
    "vehicle.emergency.ambulance", "vehicle.emergency.police", "vehicle.trailer", "movable_object.barrier",
    "movable_object.trafficcone", "movable_object.pushable_pullable", "movable_object.debris",
    "static_object.bicycle_rack",
)
ATTRIBUTES = ("vehicle.moving", "vehicle.stopped", "vehicle.parked", "cycle.with_rider", "cycle.without_rider",
              "pedestrian.sitting_lying_down", "pedestrian.standing", "pedestrian.moving")
VISIBILITY = (("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100"))
CAMERAS = {  # channel: (x, y, z mount in ego, yaw of the optical axis in ego, degrees)
    "CAM_FRONT": (1.70, 0.00, 1.51, 0.0), "CAM_FRONT_LEFT": (1.52, 0.49, 1.51, 55.0),
    "CAM_FRONT_RIGHT": (1.55, -0.49, 1.52, -55.0), "CAM_BACK": (0.03, 0.00, 1.57, 180.0),
    "CAM_BACK_LEFT": (1.04, 0.48, 1.56, 110.0), "CAM_BACK_RIGHT": (1.04, -0.48, 1.56, -110.0),
}
RADARS = ("RADAR_FRONT", "RADAR_FRONT_LEFT", "RADAR_FRONT_RIGHT", "RADAR_BACK_LEFT", "RADAR_BACK_RIGHT")
MAPS = {"singapore-onenorth": "53992ee3023e5494b90c316c183be829",
        "boston-seaport": "36092f0b03a857c6a3403e25b4b7aab3"}
# (yaw rate rad/s, start speed m/s, accel m/s^2): straight, left, right, braking
MANOEUVRES = ((0.0, 8.0, 0.0), (0.16, 7.0, 0.0), (-0.16, 7.0, 0.0), (0.0, 9.0, -1.2))
VAL_SLOWER_MPS = 1.0


def token(*parts) -> str:
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


def camera_rotation(yaw_deg: float) -> list[float]:
    """Quaternion (w, x, y, z) of an OpenCV camera (x right, y down, z forward) whose optical
    axis points at `yaw_deg` in the ego frame (x forward, y left, z up)."""
    yaw = math.radians(yaw_deg)
    fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    m = np.stack([right, down, fwd], axis=1)  # columns: camera axes in ego coordinates
    w = math.sqrt(max(0.0, 1 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    if w > 1e-6:
        return [w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w)]
    # 180 degree rotations: w = 0
    x = math.sqrt(max(0.0, 1 + m[0, 0] - m[1, 1] - m[2, 2])) / 2
    return [0.0, x, (m[0, 1] + m[1, 0]) / (4 * x), (m[0, 2] + m[2, 0]) / (4 * x)]


COLORS = {"vehicle.car": (190, 40, 40), "human.pedestrian.adult": (40, 170, 60), "vehicle.truck": (150, 60, 160),
          "movable_object.trafficcone": (255, 140, 0), "vehicle.bicycle": (40, 60, 200)}


def _objects_at(obj: list[tuple], t: float, x: float, y: float) -> list[tuple]:
    """(category, centre, size, yaw) of the objects within 60 m of (x, y) at time t: the
    ones that get an annotation."""
    out = []
    for cat, size, cx, cy, oyaw, speed in obj:
        ox, oy = cx + speed * t * math.cos(oyaw), cy + speed * t * math.sin(oyaw)
        if math.hypot(ox - x, oy - y) <= 60:
            out.append((cat, [ox, oy, size[2] / 2], size, oyaw))
    return out


def _projected(objects: list[tuple], ego_xyz, ego_yaw: float, mount, intrinsic, width: int, height: int):
    """Image boxes and colours of the objects a camera sees, farthest first."""
    world_to_cam = invert(pose_matrix(mount[:3], camera_rotation(mount[3]))) @ invert(
        pose_matrix(ego_xyz, yaw_to_quat(ego_yaw)))
    found = []
    for cat, center, size, oyaw in objects:
        corners = apply(world_to_cam, box_corners(center, size, yaw_to_quat(oyaw)))
        xyxy = box_2d_in_image(corners, intrinsic, width, height)
        if xyxy is not None:
            found.append((-float(corners[:, 2].mean()), xyxy, COLORS.get(cat, (120, 120, 120))))
    return [(xyxy, color) for _, xyxy, color in sorted(found)]


def _ego_path(manoeuvre, n: int, dt: float, x0: float, y0: float, yaw0: float):
    yaw_rate, v, accel = manoeuvre
    x, y, yaw = x0, y0, yaw0
    out = []
    steps = 10
    for _ in range(n):
        out.append((x, y, yaw))
        for _ in range(steps):
            h = dt / steps
            x += v * math.cos(yaw) * h
            y += v * math.sin(yaw) * h
            yaw += yaw_rate * h
            v = max(0.0, v + accel * h)
    return out


def make_nuscenes_root(out: Path, version: str = "v1.0-mini", scenes_per_split: tuple[int, int] = (3, 1),  # noqa: C901
                       keyframes: int = 10, width: int = 320, height: int = 180, quality: int = 85,
                       objects: int = 6, can_bus: bool = True, seed: int = 0, image_pool: int = 0) -> Path:
    """Write a nuScenes dataroot under `out`; returns `out`. With `image_pool` > 0 the camera
    files reuse that many rendered pictures (benchmarks need thousands of large JPEGs fast)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    pool = [render_jpeg(rng, width, height, f"pool {i}", quality) for i in range(image_pool)]
    written = 0
    names = official_scene_names(version)
    wanted = names[0][: scenes_per_split[0]] + names[1][: scenes_per_split[1]]
    n_train = len(names[0][: scenes_per_split[0]])
    t: dict[str, list] = {k: [] for k in ("category", "attribute", "visibility", "instance", "sensor",
                                          "calibrated_sensor", "ego_pose", "log", "scene", "sample",
                                          "sample_data", "sample_annotation", "map")}
    cat_tok = {c: token("category", c) for c in CATEGORIES}
    t["category"] = [{"token": cat_tok[c], "name": c, "description": c.replace(".", " "), "index": i}
                     for i, c in enumerate(CATEGORIES)]
    attr_tok = {a: token("attribute", a) for a in ATTRIBUTES}
    t["attribute"] = [{"token": attr_tok[a], "name": a, "description": a} for a in ATTRIBUTES]
    t["visibility"] = [{"token": tok, "level": lvl, "description": f"visibility of whole object is {lvl}"}
                       for tok, lvl in VISIBILITY]
    channels = [*CAMERAS, "LIDAR_TOP", *RADARS]
    sensor_tok = {c: token("sensor", c) for c in channels}
    t["sensor"] = [{"token": sensor_tok[c], "channel": c,
                    "modality": "camera" if c.startswith("CAM") else c.split("_")[0].lower()} for c in channels]
    fx = 1266.4 * width / 1600
    intrinsic = [[fx, 0.0, width / 2], [0.0, fx, height / 2], [0.0, 0.0, 1.0]]
    map_logs: dict[str, list[str]] = {loc: [] for loc in MAPS}
    can_messages: dict[str, list] = {}
    for si, scene_name in enumerate(wanted):
        location = list(MAPS)[si % len(MAPS)]
        log_token = token("log", scene_name)
        map_logs[location].append(log_token)
        t["log"].append({"token": log_token, "logfile": f"n008-2018-08-0{si % 9 + 1}-10-00-00-0400",
                         "vehicle": "n008", "date_captured": "2018-08-01", "location": location})
        calib = {}
        for c in channels:
            calib[c] = token("calib", scene_name, c)
            if c in CAMERAS:
                x, y, z, yaw = CAMERAS[c]
                row = {"translation": [x, y, z], "rotation": camera_rotation(yaw), "camera_intrinsic": intrinsic}
            else:
                row = {"translation": [0.94, 0.0, 1.84] if c == "LIDAR_TOP" else [3.4, 0.0, 0.5],
                       "rotation": yaw_to_quat(-math.pi / 2) if c == "LIDAR_TOP" else [1.0, 0.0, 0.0, 0.0],
                       "camera_intrinsic": []}
            t["calibrated_sensor"].append({"token": calib[c], "sensor_token": sensor_tok[c], **row})
        # each split cycles through the manoeuvres from the first; val drives train's 1 m/s
        # slower (straight at 7 m/s: a command train saw, at a speed train saw with another
        # command), so a planner learns val's trajectories from the ego state and command in the
        # prompt, but cannot recite a trajectory it has seen
        mi = (si if si < n_train else si - n_train) % len(MANOEUVRES)
        yaw_rate, speed, accel = MANOEUVRES[mi]
        manoeuvre = (yaw_rate, speed if si < n_train else speed - VAL_SLOWER_MPS, accel)
        x0, y0, yaw0 = 400.0 + 300 * si, 1100.0 + 50 * si, rng.uniform(-math.pi, math.pi)
        t0 = 1533151603500000 + si * 100_000_000
        dt = 0.5
        path = _ego_path(manoeuvre, keyframes, dt, x0, y0, yaw0)
        scene_token = token("scene", scene_name)
        sample_tokens = [token("sample", scene_name, k) for k in range(keyframes)]
        # objects: parked cars beside the route and a few moving ones ahead
        obj = []
        for oi in range(objects):
            k = min(keyframes - 1, (oi * keyframes) // max(objects, 1))
            px, py, pyaw = path[k]
            side = 1 if oi % 2 == 0 else -1
            ahead = 6.0 + 3.0 * oi
            cx = px + ahead * math.cos(pyaw) - side * 4.0 * math.sin(pyaw)
            cy = py + ahead * math.sin(pyaw) + side * 4.0 * math.cos(pyaw)
            cat = ("vehicle.car", "human.pedestrian.adult", "vehicle.truck", "movable_object.trafficcone",
                   "vehicle.bicycle", "vehicle.car")[oi % 6]
            size = {"vehicle.car": [1.9, 4.5, 1.6], "human.pedestrian.adult": [0.6, 0.7, 1.75],
                    "vehicle.truck": [2.5, 8.0, 3.2], "movable_object.trafficcone": [0.4, 0.4, 0.8],
                    "vehicle.bicycle": [0.6, 1.8, 1.2]}[cat]
            speed = 1.2 if cat == "human.pedestrian.adult" else (3.0 if oi % 3 == 2 else 0.0)
            obj.append((cat, size, cx, cy, pyaw + (math.pi / 2 if cat.startswith("human") else 0.0), speed))
        ann_by_obj: dict[int, list[str]] = {i: [] for i in range(len(obj))}
        for k, (x, y, yaw) in enumerate(path):
            ts = t0 + int(k * dt * 1e6)
            in_view = _objects_at(obj, k * dt, x, y)
            t["sample"].append({"token": sample_tokens[k], "timestamp": ts, "scene_token": scene_token,
                                "prev": sample_tokens[k - 1] if k else "",
                                "next": sample_tokens[k + 1] if k + 1 < keyframes else ""})
            for ci, c in enumerate(["LIDAR_TOP", *CAMERAS]):
                c_ts = ts + (0 if c == "LIDAR_TOP" else 2000 + 8000 * ci)
                lag = (c_ts - ts) / 1e6
                v_here = manoeuvre[1] + manoeuvre[2] * k * dt
                ex, ey = x + v_here * lag * math.cos(yaw), y + v_here * lag * math.sin(yaw)
                ep_tok = token("ego_pose", scene_name, k, c)
                t["ego_pose"].append({"token": ep_tok, "timestamp": c_ts, "translation": [ex, ey, 0.0],
                                      "rotation": yaw_to_quat(yaw + manoeuvre[0] * lag)})
                ext = "pcd.bin" if c == "LIDAR_TOP" else "jpg"
                log_name = t["log"][-1]["logfile"]
                filename = f"samples/{c}/{log_name}__{c}__{c_ts}.{ext}"
                sd_tok = token("sample_data", scene_name, k, c)
                t["sample_data"].append({
                    "token": sd_tok, "sample_token": sample_tokens[k], "ego_pose_token": ep_tok,
                    "calibrated_sensor_token": calib[c], "filename": filename,
                    "fileformat": "pcd" if c == "LIDAR_TOP" else "jpg", "is_key_frame": True,
                    "height": 0 if c == "LIDAR_TOP" else height, "width": 0 if c == "LIDAR_TOP" else width,
                    "timestamp": c_ts, "prev": token("sample_data", scene_name, k - 1, c) if k else "",
                    "next": token("sample_data", scene_name, k + 1, c) if k + 1 < keyframes else ""})
                target = out / filename
                target.parent.mkdir(parents=True, exist_ok=True)
                if c == "LIDAR_TOP":
                    target.write_bytes(np.zeros((4, 5), dtype=np.float32).tobytes())
                elif pool:
                    target.write_bytes(pool[written % len(pool)])
                    written += 1
                else:
                    seen = _projected(in_view, [ex, ey, 0.0], yaw + manoeuvre[0] * lag, CAMERAS[c], intrinsic,
                                      width, height)
                    target.write_bytes(render_jpeg(rng, width, height, f"{scene_name} {c} #{k}", quality, seen))
            for oi, (cat, size, cx, cy, oyaw, speed) in enumerate(obj):
                ox = cx + speed * k * dt * math.cos(oyaw)
                oy = cy + speed * k * dt * math.sin(oyaw)
                if math.hypot(ox - x, oy - y) > 60:
                    continue
                a_tok = token("ann", scene_name, oi, k)
                ann_by_obj[oi].append(a_tok)
                attr = ("pedestrian.moving" if cat.startswith("human") else
                        "vehicle.moving" if speed > 0 and cat.startswith("vehicle") else
                        "vehicle.parked" if cat.startswith("vehicle") else None)
                t["sample_annotation"].append({
                    "token": a_tok, "sample_token": sample_tokens[k],
                    "instance_token": token("instance", scene_name, oi), "visibility_token": str(1 + (oi + k) % 4),
                    "attribute_tokens": [attr_tok[attr]] if attr else [], "translation": [ox, oy, size[2] / 2],
                    "size": size, "rotation": yaw_to_quat(oyaw), "prev": "", "next": "",
                    "num_lidar_pts": 10 + oi, "num_radar_pts": 0})
        in_scene = set(sample_tokens)
        rows = {r["token"]: r for r in t["sample_annotation"] if r["sample_token"] in in_scene}
        for oi, (cat, *_rest) in enumerate(obj):
            anns = ann_by_obj[oi]
            if not anns:
                continue
            for j, a in enumerate(anns):
                rows[a]["prev"] = anns[j - 1] if j else ""
                rows[a]["next"] = anns[j + 1] if j + 1 < len(anns) else ""
            t["instance"].append({"token": token("instance", scene_name, oi), "category_token": cat_tok[cat],
                                  "nbr_annotations": len(anns), "first_annotation_token": anns[0],
                                  "last_annotation_token": anns[-1]})
        t["scene"].append({"token": scene_token, "log_token": log_token, "nbr_samples": keyframes,
                           "first_sample_token": sample_tokens[0], "last_sample_token": sample_tokens[-1],
                           "name": scene_name, "description": f"fixture scene, manoeuvre {mi}"})
        if can_bus and si == 0:
            can_messages[scene_name] = [
                {"utime": t0 + int(j * 0.02 * 1e6), "vel": [manoeuvre[1] + manoeuvre[2] * j * 0.02, 0.0, 0.0],
                 "accel": [manoeuvre[2], 0.0, 9.81], "rotation_rate": [0.0, 0.0, manoeuvre[0]],
                 "pos": [0.0, 0.0, 0.0], "orientation": [1.0, 0.0, 0.0, 0.0]}
                for j in range(int(keyframes * dt / 0.02))]
    for location, logs in map_logs.items():
        if logs:
            t["map"].append({"token": MAPS[location], "log_tokens": logs, "category": "semantic_prior",
                             "filename": f"maps/{MAPS[location]}.png"})
            (out / "maps").mkdir(parents=True, exist_ok=True)
            Image.new("L", (20, 20), 255).save(out / "maps" / f"{MAPS[location]}.png")
    (out / version).mkdir(parents=True, exist_ok=True)
    for name, rows in t.items():
        (out / version / f"{name}.json").write_text(json.dumps(rows, indent=0))
    for scene_name, msgs in can_messages.items():
        (out / "can_bus").mkdir(exist_ok=True)
        (out / "can_bus" / f"{scene_name}_pose.json").write_text(json.dumps(msgs))
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, NuScenesOptions]]:
    return [(make_nuscenes_root(out), NuScenesOptions())]
