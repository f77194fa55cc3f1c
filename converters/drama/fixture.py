"""A small DRAMA root in the layout its loaders describe: the annotation list and local frames.

`<out>/integrated_output_v2.json` lists per-frame annotations whose `s3_fileUrl` points into
the DRAMA bucket (`https://s3-us-west-2.amazonaws.com/hrius.scaleapi/data/drama/combined/
<clip>/<frame>/frame_<frame>.png`); the local copies sit at `<out>/combined/...`, where the
loaders' prefix replacement puts them. Rows cover risky frames with a box, a no-risk frame
with an "N/A" caption and no geometry, and coordinates written as strings (as some loaders
expect, `float(...)`). Frames are PNG like DRAMA's. Deterministic.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from converters.drama.converter import ANNOTATIONS, DramaOptions
from converters.fixture_images import render_jpeg

PREFIX = "https://s3-us-west-2.amazonaws.com/hrius.scaleapi/data/drama/"
ROWS = (  # (risk, caption, intention, suggestion, box as fractions of the image or None)
    ("Yes", "The white sedan ahead is braking hard in the ego lane.", "going straight",
     "slow down (the car in front is braking)", (0.40, 0.45, 0.62, 0.75)),
    ("Yes", "A pedestrian is crossing the street from the right side.", "slowing down",
     "(must) Stop", (0.70, 0.40, 0.80, 0.85)),
    ("No", "N/A", "going straight", "N/A", None),
    ("Yes", "A cyclist is merging into the ego lane from the left.", "turning left",
     "be aware or cautious (of the important object, in case it might move)", (0.05, 0.35, 0.22, 0.80)),
)


def _png(rng: np.random.Generator, width: int, height: int, label: str) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(render_jpeg(rng, width, height, label, 90))).save(buf, format="PNG")
    return buf.getvalue()


def _geometry(box, width: int, height: int, as_strings: bool) -> list:
    if box is None:
        return []
    x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    return [[f"{v:.1f}" if as_strings else round(v, 1) for v in c] for c in corners]


def clip_name(i: int) -> str:
    """DRAMA's clip folders are capture times, `<YYYY>-<MMDD>-<hhmmss>`."""
    return f"2020-{1 + i // 28:02d}{1 + i % 28:02d}-{13 + i % 6:02d}{(27 + i) % 60:02d}51"


def make_drama_root(out: Path, clips: int = 3, frames_per_clip: int = 3, width: int = 400, height: int = 250,
                    seed: int = 0) -> Path:
    """Write a DRAMA root under `out`; returns `out`."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    rows, n = [], 0
    for clip in map(clip_name, range(clips)):
        for k in range(frames_per_clip):
            frame = f"{786 + 30 * k:06d}"
            rel = f"combined/{clip}/{frame}/frame_{frame}.png"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(_png(rng, width, height, f"{clip} {frame}"))
            risk, caption, intention, suggestion, box = ROWS[n % len(ROWS)]
            rows.append({"s3_fileUrl": PREFIX + rel, "s3_instructionReference": f"{PREFIX}combined/{clip}/video.mp4",
                         "Caption": caption, "Risk": risk, "Intention of Ego-vehicle": intention,
                         "Suggestions (to the ego car)": suggestion,
                         "geometry": _geometry(box, width, height, as_strings=n % 2 == 1)})
            n += 1
    out.mkdir(parents=True, exist_ok=True)
    (out / ANNOTATIONS).write_text(json.dumps(rows, indent=2))
    return out


def jobs(name: str, out: Path) -> list[tuple[Path, DramaOptions]]:
    return [(make_drama_root(out), DramaOptions())]
