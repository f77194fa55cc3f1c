"""v1 `Frame` protos written as Waymo v2 parquet components, for fixtures.

Column names and arrow types are those the official component definitions produce
(`waymo-research/waymo-open-dataset:src/waymo_open_dataset/v2/perception/{camera_image,context,
pose,box}.py`, `Component.schema()`), and the v1 -> v2 field mapping follows the official
`v2/perception/compat_v1/*.py` (a 2D box's size.x is its v1 length; a projected label's id
'<laser id>_<CAMERA>' becomes key.laser_object_id plus key.camera_name). camera_image rows
are written ordered by camera, then time, so readers must join on the keys.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from waymo_open_dataset import dataset_pb2

F64, TRANSFORM = pa.float64(), pa.list_(pa.float64(), 16)


def _key_fields(camera_type: pa.DataType | None, frame: bool = True, extra: tuple = ()) -> list:
    fields = [("key.segment_context_name", pa.string())]
    if frame:
        fields.append(("key.frame_timestamp_micros", pa.int64()))
    if camera_type is not None:
        fields.append(("key.camera_name", camera_type))
    return fields + [(name, pa.string()) for name in extra]


def _schemas(cam: pa.DataType) -> dict[str, list]:
    img, cal, lb = "[CameraImageComponent].", "[CameraCalibrationComponent].", "[LiDARBoxComponent]."
    box2d = lambda p: [(f"{p}box.{a}.{x}", F64) for a in ("center", "size") for x in "xy"]  # noqa: E731
    return {
        "camera_image": _key_fields(cam) + [
            (img + "image", pa.binary()), (img + "pose.transform", TRANSFORM),
            *[(f"{img}velocity.linear_velocity.{x}", pa.float32()) for x in "xyz"],
            *[(f"{img}velocity.angular_velocity.{x}", F64) for x in "xyz"],
            (img + "pose_timestamp", F64),
            *[(f"{img}rolling_shutter_params.{k}", F64)
              for k in ("shutter", "camera_trigger_time", "camera_readout_done_time")]],
        "camera_calibration": _key_fields(cam, frame=False) + [
            *[(f"{cal}intrinsic.{k}", F64) for k in ("f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3")],
            (cal + "extrinsic.transform", TRANSFORM), (cal + "width", pa.int32()), (cal + "height", pa.int32()),
            (cal + "rolling_shutter_direction", pa.int8())],
        "vehicle_pose": _key_fields(None) + [("[VehiclePoseComponent].world_from_vehicle.transform", TRANSFORM)],
        "lidar_box": _key_fields(None, extra=("key.laser_object_id",)) + [
            *[(f"{lb}box.{a}.{x}", F64) for a in ("center", "size") for x in "xyz"], (lb + "box.heading", F64),
            (lb + "type", pa.int8()), (lb + "num_lidar_points_in_box", pa.int64()),
            (lb + "num_top_lidar_points_in_box", pa.int64())],
        "projected_lidar_box": _key_fields(cam, extra=("key.laser_object_id",))
        + box2d("[ProjectedLiDARBoxComponent].") + [("[ProjectedLiDARBoxComponent].type", pa.int8())],
        "camera_box": _key_fields(cam, extra=("key.camera_object_id",))
        + box2d("[CameraBoxComponent].") + [("[CameraBoxComponent].type", pa.int8())],
        "stats": _key_fields(None) + [(f"[StatsComponent].{k}", pa.string())
                                      for k in ("time_of_day", "location", "weather")],
    }


def _box2d(label) -> list:
    return [label.box.center_x, label.box.center_y, label.box.length, label.box.width, label.type]


def _frame_rows(frame: dataset_pb2.Frame, cam) -> dict[str, list[list]]:
    key = [frame.context.name, frame.timestamp_micros]
    rows: dict[str, list[list]] = {"camera_image": [], "vehicle_pose": [key + [list(frame.pose.transform)]],
                                   "lidar_box": [], "projected_lidar_box": [], "camera_box": []}
    for im in frame.images:
        v = im.velocity
        rows["camera_image"].append(key + [cam(im.name), im.image, list(im.pose.transform), v.v_x, v.v_y, v.v_z,
                                           v.w_x, v.w_y, v.w_z, im.pose_timestamp, im.shutter,
                                           im.camera_trigger_time, im.camera_readout_done_time])
    for lab in frame.laser_labels:
        b = lab.box
        rows["lidar_box"].append(key + [lab.id, b.center_x, b.center_y, b.center_z, b.length, b.width, b.height,
                                        b.heading, lab.type, lab.num_lidar_points_in_box,
                                        lab.num_top_lidar_points_in_box])
    for group in frame.projected_lidar_labels:
        name = dataset_pb2.CameraName.Name.Name(group.name)
        for lab in group.labels:
            laser_id = lab.id[: -len(name) - 1]
            rows["projected_lidar_box"].append(key + [cam(group.name), laser_id] + _box2d(lab))
    for group in frame.camera_labels:
        rows["camera_box"].extend(key + [cam(group.name), lab.id] + _box2d(lab) for lab in group.labels)
    s = frame.context.stats
    rows["stats"] = [key + [s.time_of_day, s.location, s.weather]]
    return rows


def write_components(split_dir: Path, frames: list[dataset_pb2.Frame], camera_names: str = "int8") -> None:
    """One parquet file per component for this segment; box components only when it has labels."""
    if camera_names not in ("int8", "string"):
        raise ValueError(f"camera_names is int8 or string, got {camera_names!r}")
    as_string = camera_names == "string"
    cam = (lambda n: dataset_pb2.CameraName.Name.Name(n)) if as_string else int
    schemas = _schemas(pa.string() if as_string else pa.int8())
    rows: dict[str, list[list]] = {name: [] for name in schemas}
    for frame in frames:
        for name, part in _frame_rows(frame, cam).items():
            rows[name].extend(part)
    context = frames[0].context
    rows["camera_calibration"] = [
        [context.name, cam(c.name), *c.intrinsic, list(c.extrinsic.transform), c.width, c.height,
         c.rolling_shutter_direction] for c in context.camera_calibrations]
    rows["camera_image"].sort(key=lambda r: (str(r[2]), r[1]))
    for name, fields in schemas.items():
        if rows[name]:
            columns = list(zip(*rows[name]))
            table = pa.table({f: pa.array(col, type=t) for (f, t), col in zip(fields, columns)})
            path = Path(split_dir) / name / f"{context.name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, row_group_size=100)
