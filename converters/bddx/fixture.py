"""A small BDD-X root in the real raw format, plus the processed (RAG-Driver) test format.

Raw: the MTurk CSV with the real 61-column header and CRLF line endings, the three split
files numbered the way the real ones are, and short H.264 videos written with PyAV (byte-reproducible). The
left half of frame n is a flat grey of level `frame_level(n)`, so a test can read back
which frame a sampled JPEG came from; a red square moves across the right half. The rows
cover what the real CSV holds: a video annotated twice (`samples-1k/` and `train/`), an
all-empty separator record, a row with only a URL, malformed slots (missing end, end
before start, `X` text, a fractional time, past the video's end), a zero-length segment,
a truncated mp4, a missing video and a row that no split file lists.

Processed: `processed/conversation_bddx_eval_v1.json`, the COCO-style caption files, the
control-signal file and DriveMM-style frames `testing_<video>_<clip>_<k>.png` in numbered
subfolders (as `zhijian11/DriveMM:scripts/inference_demo/` ships them). Deterministic.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import av
import numpy as np
from PIL import Image

from converters.bddx.converter import BddxOptions
from converters.bddx.processed import BddxProcessedOptions
from converters.bddx.table import CSV_NAME, FIELDS, SPLIT_FILES, VIDEO_COLUMN

FPS = 10
SECONDS = 6
SIZE = (96, 64)  # width, height
SLOTS = 15
URL = "https://s3-us-west-2.amazonaws.com/sq8geewpqu/{folder}/{video}.mov"


def video_id(name: str) -> str:
    """A BDD100K-looking id (8 hex, dash, 8 hex) derived from a name."""
    h = hashlib.md5(name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:16]}"


V = {name: video_id(name) for name in ("v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8")}

# (folder, video, split or None, slots as (start, end, action, justification))
ROWS = (
    ("samples-1k", V["v1"], "train", [("0", "2", "The car accelerates", "because the light has turned green."),
                                      ("2", "4", "The car drives at a steady speed", "because traffic is clear."),
                                      ("4", "6", "The car slows down", "as it approaches a junction.")]),
    ("samples-1k", V["v2"], "val", [("0", "3", "The car is stopped", "because the light is red."),
                                    ("3", "6", "The car moves forward", "since the light turned green.")]),
    ("samples-1k", V["v7"], None, []),
    ("train", V["v1"], "train", [("0", "6", "The car drives forward", "because the road ahead is clear."),
                                 ("1", "1", "The car keeps its lane", "because there is a car on its left.")]),
    ("train", V["v3"], "train", [("0", "2", "The car turns left", "to enter another road."),
                                 ("3", "", "The car slows", "because of a pedestrian."),
                                 ("5", "4", "The car stops", "because the car ahead stopped."),
                                 ("2", "3", "X", "X"),
                                 ("4", "8", "The car drives on", "because traffic is moving."),
                                 ("1.5", "3", "The car merges", "to pass a parked truck."),
                                 ("3", "3", "The car brakes", "because the light turns yellow.")]),
    ("train", V["v4"], "train", [("0", "3", "The car drives forward", "as the road is clear."),
                                 ("3", "6", "The car turns right", "to follow the road.")]),
    ("train", V["v5"], "test", [("0", "4", "The car waits", "because a bus blocks the lane.")]),
    ("train", V["v6"], "test", [("0", "2", "The car is stopped", "because traffic ahead is stopped."),
                                ("2", "6", "The car accelerates", "because traffic starts moving.")]),
    ("train", V["v8"], None, [("0", "5", "The car drives slowly", "because of the speed bump.")]),
)
VIDEO_FILES = {V["v1"]: ".mov", V["v2"]: ".mov", V["v3"]: ".mov", V["v6"]: ".mp4", V["v7"]: ".mov",
               V["v8"]: ".mov"}
TRUNCATED = V["v4"]  # an mp4 cut in half: its index (moov) is gone, so it does not open


def frame_level(n: int) -> int:
    """Grey level of the left half of frame n."""
    return 8 + 4 * n


def level_to_frame(level: float) -> int:
    return round((level - 8) / 4)


def _frame(n: int, row: int) -> np.ndarray:
    w, h = SIZE
    img = np.full((h, w, 3), 40, np.uint8)
    img[:, : w // 2] = frame_level(n)
    x = w // 2 + (n * 3) % (w // 2 - 12)
    img[row: row + 12, x: x + 12] = (220, 30, 30)
    return img


def write_video(path: Path, seconds: int = SECONDS, fps: int = FPS) -> Path:
    """An H.264 video of `seconds` at `fps`; the red square's row depends on the file name, so
    videos differ. x264 runs single-threaded with the ultrafast preset: with its default
    lookahead (mbtree, B-frames) some contents came out with bytes that changed from run to
    run, which a fixture must not do."""
    row = int(hashlib.md5(path.stem.encode()).hexdigest(), 16) % (SIZE[1] - 12)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16", "preset": "ultrafast", "threads": "1"}
        for n in range(seconds * fps):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_frame(n, row), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_csv(root: Path) -> None:
    """The annotation CSV and split files (indices count the rows with a whole-second start)."""
    header = [VIDEO_COLUMN] + [f"Answer.{i}{f}" for i in range(1, SLOTS + 1) for f in FIELDS]
    splits: dict[str, list[str]] = {s: [] for s in SPLIT_FILES}
    index = 0
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for k, (folder, video, split, slots) in enumerate(ROWS):
        cells = [c for slot in slots for c in slot]
        writer.writerow([URL.format(folder=folder, video=video)] + cells + [""] * (4 * SLOTS - len(cells)))
        if k == 2:
            writer.writerow([""] * len(header))  # the real CSV's all-empty separator records
        if any(s.isdigit() for s, *_ in slots):
            index += 1
            if split:
                splits[split].append(f"{index}_{video}")
    (root / CSV_NAME).write_text(buf.getvalue(), encoding="utf-8", newline="")
    for split, name in SPLIT_FILES.items():
        (root / name).write_text("".join(line + "\n" for line in splits[split]), encoding="utf-8")


def make_raw_root(out: Path) -> Path:
    """CSV, split files and `videos/<id>.mov|.mp4` under `out`; returns `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out)
    for video, ext in VIDEO_FILES.items():
        write_video(out / "videos" / f"{video}{ext}")
    truncated = write_video(out / "videos" / f"{TRUNCATED}.mp4")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    return out


# Processed clips: (clip index, video, action, justification); frames are written for the
# first two only, the third's text is in no CSV row, and the last matches a slot whose end
# is before its start (the real processed set kept two such clips).
CLIPS = (
    (23662, V["v6"], "The car is stopped", "because traffic ahead is stopped."),
    (23663, V["v6"], "The car accelerates", "because traffic starts moving."),
    (23664, V["v6"], "The car honks", "because a cyclist swerves."),
    (23665, V["v5"], "The car waits", "because a bus blocks the lane."),
    (23666, V["v3"], "The car stops", "because the car ahead stopped."),
)
FRAME_SIZE = (64, 36)
DEMO_FRAMES = (0, 3, 7, 11, 15)


def _conversation(cid: int, clip: int, video: str, action: str, justification: str) -> dict:
    speeds = [round(5.0 + 0.5 * i + cid, 2) for i in range(7)]
    question = ("<video>\nThis is a video recording driving scenario. Control Signal until current Frame "
                f"Sequence is: Speed: {speeds}\n Curvature: {[0.0] * 7}\n Acceleration: {[0.5] * 7}\n "
                f"Course: {[0.0] * 7}\nWhat is the action of ego car?")
    return {"id": str(cid), "video": f"BDDX_Test/video/{video}_{clip}.mp4", "conversations": [
        {"from": "human", "value": question}, {"from": "gpt", "value": action},
        {"from": "human", "value": "Why does the ego car doing this?"}, {"from": "gpt", "value": justification},
        {"from": "human", "value": "Predict the control signal for next frame."},
        {"from": "gpt", "value": f"Speed: {speeds[-1]} Curvature: 0.0"}]}


def _png(clip: int, k: int) -> bytes:
    w, h = FRAME_SIZE
    img = np.full((h, w, 3), (clip * 7 + k * 13) % 256, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def make_processed_root(out: Path) -> Path:
    """A BDD-X root (CSV and split files) with `processed/` inside; returns `out`."""
    out = Path(out)
    proc = out / "processed"
    proc.mkdir(parents=True, exist_ok=True)
    write_csv(out)
    items = [_conversation(i, *clip) for i, clip in enumerate(CLIPS)]
    items.insert(2, {"id": str(len(CLIPS)), "conversations": items[0]["conversations"]})  # no "video"
    items.append(dict(items[0], id=str(len(CLIPS) + 1)))  # the first clip again
    (proc / "conversation_bddx_eval_v1.json").write_text(json.dumps(items, indent=1), encoding="utf-8")
    for kind, turn in (("action", 1), ("justification", 3)):
        coco = {"info": [], "licenses": [], "type": "captions",
                "images": [{"id": it["id"], "file_name": it.get("video", "")} for it in items],
                "annotations": [{"image_id": it["id"], "id": n + 1, "caption": it["conversations"][turn]["value"]}
                                for n, it in enumerate(items)]}
        (proc / f"BDDX_Test_coco_{kind}.json").write_text(json.dumps(coco), encoding="utf-8")
    control = {it["id"]: {"speed": 7.5 + n, "course": 0.0} for n, it in enumerate(items)}
    (proc / "BDDX_Test_control_signal.json").write_text(json.dumps(control), encoding="utf-8")
    for folder, (clip, video, *_) in enumerate(CLIPS[:2], start=1):
        for k in DEMO_FRAMES:
            path = proc / "frames" / str(folder) / f"testing_{video}_{clip}_{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_png(clip, k))
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, BddxOptions | BddxProcessedOptions]]:
    """`bddx`: the raw root; `bddx_processed`: the processed root (which holds a raw one)."""
    if name == "bddx_processed":
        return [(make_processed_root(out), BddxProcessedOptions())]
    return [(make_raw_root(out), BddxOptions())]
