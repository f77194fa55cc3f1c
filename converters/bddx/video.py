"""Frames from a video at chosen times, with PyAV, each JPEG-encoded once.

The frame taken for time t is the one on screen at t: the last frame whose timestamp is
at or before t (the first frame for t before it). Timestamps count from the stream's
start. One sequential decode serves every time asked of a video, and stops once the last
one is served. H.264 decoding is bit-exact and the JPEG settings are fixed, so the same
video gives the same bytes.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av

JPEG_QUALITY = 90
EPS = 1e-6
# Whole-second annotation times are rounded, so a time may fall up to one second after
# the last frame; later than that the stream ended before the annotated time.
END_SLACK_S = 1.0


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its JPEG bytes, size and the decoded frame's own timestamp."""

    jpeg: bytes
    width: int
    height: int
    time_s: float


class VideoError(Exception):
    """A video that cannot be opened or decoded; the message is the quarantine reason's detail."""


def duration_s(path: Path) -> float:
    """The video stream's duration from the container (stream first, then container)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError("no video stream")
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
    except av.FFmpegError as exc:
        raise VideoError(_message(exc)) from None
    raise VideoError("the container states no duration")


def _message(exc: av.FFmpegError) -> str:
    """FFmpeg's own words without the file's absolute path (quarantine files stay portable)."""
    return exc.strerror or type(exc).__name__


def _encode(frame: av.VideoFrame, time_s: float) -> Frame:
    buf = io.BytesIO()
    frame.to_image().save(buf, format="JPEG", quality=JPEG_QUALITY)
    return Frame(buf.getvalue(), frame.width, frame.height, round(time_s, 6))


def frames_at(path: Path, times: list[float]) -> dict[float, Frame]:
    """time -> the frame on screen at that time, for every time in `times`."""
    todo = sorted(set(times))
    out: dict[float, Frame] = {}
    encoded: dict[int, Frame] = {}  # frame pts -> Frame, so a frame shared by times is encoded once
    prev, prev_t = None, 0.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1  # one core per Ray task: the job parallelizes over videos
            origin = float((stream.start_time or 0) * stream.time_base)
            for frame in container.decode(stream):
                if frame.time is None:
                    raise VideoError(f"frame {frame.index} has no timestamp")
                t = frame.time - origin
                while todo and todo[0] < t - EPS:
                    chosen, chosen_t = (prev, prev_t) if prev is not None else (frame, t)
                    out[todo.pop(0)] = _cached(encoded, chosen, chosen_t)
                if not todo:
                    break
                prev, prev_t = frame, t
    except av.FFmpegError as exc:
        raise VideoError(_message(exc)) from None
    if todo and (prev is None or todo[-1] > prev_t + END_SLACK_S):
        last = "no frame" if prev is None else f"its last frame is at {prev_t:.2f} s"
        raise VideoError(f"the stream ends before {todo[-1]:g} s ({last})")
    for t in todo:
        out[t] = _cached(encoded, prev, prev_t)
    return out


def _cached(encoded: dict[int, Frame], frame: av.VideoFrame, time_s: float) -> Frame:
    if frame.pts not in encoded:
        encoded[frame.pts] = _encode(frame, time_s)
    return encoded[frame.pts]


def sample_times(start: float, end: float, n: int) -> list[float]:
    """`n` times evenly spaced over [start, end], both ends included; the last is `end`."""
    if n == 1:
        return [float(end)]
    return [round(start + i * (end - start) / (n - 1), 6) for i in range(n)]


def past_end(start: int, end: int, duration: float) -> str | None:
    """Why a whole-second segment does not fit a video of `duration` seconds, or None."""
    if start >= duration:
        return f"segment starts at {start} s, the video lasts {duration:.2f} s"
    if end >= duration + END_SLACK_S:
        return f"segment ends at {end} s, the video lasts {duration:.2f} s"
    return None
