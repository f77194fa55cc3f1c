"""Small datasets in LLaVA-NeXT's formats: a JSON file with an image folder, and an HF parquet dataset.

`make_llava_json(out)` writes `out/data.json` (a JSON list, as LLaVA-NeXT's `--data_path`)
and `out/images/` (its `--image_folder`): single-image records in the pretrain caption form
(`<image>\\n` first) and the instruction form (placeholder after the question), a
multi-image record, a video record (an H.264 file, `videos/`), a text-only record, and one
bad record of each kind the converter quarantines. `make_llava_parquet(out)` writes an HF
dataset with embedded images (`datasets` writes the `Image` feature into the parquet
metadata, as on the Hub: LLaVA-OneVision-Data's columns `id`, `image`, `conversations`,
`data_source`). Deterministic.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from converters.bddx.fixture import write_video
from converters.fixture_images import render_jpeg
from converters.llava.converter import LlavaOptions

BAD = {  # record id -> the reason the converter gives
    "bad-missing": "missing image",
    "bad-count": "placeholders for",
    "bad-escape": "escapes the dataset root",
    "bad-types": "conversations[0] is not an object",
    "bad-speaker": "not human or gpt",
    "bad-image-type": "not a path or a list of paths",
    "dup": "duplicate id",
}


def _turns(*pairs: tuple[str, str]) -> list[dict]:
    return [t for q, a in pairs for t in ({"from": "human", "value": q}, {"from": "gpt", "value": a})]


def _image(folder: Path, rel: str, rng: np.random.Generator, label: str) -> str:
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    (folder / rel).write_bytes(render_jpeg(rng, 96, 64, label, 85))
    return rel


def json_records(images: Path, rng: np.random.Generator) -> list:
    a = _image(images, "coco/000000000001.jpg", rng, "coco 1")
    b = _image(images, "coco/000000000002.jpg", rng, "coco 2")
    c = _image(images, "gqa/n123.jpg", rng, "gqa n123")
    write_video(images / "videos" / "clip0.mp4", seconds=3)
    return [
        {"id": "GCC_train_000001", "image": a,
         "conversations": _turns(("<image>\nRender a clear and concise summary of the photo.", "a street at dusk"))},
        {"id": 2, "image": c, "conversations": _turns(("What is parked on the left?\n<image>", "A red car."),
                                                      ("What colour is the sky?", "Grey."))},
        {"id": "multi-1", "image": [a, b], "data_source": "m4_instruct",
         "conversations": _turns(("<image><image>\nWhat differs between the two pictures?", "The lighting."))},
        {"id": "video-1", "video": "videos/clip0.mp4",
         "conversations": _turns(("<image>\nDescribe the video.", "A square moves to the right."))},
        {"id": "text-1", "conversations": _turns(("Define a roundabout.", "A circular junction."))},
        {"id": "bad-missing", "image": "coco/absent.jpg", "conversations": _turns(("<image>\nWhat?", "No."))},
        {"id": "bad-count", "image": [a, b], "conversations": _turns(("<image>\nCompare.", "Same."))},
        {"id": "bad-escape", "image": "../outside.jpg", "conversations": _turns(("<image>\nWhat?", "No."))},
        {"id": "bad-types", "image": a, "conversations": ["<image> what?", "no"]},
        {"id": "bad-speaker", "image": a, "conversations": [{"from": "robot", "value": "<image>hi"}]},
        {"id": "bad-image-type", "image": 7, "conversations": _turns(("<image>\nWhat?", "No."))},
        {"id": "dup", "image": a, "conversations": _turns(("<image>\nFirst.", "Kept."))},
        {"id": "dup", "image": b, "conversations": _turns(("<image>\nSecond.", "Quarantined."))},
        ["not", "an", "object"],
    ]


def make_llava_json(out: Path, seed: int = 0) -> Path:
    """Write `out/data.json` and `out/images/`; returns the JSON file."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    records = json_records(out / "images", rng)
    (out / "data.json").write_text(json.dumps(records, indent=1))
    return out / "data.json"


def make_llava_parquet(out: Path, seed: int = 1) -> Path:
    """Write an HF dataset folder `out/hf/data/train-00000-of-00001.parquet`; returns the folder."""
    import datasets

    rng = np.random.default_rng(seed)
    rows = [(f"ov-{i}", render_jpeg(rng, 80, 48, f"ov {i}", 85), f"<image>\nWhat is shown in picture {i}?",
             f"Picture {i}.") for i in range(4)]
    features = datasets.Features({
        "id": datasets.Value("string"), "image": datasets.Image(),
        "conversations": datasets.List({"from": datasets.Value("string"), "value": datasets.Value("string")}),
        "data_source": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({
        "id": [r[0] for r in rows] + ["ov-text", "ov-bad"],
        "image": [{"bytes": r[1], "path": None} for r in rows] + [None, {"bytes": b"not an image", "path": None}],
        "conversations": [_turns((r[2], r[3])) for r in rows] + [_turns(("Hello?", "Hi.")),
                                                                  _turns(("<image>\nWhat?", "Nothing."))],
        "data_source": ["fixture"] * (len(rows) + 2)}, features=features)
    folder = Path(out) / "hf"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    ds.to_parquet(folder / "data" / "train-00000-of-00001.parquet")
    return folder


def jobs(name: str, out: Path) -> list[tuple[Path, LlavaOptions]]:
    return [(make_llava_json(out), LlavaOptions(images=str(Path(out) / "images")))]
