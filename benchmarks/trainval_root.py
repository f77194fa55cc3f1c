"""A generated nuScenes root with v1.0-trainval's table sizes, for `convert.py --scale trainval`.

Real trainval: 850 scenes, 34,149 key frames, 2.63M `sample_data` and `ego_pose` rows (about
77 per key frame: the key frames of LIDAR_TOP, 6 cameras and 5 radars, and their sweeps),
1.17M `sample_annotation` rows (about 35 boxes per key frame) of 64k instances, and a CAN bus
pose file per scene. This writes those tables at that scale (40 key frames per scene, 77
`sample_data` rows per key frame, 75 instances per scene tracked for 8-30 key frames) with
random 32-hex tokens, sweeps chained per channel as the devkit links them, rows written
one by one by orjson so no table is ever held whole.

Only the key-frame camera JPEGs exist on disk (the converter reads nothing else), and they
are small (160x90, about 3 KB): a full-size set would be 20 GB. Each file is one of 16
rendered pictures with its index in a JPEG comment, so every file has its own sha1 and the
media store writes each once, as it would real images.
"""
from __future__ import annotations

import binascii
import math
from pathlib import Path

import numpy as np
import orjson
from PIL import Image

from converters.fixture_images import render_jpeg
from converters.nuscenes.fixture import ATTRIBUTES, CAMERAS, CATEGORIES, RADARS, VISIBILITY, camera_rotation
from converters.nuscenes.tables import official_scene_names

KEYFRAMES = 40
KEYFRAME_S = 0.5
SWEEPS = {"LIDAR_TOP": 10, **{c: 6 for c in CAMERAS}, **{r: 6 for r in RADARS[:4]}, RADARS[4]: 7}  # per key frame
INSTANCES = 75
TRACK = (8, 30)  # key frames an instance is annotated in: 75 x 19 / 40 = ~35 boxes per key frame
CAN_HZ = 50
LOCATIONS = {"singapore-onenorth": "53992ee3023e5494b90c316c183be829",
             "boston-seaport": "36092f0b03a857c6a3403e25b4b7aab3",
             "singapore-queenstown": "93406b464a165eaba6d9de76ca09f5da",
             "singapore-hollandvillage": "37819e65e09e5547b8a3ceaefba56bb2"}
SIZES = {"vehicle.car": [1.9, 4.6, 1.7], "human.pedestrian.adult": [0.7, 0.7, 1.75], "vehicle.truck": [2.5, 8.0, 3.2],
         "movable_object.barrier": [2.0, 0.5, 1.0], "movable_object.trafficcone": [0.4, 0.4, 0.9],
         "vehicle.bicycle": [0.6, 1.8, 1.3], "vehicle.bus.rigid": [2.9, 11.0, 3.5]}
WEIGHTS = (0.42, 0.2, 0.08, 0.14, 0.1, 0.03, 0.03)


class TableWriter:
    """A JSON array written row by row (one row a line), as nuScenes' own tables are arrays."""

    def __init__(self, path: Path):
        self.f = open(path, "wb")
        self.f.write(b"[")
        self.rows = 0

    def add(self, rows: list[dict]) -> None:
        if rows:
            text = b",\n".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) for r in rows)
            self.f.write((b"," if self.rows else b"") + b"\n" + text)
            self.rows += len(rows)

    def close(self) -> int:
        self.f.write(b"\n]\n")
        self.f.close()
        return self.rows


def tokens(rng: np.random.Generator, n: int) -> list[str]:
    text = binascii.hexlify(rng.bytes(16 * n)).decode()
    return [text[32 * i: 32 * i + 32] for i in range(n)]


def quat(yaw) -> list:
    yaw = np.asarray(yaw, dtype=float)
    return np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=-1).tolist()


def ego_path(t: np.ndarray, x0: float, y0: float, yaw0: float, v: float, w: float):
    """(x, y, yaw) at times t (s) of a drive at speed v and yaw rate w (closed form)."""
    yaw = yaw0 + w * t
    return x0 + v / w * (np.sin(yaw) - math.sin(yaw0)), y0 - v / w * (np.cos(yaw) - math.cos(yaw0)), yaw


def _pictures(rng, width: int, height: int, quality: int = 60) -> list[tuple[bytes, bytes]]:
    """16 JPEGs split after SOI, so a comment segment can go between the halves."""
    return [(j[:2], j[2:]) for j in (render_jpeg(rng, width, height, f"tv {i}", quality) for i in range(16))]


def _jpeg(pictures, index: int) -> bytes:
    head, tail = pictures[index % len(pictures)]
    text = str(index).encode()
    return head + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + tail


class _Root:
    """Open table writers of one root and the tables small enough to hold."""

    def __init__(self, out: Path, version: str, width: int, height: int, seed: int):
        self.out, self.version, self.width, self.height = out, version, width, height
        self.rng = np.random.default_rng(seed)
        (out / version).mkdir(parents=True, exist_ok=True)
        (out / "can_bus").mkdir(exist_ok=True)
        self.w = {name: TableWriter(out / version / f"{name}.json")
                  for name in ("ego_pose", "sample", "sample_data", "sample_annotation", "instance",
                               "calibrated_sensor", "log", "scene")}
        self.cat_tok = dict(zip(CATEGORIES, tokens(self.rng, len(CATEGORIES))))
        self.attr_tok = dict(zip(ATTRIBUTES, tokens(self.rng, len(ATTRIBUTES))))
        channels = list(SWEEPS)
        self.sensor_tok = dict(zip(channels, tokens(self.rng, len(channels))))
        self.pictures = _pictures(self.rng, width, height)
        self.images = 0
        fx = 1266.4 * width / 1600
        self.intrinsic = [[fx, 0.0, width / 2], [0.0, fx, height / 2], [0.0, 0.0, 1.0]]
        self.logs: dict[str, list[str]] = {loc: [] for loc in LOCATIONS}
        for c in CAMERAS:
            (out / "samples" / c).mkdir(parents=True, exist_ok=True)

    def scene(self, si: int, name: str) -> None:  # noqa: C901 (one scene's 8 tables, in order)
        rng, w = self.rng, self.w
        location = list(LOCATIONS)[si % len(LOCATIONS)]
        log_tok, scene_tok = tokens(rng, 2)
        logfile = f"n{8 + si % 8:03d}-2018-0{1 + si % 9}-{10 + si % 18}-10-{si % 60:02d}-00-0400"
        self.logs[location].append(log_tok)
        w["log"].add([{"token": log_tok, "logfile": logfile, "vehicle": logfile[:4], "date_captured": "2018-08-01",
                       "location": location}])
        calib = dict(zip(SWEEPS, tokens(rng, len(SWEEPS))))
        rows = []
        for c, tok in calib.items():
            if c in CAMERAS:
                x, y, z, yaw = CAMERAS[c]
                row = {"translation": [x, y, z], "rotation": [float(q) for q in camera_rotation(yaw)],
                       "camera_intrinsic": self.intrinsic}
            else:
                row = {"translation": [0.94, 0.0, 1.84] if c == "LIDAR_TOP" else [3.41, 0.0, 0.5],
                       "rotation": quat(-math.pi / 2) if c == "LIDAR_TOP" else [1.0, 0.0, 0.0, 0.0],
                       "camera_intrinsic": []}
            rows.append({"token": tok, "sensor_token": self.sensor_tok[c], **row})
        w["calibrated_sensor"].add(rows)

        t0 = 1_530_000_000_000_000 + si * 60_000_000
        v, yaw_rate = float(rng.uniform(0.0, 12.0)), float(rng.choice([-1, 1]) * rng.uniform(0.005, 0.15))
        x0, y0, yaw0 = rng.uniform(300, 1800), rng.uniform(300, 1800), rng.uniform(-math.pi, math.pi)
        samples = tokens(rng, KEYFRAMES)
        w["sample"].add([{"token": s, "timestamp": t0 + int(k * KEYFRAME_S * 1e6), "prev": samples[k - 1] if k else "",
                          "next": samples[k + 1] if k + 1 < KEYFRAMES else "", "scene_token": scene_tok}
                         for k, s in enumerate(samples)])
        self._sensor_rows(name, logfile, calib, samples, t0, (x0, y0, yaw0, v, yaw_rate))
        self._annotations(samples, (x0, y0, yaw0, v, yaw_rate))
        w["scene"].add([{"token": scene_tok, "log_token": log_tok, "nbr_samples": KEYFRAMES,
                         "first_sample_token": samples[0], "last_sample_token": samples[-1], "name": name,
                         "description": f"generated trainval-scale scene {si}"}])
        t = np.arange(int(KEYFRAMES * KEYFRAME_S * CAN_HZ)) / CAN_HZ
        x, y, yaw = ego_path(t, x0, y0, yaw0, v, yaw_rate)
        (self.out / "can_bus" / f"{name}_pose.json").write_bytes(orjson.dumps([
            {"utime": int(t0 + tt * 1e6), "pos": [px, py, 0.0], "orientation": q, "vel": [v, 0.0, 0.0],
             "accel": [0.0, 0.0, 9.81], "rotation_rate": [0.0, 0.0, yaw_rate]}
            for tt, px, py, q in zip(t.tolist(), x.tolist(), y.tolist(), quat(yaw))]))

    def _sensor_rows(self, name, logfile, calib, samples, t0, drive) -> None:
        """Every channel's key frames and sweeps (chained by prev/next), and one ego pose each."""
        sd_rows, pose_rows = [], []
        for ci, (c, per_kf) in enumerate(SWEEPS.items()):
            k = np.repeat(np.arange(KEYFRAMES), per_kf)
            j = np.tile(np.arange(per_kf), KEYFRAMES)
            offset = 0 if c == "LIDAR_TOP" else 2000 + 4000 * ci
            ts = (t0 + offset + (k * KEYFRAME_S * 1e6).astype(np.int64)
                  + (j * KEYFRAME_S * 1e6 / per_kf).astype(np.int64))
            x, y, yaw = ego_path((ts - t0) / 1e6, *drive)
            n = len(ts)
            sd_tok, pose_tok = tokens(self.rng, n), tokens(self.rng, n)
            key = (j == 0).tolist()
            ext = "pcd.bin" if c == "LIDAR_TOP" else "pcd" if c.startswith("RADAR") else "jpg"
            image = c in CAMERAS
            ts_list, k_list = ts.tolist(), k.tolist()
            for i, (tt, kk, is_key, px, py, q) in enumerate(zip(ts_list, k_list, key, x.tolist(), y.tolist(),
                                                                 quat(yaw))):
                folder = "samples" if is_key else "sweeps"
                filename = f"{folder}/{c}/{logfile}__{c}__{tt}.{ext}"
                sd_rows.append({"token": sd_tok[i], "sample_token": samples[kk], "ego_pose_token": pose_tok[i],
                                "calibrated_sensor_token": calib[c], "timestamp": tt,
                                "fileformat": ext.split(".")[0], "is_key_frame": is_key,
                                "height": self.height if image else 0, "width": self.width if image else 0,
                                "filename": filename, "prev": sd_tok[i - 1] if i else "",
                                "next": sd_tok[i + 1] if i + 1 < n else ""})
                pose_rows.append({"token": pose_tok[i], "timestamp": tt, "rotation": q, "translation": [px, py, 0.0]})
                if image and is_key:
                    (self.out / filename).write_bytes(_jpeg(self.pictures, self.images))
                    self.images += 1
        self.w["sample_data"].add(sd_rows)
        self.w["ego_pose"].add(pose_rows)

    def _annotations(self, samples, drive) -> None:
        """75 instances per scene, each annotated over a run of 8-30 key frames near the ego's path."""
        rng = self.rng
        cats = rng.choice(len(SIZES), size=INSTANCES, p=WEIGHTS)
        lengths = rng.integers(TRACK[0], TRACK[1] + 1, size=INSTANCES)
        starts = rng.integers(0, KEYFRAMES - lengths + 1)
        inst_tok = tokens(rng, INSTANCES)
        ann_rows, inst_rows = [], []
        for o in range(INSTANCES):
            cat = list(SIZES)[cats[o]]
            k = np.arange(starts[o], starts[o] + lengths[o])
            ex, ey, eyaw = ego_path(np.array([starts[o] * KEYFRAME_S]), *drive)
            side, ahead = rng.uniform(-15, 15), rng.uniform(-20, 40)
            cx = ex[0] + ahead * math.cos(eyaw[0]) - side * math.sin(eyaw[0])
            cy = ey[0] + ahead * math.sin(eyaw[0]) + side * math.cos(eyaw[0])
            heading = eyaw[0] + rng.choice([0.0, math.pi, math.pi / 2])
            speed = 0.0 if cat.startswith("movable") else rng.choice([0.0, 0.0, 1.4 if "human" in cat else 6.0])
            dt = (k - starts[o]) * KEYFRAME_S
            xs, ys = cx + speed * dt * math.cos(heading), cy + speed * dt * math.sin(heading)
            size = SIZES[cat]
            rot = quat(heading)
            ann_tok = tokens(rng, len(k))
            attr = ("pedestrian.moving" if "human" in cat and speed else "pedestrian.standing" if "human" in cat
                    else "vehicle.moving" if speed else "vehicle.parked" if cat.startswith("vehicle") and
                    "bicycle" not in cat else "cycle.without_rider" if "bicycle" in cat else None)
            for i, (kk, px, py) in enumerate(zip(k.tolist(), xs.tolist(), ys.tolist())):
                ann_rows.append({"token": ann_tok[i], "sample_token": samples[kk], "instance_token": inst_tok[o],
                                 "visibility_token": VISIBILITY[(o + i) % 4][0],
                                 "attribute_tokens": [self.attr_tok[attr]] if attr else [],
                                 "translation": [px, py, size[2] / 2], "size": size, "rotation": rot,
                                 "prev": ann_tok[i - 1] if i else "",
                                 "next": ann_tok[i + 1] if i + 1 < len(k) else "",
                                 "num_lidar_pts": int(5 + (o * 7 + i) % 90), "num_radar_pts": int((o + i) % 5)})
            inst_rows.append({"token": inst_tok[o], "category_token": self.cat_tok[cat], "nbr_annotations": len(k),
                              "first_annotation_token": ann_tok[0], "last_annotation_token": ann_tok[-1]})
        self.w["sample_annotation"].add(ann_rows)
        self.w["instance"].add(inst_rows)

    def close(self) -> dict[str, int]:
        counts = {name: writer.close() for name, writer in self.w.items()}
        d = self.out / self.version
        small = {
            "category": [{"token": self.cat_tok[c], "name": c, "description": c, "index": i}
                         for i, c in enumerate(CATEGORIES)],
            "attribute": [{"token": self.attr_tok[a], "name": a, "description": a} for a in ATTRIBUTES],
            "visibility": [{"token": tok, "level": lvl, "description": lvl} for tok, lvl in VISIBILITY],
            "sensor": [{"token": self.sensor_tok[c], "channel": c,
                        "modality": "camera" if c in CAMERAS else c.split("_")[0].lower()} for c in SWEEPS],
            "map": [{"token": tok, "log_tokens": self.logs[loc], "category": "semantic_prior",
                     "filename": f"maps/{tok}.png"} for loc, tok in LOCATIONS.items()],
        }
        for name, rows in small.items():
            (d / f"{name}.json").write_bytes(orjson.dumps(rows))
            counts[name] = len(rows)
        (self.out / "maps").mkdir(exist_ok=True)
        for tok in LOCATIONS.values():  # the devkit opens each map's mask when it loads the tables
            Image.new("L", (20, 20), 255).save(self.out / "maps" / f"{tok}.png")
        counts["images"] = self.images
        return counts


def make_trainval_root(out: Path, scenes: int = 850, width: int = 160, height: int = 90, seed: int = 0) -> dict:
    """Write the root under `out`: `scenes` of trainval's official scenes (train and val in
    trainval's 700:150 proportion); returns the row count of each table and the image count."""
    train, val = official_scene_names("v1.0-trainval")
    n_val = round(scenes * len(val) / (len(train) + len(val)))
    names = train[: scenes - n_val] + val[:n_val]
    root = _Root(Path(out), "v1.0-trainval", width, height, seed)
    for si, name in enumerate(names):
        root.scene(si, name)
    return root.close()
