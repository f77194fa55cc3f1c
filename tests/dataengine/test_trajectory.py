"""Planning targets without a dataset: pose tracks, 2 Hz ego windows, ego motion, the command.
Expected values are worked out by hand from straight-line and constant-turn drives."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dataengine.trajectory import (
    PoseTrack,
    clean,
    command_from_future,
    ego_motion,
    ego_windows,
    planning_question,
    track_motion,
)


def pose(x: float, y: float, yaw: float = 0.0) -> np.ndarray:
    m = np.eye(4)
    m[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    m[:2, 3] = [x, y]
    return m


def straight_track(speed: float = 4.0, hz: int = 10, seconds: float = 6.0, yaw: float = 0.0) -> PoseTrack:
    """A vehicle driving along its heading `yaw` at `speed` m/s, one pose per 1/hz s."""
    track = PoseTrack()
    for k in range(int(seconds * hz) + 1):
        d = speed * k / hz
        track.append(k * 1_000_000 // hz, pose(d * math.cos(yaw), d * math.sin(yaw), yaw))
    return track


def test_clean_rounds_and_removes_negative_zero():
    assert clean(1.23456) == 1.2346 and clean(1.23456, 2) == 1.23
    assert math.copysign(1, clean(-0.00001)) == 1.0


def test_pose_track_rejects_time_going_backwards():
    track = PoseTrack()
    track.append(100, pose(0, 0))
    with pytest.raises(ValueError, match="not after"):
        track.append(100, pose(1, 0))


def test_position_interpolates_snaps_and_refuses_gaps():
    track = PoseTrack(max_gap_us=250_000, tolerance_us=10_000)
    track.append(0, pose(0, 0))
    track.append(100_000, pose(1, 2))
    track.append(350_000, pose(4, 2))      # a 250 ms gap: still bridged
    track.append(700_000, pose(9, 9))      # a 350 ms gap: not bridged
    np.testing.assert_allclose(track.position_at(25_000), [0.25, 0.5, 0])
    np.testing.assert_allclose(track.position_at(100_000), [1, 2, 0])
    np.testing.assert_allclose(track.position_at(225_000), [2.5, 2, 0])
    assert track.position_at(500_000) is None
    np.testing.assert_allclose(track.position_at(-10_000), [0, 0, 0])    # jitter at the start snaps
    np.testing.assert_allclose(track.position_at(710_000), [9, 9, 0])    # and at the end
    assert track.position_at(-10_001) is None and track.position_at(710_001) is None
    assert PoseTrack().position_at(0) is None


def test_windows_of_a_straight_drive_in_the_ego_frame():
    """Heading 90 degrees (north) at 4 m/s: in the ego frame the future is straight ahead on +x."""
    track = straight_track(speed=4.0, yaw=math.pi / 2)
    i = 30  # 3 s in: 2 s of history and 3 s of future exist
    hist, hist_valid, fut, fut_valid = ego_windows(track, i)
    np.testing.assert_allclose(fut, [[2.0 * k, 0.0] for k in range(1, 7)], atol=1e-4)
    np.testing.assert_allclose(hist, [[-2.0 * k, 0.0] for k in (4, 3, 2, 1)], atol=1e-4)
    assert fut_valid == [True] * 6 and hist_valid == [True] * 4
    assert command_from_future(fut, fut_valid) == "go_straight"


def test_window_points_past_the_track_are_invalid_and_repeat_the_nearest_valid_one():
    track = straight_track(speed=2.0, seconds=6.0)
    hist, hist_valid, fut, fut_valid = ego_windows(track, 50)  # 5 s in: 1 s of future left
    assert fut_valid == [True, True, False, False, False, False]
    assert fut[2:] == [fut[1]] * 4 and fut[1] == [2.0, 0.0]
    hist, hist_valid, _, _ = ego_windows(track, 10)           # 1 s in: 1 s of history
    assert hist_valid == [False, False, True, True]
    assert hist[:2] == [hist[2]] * 2 and hist[2] == [-2.0, 0.0]
    hist, hist_valid, _, _ = ego_windows(track, 0)            # no history: the origin
    assert hist == [[0.0, 0.0]] * 4 and hist_valid == [False] * 4


def test_a_left_turn_gives_turn_left_and_a_right_turn_turn_right():
    for sign, expected in ((1, "turn_left"), (-1, "turn_right")):
        track = PoseTrack()
        radius, speed = 20.0, 8.0
        for k in range(61):  # a circle of 20 m at 8 m/s, turning towards `sign` (left = counter-clockwise)
            a = speed * (k / 10) / radius
            track.append(k * 100_000, pose(radius * math.sin(a), sign * radius * (1 - math.cos(a)), sign * a))
        _, _, fut, valid = ego_windows(track, 0)
        assert command_from_future(fut, valid) == expected
        motion = track_motion(track, 30)
        assert motion["speed_mps"] == pytest.approx(speed, rel=1e-3)
        assert motion["yaw_rate_rps"] == pytest.approx(sign * speed / radius, rel=1e-3)


def test_covers_window_needs_three_seconds_after_the_pose():
    track = straight_track(seconds=6.0)
    assert track.covers_window(30) and not track.covers_window(31)


def test_ego_motion_central_and_one_sided_differences():
    times = [0.0, 0.5, 1.0, 1.5]
    xs = [0.0, 1.0, 3.0, 6.0]  # speeds 2, 4, 6 m/s between poses
    poses = [(x, 0.0, 0.0) for x in xs]

    def motion(k, ps=poses):
        return ego_motion(ps, times, k, position=lambda p: p[:2], yaw=lambda p: p[2], ticks_per_s=1.0)

    assert motion(1)["speed_mps"] == pytest.approx(3.0)          # (3 - 0) / 1 s
    assert motion(0)["speed_mps"] == pytest.approx(2.0)          # one-sided at the start
    assert motion(3)["speed_mps"] == pytest.approx(6.0)          # and at the end
    assert motion(1)["accel_mps2"] == pytest.approx((5.0 - 2.0) / 1.0)   # speed(2) = 5/1 s, speed(0) = 2
    gap = [poses[0], None, poses[2], poses[3]]
    assert motion(2, gap)["speed_mps"] == pytest.approx(6.0)     # a missing neighbour: one-sided
    assert motion(1, gap) == {"speed_mps": 0.0, "accel_mps2": 0.0, "yaw_rate_rps": 0.0}
    lone = ego_motion([(0.0, 0.0, 0.0)], [0.0], 0, position=lambda p: p[:2], yaw=lambda p: p[2])
    assert lone == {"speed_mps": 0.0, "accel_mps2": 0.0, "yaw_rate_rps": 0.0}


def test_yaw_rate_wraps_across_pi():
    times = [0.0, 1.0]
    poses = [(0.0, 0.0, math.pi - 0.05), (1.0, 0.0, -math.pi + 0.05)]
    m = ego_motion(poses, times, 0, position=lambda p: p[:2], yaw=lambda p: p[2], ticks_per_s=1.0)
    assert m["yaw_rate_rps"] == pytest.approx(0.1)


@pytest.mark.parametrize("y, expected", [
    (1.99, "go_straight"), (2.0, "turn_left"), (-1.99, "go_straight"), (-2.0, "turn_right"), (0.0, "go_straight"),
])
def test_command_threshold_is_two_metres_included(y, expected):
    """VAD's rule on the last valid point: exactly 2 m is a turn, 1.99 m is not."""
    assert command_from_future([[10.0, y], [12.0, 9.0]], [True, False]) == expected


def test_command_without_a_valid_future_point_is_go_straight():
    assert command_from_future([[5.0, 3.0], [5.0, -3.0]], [False, False]) == "go_straight"
    assert command_from_future([], []) == "go_straight"


def test_planning_question_wording():
    ego = {"speed_mps": 3.14159, "accel_mps2": -0.5, "yaw_rate_rps": 0.01234}
    assert planning_question("boston-seaport", ego, "turn_left", [[-2.0, 0.0], [-1.0, 0.25]]) == (
        "You are driving in boston-seaport. Ego state: speed 3.14 m/s, acceleration -0.50 m/s^2, yaw rate "
        "0.012 rad/s. Navigation command: turn left. Past trajectory over the last 2 s (x forward, y left, "
        "metres, every 0.5 s, oldest first): [(-2.00, 0.00), (-1.00, 0.25)]. Plan the ego vehicle's "
        "trajectory for the next 3 s as 6 waypoints (x, y) every 0.5 s.")
    assert "No past trajectory (the drive starts here). Plan" in planning_question("x", ego, "go_straight", [])


def test_default_track_bridges_250_ms_and_snaps_10_ms():
    track = PoseTrack()
    for t, x in ((0, 0), (250_000, 1), (500_001, 2)):
        track.append(t, pose(x, 0))
    np.testing.assert_allclose(track.position_at(125_000), [0.5, 0, 0])   # a 250 ms gap is bridged
    assert track.position_at(375_000) is None                            # 250.001 ms is not
    np.testing.assert_allclose(track.position_at(-10_000), [0, 0, 0])
    assert track.position_at(-10_001) is None and track.position_at(510_002) is None


def test_integer_poses_are_stored_as_floats():
    track = PoseTrack()
    track.append(0, np.eye(4, dtype=int))
    assert track.position_at(0).dtype == np.float64


def test_covers_window_needs_two_poses_after_it_as_well_as_three_seconds():
    """Acceleration at pose i needs the speeds at i + 1, hence pose i + 2."""
    track = PoseTrack()
    track.append(0, pose(0, 0))
    track.append(3_000_000, pose(30, 0))
    assert not track.covers_window(0)
    track.append(3_100_000, pose(31, 0))
    assert track.covers_window(0)


def test_window_offsets_are_exact_half_seconds():
    """No tolerance: each window point must fall exactly on a pose 0.5 s apart."""
    track = PoseTrack(tolerance_us=0)
    for k in range(7):
        track.append(k * 500_000, pose(k, 0))
    _, _, fut, valid = ego_windows(track, 0)
    assert valid == [True] * 6 and fut[-1] == [6.0, 0.0]


def test_ego_motion_counts_microseconds_by_default_and_rounds_its_fields():
    fast = ego_motion([(0.0, 0.0, 0.0), (1000.0, 0.0, 0.0)], [0, 1_000_000], 0,
                      position=lambda p: p[:2], yaw=lambda p: p[2])
    assert fast["speed_mps"] == 1000.0
    poses, times = [(0.0, 0.0, 0.0), (1 / 3, 0.0, 1 / 3), (1.0, 0.0, 2 / 3)], [0.0, 1.0, 2.0]
    m = ego_motion(poses, times, 0, position=lambda p: p[:2], yaw=lambda p: p[2], ticks_per_s=1.0)
    assert m == {"speed_mps": 0.333, "accel_mps2": 0.167, "yaw_rate_rps": 0.3333}


def test_ego_motion_uses_only_x_y_of_a_longer_position():
    poses = [(0.0, 0.0, 5.0), (3.0, 4.0, 9.0)]
    m = ego_motion(poses, [0.0, 1.0], 0, position=lambda p: p, yaw=lambda p: 0.0, ticks_per_s=1.0)
    assert m["speed_mps"] == 5.0


def test_ego_motion_acceleration_over_the_direct_neighbours():
    times = [0.0, 1.0, 2.0, 3.0]
    poses = [(x, 0.0, 0.0) for x in (0.0, 1.0, 3.0, 6.0)]

    def motion(k):
        return ego_motion(poses, times, k, position=lambda p: p[:2], yaw=lambda p: p[2], ticks_per_s=1.0)

    assert motion(1)["accel_mps2"] == pytest.approx((2.5 - 1.0) / 2.0)   # speed(2) = 5/2, speed(0) = 1, over 2 s
    assert motion(2)["accel_mps2"] == pytest.approx((3.0 - 1.5) / 2.0)   # speed(3) = 3, speed(1) = 3/2, over 2 s
