"""DriveBench: DriveLM-nuScenes key frames asked about clean, under 15 corruptions and text only.

Source layout (`worldbench/drivebench` @ 723908f, `docs/DATA_PREPAER.md`; text data in the
HF dataset `drive-bench/arena`): one data folder holding `drivebench-test.json`, per-corruption
JSONs (`biterror.json`, `bright.json`, `camcrash.json`, ...), the key frames under
`nuscenes/samples/CAM_*/` and their corrupted copies under `corruption/<Type>/CAM_*/`, and,
beside them, the repository's `visual_description.json` (DriveLM's `key_object_infos` per
scene and key frame). A record is one question: `scene_token`, `frame_token`,
`question_type` (perception, prediction, planning, behavior), `question`, `answer`, `tag`
(a list of ints that `evaluate/eval.py` routes on) and `image_path` (camera -> file).

Settings (`meta.setting`), as `script/llava1.5-7b.sh` runs them: `clean`; each corruption,
whose images are the clean paths with `nuscenes/samples` replaced by `corruption/<Type>`
(`inference/llava1.5.py`); `text_only` ("NoImage"), where every image is a black 224x224
picture. A corruption's records are its own JSON when the folder has one, else those of
`drivebench-test.json`; a corruption is converted when its folder or its JSON is present.

The official preprocessing (`tools/preprocess.py`) keeps only the cameras a question's
object tags `<cN,CAM_X,x,y>` name; a question without tags keeps all six. Cameras are
written in our nuScenes order (front, front left, front right, back, back left, back right)
and the prompt style decides the text around them. Each record also carries its routing in
`evaluate/eval.py` (`meta.official_task`) and, with the visual descriptions, the description
of the object its question refers to (`meta.desc`, looked up as `extract_visual_description`
does). A record that eval.py cannot route, whose fields are bad, or whose images are missing
is quarantined with the reason. Work unit: one setting's questions on one scene.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Iterator

from converters.nuscenes.tables import CAMERAS, NUSCENES_ORDER
from dataengine.cameras import canonical
from dataengine.converter import Converter, Quarantined, Record, Unit, register
from dataengine.errors import UsageError
from dataengine.media import check_image_bytes, read_image

TEST_JSON = "drivebench-test.json"
DESCRIPTIONS = "visual_description.json"
QUESTION_TYPES = ("perception", "prediction", "planning", "behavior")
# setting -> (corruption folder names, JSON stems): the script's folder and output names;
# DATA_PREPAER.md writes `Bright/` and `camcrash.json`, so those spellings are accepted too.
CORRUPTIONS = {
    "biterror": (("BitError",), ("biterror",)),
    "bright": (("Brightness", "Bright"), ("bright",)),
    "cameracrash": (("CameraCrash",), ("cameracrash", "camcrash")),
    "colorquant": (("ColorQuant",), ("colorquant",)),
    "fog": (("Fog",), ("fog",)),
    "framelost": (("FrameLost",), ("framelost",)),
    "h256": (("H256ABRCompression",), ("h256",)),
    "lens": (("LensObstacleCorruption",), ("lens",)),
    "lowlight": (("LowLight",), ("lowlight",)),
    "motion": (("MotionBlur",), ("motion",)),
    "rain": (("Rain",), ("rain",)),
    "saturate": (("Saturate",), ("saturate",)),
    "snow": (("Snow",), ("snow",)),
    "water": (("WaterSplashCorruption",), ("water",)),
    "zoom": (("ZoomBlur",), ("zoom",)),
}
SETTINGS = ("clean", *CORRUPTIONS, "text_only")
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
CAMERA_TAG_RE = re.compile(r"<[^,]+,([^,]+),[^>]+>")          # tools/preprocess.py's pattern
TIMESTAMP_RE = re.compile(r"__(\d+)\.(?:jpg|jpeg|png)$")
NO_DESC_QUESTION = "In this scenario, what are safe actions to take for the ego vehicle?"
BLANK_SIZE = 224


@dataclass(frozen=True)
class DriveBenchOptions:
    drivebench_settings: str = "all"
    """Comma-separated settings to convert (clean, text_only, a corruption such as fog), or all."""
    drivebench_preprocess: bool = True
    """Keep only the cameras a question's object tags name (tools/preprocess.py); false keeps all six."""
    descriptions: str = ""
    """visual_description.json for the judge's object descriptions; default: the one in the data folder."""


def route(question_type: str, tag: list[int]) -> str | None:
    """`evaluate/eval.py`'s bucket for a record ("perception.VQA", ...), None where it raises."""
    if question_type == "perception":
        return "perception.VQA" if 2 in tag else "perception.MCQ" if 0 in tag else None
    if question_type == "prediction":
        return "prediction.VQA" if 3 in tag else "prediction.MCQ" if 0 in tag else None
    if question_type == "planning":
        return "planning.VQA" if 1 in tag else None
    if question_type == "behavior":
        return "behavior.MCQ" if 0 in tag else None
    return None


def referred_cameras(question: str) -> list[str]:
    """Cameras named by the question's object tags, as tools/preprocess.py extracts them."""
    return CAMERA_TAG_RE.findall(question)


def visual_description(descriptions: dict, scene: str, frame: str, question: str) -> tuple[str | None, str | None]:
    """(description, problem) of the object a question refers to, looked up as
    `EvaluationSuit.extract_visual_description` does: the first key object whose tag starts
    with the question's `<cN,CAM_X`; a planning question about safe actions gets a fixed text."""
    if question == NO_DESC_QUESTION:
        return "No visual description needed for this question.", None
    match = re.search(r"<(.*)>", question)
    if not match:
        return None, None
    prefix = "<" + ",".join(match.group(1).split(",")[:2])
    objects = descriptions.get(scene, {}).get("key_frames", {}).get(frame, {}).get("key_object_infos")
    if not isinstance(objects, dict):
        return None, "no key_object_infos for this frame in the visual descriptions"
    key = next((k for k in objects if k.startswith(prefix)), None)
    if key is None or not isinstance(objects[key], dict) or not isinstance(objects[key].get("Visual_description"), str):
        return None, f"no key object starting with {prefix} in the visual descriptions"
    return objects[key]["Visual_description"].lower(), None


def blank_jpeg() -> bytes:
    """The text-only setting's picture: black, 224x224, as inference/llava1.5.py feeds for NoImage."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (BLANK_SIZE, BLANK_SIZE)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _record_problem(rec) -> str | None:
    if not isinstance(rec, dict):
        return "record is not an object"
    for field in ("scene_token", "frame_token"):
        if not isinstance(rec.get(field), str) or not TOKEN_RE.match(rec[field]):
            return f"{field} is not a nuScenes token (32 hex digits)"
    if rec.get("question_type") not in QUESTION_TYPES:
        return f"question_type {rec.get('question_type')!r} is not one of {', '.join(QUESTION_TYPES)}"
    for field in ("question", "answer"):
        if not isinstance(rec.get(field), str) or not rec[field].strip():
            return f"no {field} string"
    tag = rec.get("tag")
    if not isinstance(tag, list) or not tag or not all(isinstance(t, int) and not isinstance(t, bool) for t in tag):
        return "tag is not a non-empty list of integers"
    if route(rec["question_type"], tag) is None:
        return f"evaluate/eval.py routes no {rec['question_type']} question with tag {tag}"
    paths = rec.get("image_path")
    if not isinstance(paths, dict) or not paths or not all(isinstance(p, str) for p in paths.values()):
        return "image_path is not an object of camera -> path strings"
    unknown = sorted(set(paths) - set(NUSCENES_ORDER))
    if unknown:
        return f"image_path names unknown camera(s) {', '.join(unknown)}"
    return None


@register
class DriveBenchConverter(Converter):
    """DriveBench (clean, corrupted, text-only) questions on DriveLM-nuScenes key frames."""

    name = "drivebench"
    version = "1.0"
    options_type = DriveBenchOptions
    cameras = CAMERAS

    def _json(self, path: Path):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path} is not valid JSON ({exc})") from None

    @cached_property
    def _settings(self) -> list[str]:
        raw = self.options.drivebench_settings
        if raw == "all":
            return [s for s in SETTINGS if s in ("clean", "text_only") or self._corruption_present(s)]
        chosen = [s.strip() for s in raw.split(",") if s.strip()]
        unknown = [s for s in chosen if s not in SETTINGS]
        if unknown or not chosen:
            raise UsageError(f"--drivebench-settings {raw!r}: use all or a comma list of {', '.join(SETTINGS)}")
        return [s for s in SETTINGS if s in chosen]

    def _corruption_present(self, setting: str) -> bool:
        return self._folder(setting) is not None or self._setting_json(setting) is not None

    def _folder(self, setting: str) -> str | None:
        """The corruption's folder name under corruption/ (the first spelling present)."""
        names = CORRUPTIONS[setting][0]
        return next((n for n in names if (self.src / "corruption" / n).is_dir()), None)

    def _setting_json(self, setting: str) -> Path | None:
        if setting not in CORRUPTIONS:
            return None
        return next((self.src / f"{s}.json" for s in CORRUPTIONS[setting][1] if (self.src / f"{s}.json").is_file()),
                    None)

    @cached_property
    def _descriptions(self) -> dict:
        path = Path(self.options.descriptions) if self.options.descriptions else self.src / DESCRIPTIONS
        if not path.is_file():
            return {}
        data = self._json(path)
        return data if isinstance(data, dict) else {}

    def check_source(self) -> None:
        if not self.src.is_dir():
            raise UsageError(f"{self.src} is not a directory: pass the DriveBench data folder (with {TEST_JSON})")
        if not (self.src / TEST_JSON).is_file():
            raise UsageError(f"{self.src} is not a DriveBench data folder: no {TEST_JSON}")
        if not (self.src / "nuscenes" / "samples").is_dir():
            raise UsageError(f"{self.src} is not a DriveBench data folder: no nuscenes/samples/")
        if self.options.descriptions and not Path(self.options.descriptions).is_file():
            raise UsageError(f"--descriptions {self.options.descriptions}: no such file")
        if not isinstance(self._json(self.src / TEST_JSON), list):
            raise UsageError(f"{self.src / TEST_JSON} is not a DriveBench question file: not a JSON list")
        self._settings  # noqa: B018  (raises on a bad --drivebench-settings)

    def units(self) -> list[Unit]:
        """Per setting, one unit per scene (in first-appearance order); records whose scene
        token is unusable share an `unscened` unit that quarantines them."""
        units = []
        for setting in self._settings:
            path = self._setting_json(setting) or self.src / TEST_JSON
            data = self._json(path)
            if not isinstance(data, list):
                raise UsageError(f"{path} is not a DriveBench question file: not a JSON list")
            by_scene: dict[str, list] = {}
            for index, rec in enumerate(data):
                scene = rec.get("scene_token") if isinstance(rec, dict) else None
                scene = scene if isinstance(scene, str) and TOKEN_RE.match(scene) else "unscened"
                by_scene.setdefault(scene, []).append([index, rec])
            units += [Unit(f"{setting}-{scene}", "test", {"setting": setting, "file": path.name, "records": recs})
                      for scene, recs in by_scene.items()]
        return units

    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        setting = unit.payload["setting"]
        seen: dict[str, str] = {}  # a record's canonical JSON -> its id (a copy shares its scene, so its unit)
        for index, rec in unit.payload["records"]:
            record_id = f"{setting}/{unit.payload['file']}[{index}]"
            reason = _record_problem(rec)
            if not reason:
                copy_of = seen.setdefault(json.dumps(rec, sort_keys=True), record_id)
                reason = f"duplicate of record {copy_of}" if copy_of != record_id else None
            if reason:
                yield Quarantined(record_id, reason)
                continue
            paths = self._kept_paths(rec)
            if not paths:
                yield Quarantined(record_id, f"the question's cameras {sorted(set(referred_cameras(rec['question'])))} "
                                             "are not in image_path (tools/preprocess.py keeps none)")
                continue
            media, blobs, reason = self._media(setting, rec["image_path"], paths)
            if reason:
                yield Quarantined(record_id, reason)
                continue
            yield Record(self._sample(setting, index, rec, paths, media), blobs)

    def _kept_paths(self, rec: dict) -> dict[str, str]:
        """image_path after tools/preprocess.py (when on), in our camera order."""
        paths = rec["image_path"]
        named = set(referred_cameras(rec["question"]))
        if self.options.drivebench_preprocess and named:
            paths = {c: p for c, p in paths.items() if c in named}
        return {c: paths[c] for c in NUSCENES_ORDER if c in paths}

    def _locate(self, setting: str, channel: str, path: str) -> tuple[Path | None, str, str | None]:
        """(root, path under it, None) of one image in a setting, or a reason."""
        parts = PurePosixPath(path).parts
        if "samples" in parts:
            rest = parts[parts.index("samples") + 1:]
        elif "corruption" in parts and len(parts) > parts.index("corruption") + 1:
            rest = parts[parts.index("corruption") + 2:]
        else:
            return None, "", f"image_path[{channel}] {path!r} is under neither nuscenes/samples/ nor corruption/"
        if rest[:1] != (channel,):
            return None, "", f"image_path[{channel}] {path!r} is not in a {channel}/ folder"
        if setting in ("clean", "text_only"):  # text_only draws blank images; the path is checked all the same
            return self.src / "nuscenes", "/".join(("samples", *rest)), None
        folder = self._folder(setting) or CORRUPTIONS[setting][0][0]
        return self.src / "corruption" / folder, "/".join(rest), None

    def _media(self, setting: str, all_paths: dict, paths: dict) -> tuple[list[dict], list[bytes], str | None]:
        front = _timestamp(all_paths.get("CAM_FRONT", ""))
        media, blobs = [], []
        for i, (channel, path) in enumerate(paths.items()):
            root, rel, reason = self._locate(setting, channel, path)
            if reason:
                return [], [], reason
            if setting == "text_only":
                blob, reason = check_image_bytes(self._blank)
            else:
                blob, reason = read_image(root, rel)
            if reason:
                return [], [], f"{channel}: {reason}"
            ts = _timestamp(path)
            offset = (ts - front) / 1e6 if ts is not None and front is not None else 0.0
            media.append({"member": f"img{i}.{blob.format}", "camera": canonical(self.cameras, channel, self.name),
                          "source_camera": channel, "time_offset_s": round(offset, 6) + 0.0,
                          "width": blob.width, "height": blob.height})
            blobs.append(blob.data)
        return media, blobs, None

    @cached_property
    def _blank(self) -> bytes:
        return blank_jpeg()

    def _sample(self, setting: str, index: int, rec: dict, paths: dict, media: list[dict]) -> dict:
        desc, desc_problem = visual_description(self._descriptions, rec["scene_token"], rec["frame_token"],
                                                rec["question"]) if self._descriptions else (None, None)
        official = route(rec["question_type"], rec["tag"])
        return {
            "schema": "sample/1", "id": f"drivebench-{rec['frame_token']}-{index}-{setting}", "dataset": self.name,
            "split": "test", "task": f"vqa.{rec['question_type']}",
            "scene_id": f"nuscenes:{rec['scene_token']}", "frame_id": f"nuscenes:{rec['frame_token']}",
            "layout": "multi_view", "media": media,
            "conversations": [{"role": "user", "content": rec["question"]},
                              {"role": "assistant", "content": rec["answer"]}],
            "meta": {"setting": setting, "corruption": self._folder(setting) if setting in CORRUPTIONS else None,
                     "scene_token": rec["scene_token"], "frame_token": rec["frame_token"],
                     "question_type": rec["question_type"], "tag": rec["tag"], "official_task": official,
                     "index": index, "image_path": rec["image_path"], "cameras_kept": list(paths),
                     "desc": desc, "desc_problem": desc_problem, "time_reference": "CAM_FRONT"},
        }


def _timestamp(path: str) -> int | None:
    m = TIMESTAMP_RE.search(path)
    return int(m.group(1)) if m else None
