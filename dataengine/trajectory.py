"""Planning targets shared by converters: 2 Hz ego windows, command, ego motion, the question.

Conventions (reference datasets.md section 2, as VAD/GPT-Driver/OpenDriveVLA use them): the
past 2 s (4 points) and the future 3 s (6 points), every 0.5 s, in the current ego frame
(x forward, y left, metres). A point the source cannot give is marked invalid and repeats
the nearest valid point towards the present (the origin when there is none), as VAD pads.
The command follows VAD's rule on the last valid future point: more than 2 m left is
turn_left, more than 2 m right is turn_right, otherwise go_straight (go_straight when no
future point is valid).

`PoseTrack` serves sources whose poses come faster than 2 Hz (Waymo: 10 Hz): the window
points are interpolated at exact 0.5 s offsets from the frame's own timestamp.
"""
from __future__ import annotations

import bisect
import math
from typing import Callable, Sequence

import numpy as np

from dataengine.geometry import apply, invert, matrix_yaw
from dataengine.waypoints import format_waypoints

PAST, FUTURE, DT = 4, 6, 0.5
COMMAND_THRESHOLD_M = 2.0
COMMAND_WORDS = {"turn_left": "turn left", "turn_right": "turn right", "go_straight": "go straight"}


def clean(x: float, nd: int = 4) -> float:
    """Round for stable JSON; + 0.0 turns -0.0 into 0.0."""
    return round(float(x), nd) + 0.0


def command_from_future(xy: list[list[float]], valid: list[bool]) -> str:
    last = next((p for p, v in zip(reversed(xy), reversed(valid)) if v), None)
    if last is None:
        return "go_straight"
    if last[1] >= COMMAND_THRESHOLD_M:
        return "turn_left"
    if last[1] <= -COMMAND_THRESHOLD_M:
        return "turn_right"
    return "go_straight"


def planning_question(location: str, ego: dict, command: str, history: list[list[float]]) -> str:
    past = (f"Past trajectory over the last 2 s (x forward, y left, metres, every 0.5 s, oldest first): "
            f"{format_waypoints(history)}." if history else "No past trajectory (the drive starts here).")
    return (f"You are driving in {location}. Ego state: speed {ego['speed_mps']:.2f} m/s, acceleration "
            f"{ego['accel_mps2']:.2f} m/s^2, yaw rate {ego['yaw_rate_rps']:.3f} rad/s. Navigation command: "
            f"{COMMAND_WORDS[command]}. {past} Plan the ego vehicle's trajectory for the next 3 s as "
            f"6 waypoints (x, y) every 0.5 s.")


class PoseTrack:
    """Vehicle poses (world_from_vehicle, 4x4) at strictly increasing timestamps (microseconds).

    A position between two poses is interpolated linearly when they are at most `max_gap_us`
    apart (one lost 10 Hz frame is bridged, two are not); a time up to `tolerance_us` outside
    the track snaps to its end (timestamp jitter), anything further is unknown.
    """

    def __init__(self, max_gap_us: int = 250_000, tolerance_us: int = 10_000):
        self.max_gap_us = max_gap_us
        self.tolerance_us = tolerance_us
        self.times: list[int] = []
        self.poses: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.times)

    def append(self, time_us: int, pose: np.ndarray) -> None:
        if self.times and time_us <= self.times[-1]:
            raise ValueError(f"pose at {time_us} us is not after the previous one at {self.times[-1]} us")
        self.times.append(int(time_us))
        self.poses.append(np.asarray(pose, dtype=float))

    def position_at(self, time_us: int) -> np.ndarray | None:
        """World position at `time_us`, or None where the track cannot tell."""
        if not self.times or not (self.times[0] - self.tolerance_us <= time_us <= self.times[-1] + self.tolerance_us):
            return None
        t = min(max(time_us, self.times[0]), self.times[-1])
        k = bisect.bisect_right(self.times, t) - 1
        if self.times[k] == t:
            return self.poses[k][:3, 3]
        t0, t1 = self.times[k], self.times[k + 1]
        if t1 - t0 > self.max_gap_us:
            return None
        w = (t - t0) / (t1 - t0)
        return (1 - w) * self.poses[k][:3, 3] + w * self.poses[k + 1][:3, 3]

    def covers_window(self, i: int) -> bool:
        """True once every pose the windows and motion of pose i need has been appended."""
        return len(self) > i + 2 and self.times[-1] >= self.times[i] + round(FUTURE * DT * 1e6)


def _relative(track: PoseTrack, i: int, steps: list[int]) -> tuple[list[list[float]], list[bool]]:
    ego_from_world = invert(track.poses[i])
    xy, valid, last = [], [], [0.0, 0.0]
    for s in steps:
        p = track.position_at(track.times[i] + round(s * DT * 1e6))
        if p is not None:
            q = apply(ego_from_world, p[None, :])[0]
            last = [clean(q[0]), clean(q[1])]
        xy.append(list(last))
        valid.append(p is not None)
    return xy, valid


def ego_windows(track: PoseTrack, i: int) -> tuple[list, list, list, list]:
    """(history_xy, history_valid, future_xy, future_valid) of pose i; history oldest first."""
    fut_xy, fut_valid = _relative(track, i, list(range(1, FUTURE + 1)))
    hist_xy, hist_valid = _relative(track, i, list(range(-1, -PAST - 1, -1)))
    return hist_xy[::-1], hist_valid[::-1], fut_xy, fut_valid


def ego_motion(poses: Sequence, times: Sequence[float], k: int, position: Callable, yaw: Callable,
               ticks_per_s: float = 1e6) -> dict:
    """Speed, acceleration and yaw rate at pose k of a drive by central differences over its
    neighbours: one-sided at the drive's ends and next to a missing pose (None), zero for a
    lone pose. `position(pose)` gives its x, y and `yaw(pose)` its heading; `times` count
    `ticks_per_s` to the second (nuScenes passes seconds, as its published shards were made)."""
    n = len(poses)

    def seconds(lo: int, hi: int) -> float:
        return (times[hi] - times[lo]) / ticks_per_s

    def speed(j: int) -> float | None:
        if poses[j] is None:
            return None
        lo = j - 1 if j > 0 and poses[j - 1] is not None else j
        hi = j + 1 if j + 1 < n and poses[j + 1] is not None else j
        if lo == hi:
            return None
        (x0, y0), (x1, y1) = position(poses[lo])[:2], position(poses[hi])[:2]
        dx, dy = x1 - x0, y1 - y0
        return math.sqrt(dx * dx + dy * dy) / seconds(lo, hi)

    lo, hi = max(k - 1, 0), min(k + 1, n - 1)
    accel = yaw_rate = 0.0
    if lo != hi and poses[lo] is not None and poses[hi] is not None:
        v_lo, v_hi = speed(lo), speed(hi)
        if v_lo is not None and v_hi is not None:
            accel = (v_hi - v_lo) / seconds(lo, hi)
        dyaw = (yaw(poses[hi]) - yaw(poses[lo]) + math.pi) % (2 * math.pi) - math.pi
        yaw_rate = dyaw / seconds(lo, hi)
    return {"speed_mps": clean(speed(k) or 0.0, 3), "accel_mps2": clean(accel, 3), "yaw_rate_rps": clean(yaw_rate, 4)}


def track_motion(track: PoseTrack, i: int) -> dict:
    """`ego_motion` at pose i of a vehicle track."""
    return ego_motion(track.poses, track.times, i, position=lambda m: m[:2, 3], yaw=lambda m: matrix_yaw(m[:3, :3]))
