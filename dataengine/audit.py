"""`dataengine audit DIR`: evaluation samples that share a scene, a frame or an image with training data.

Several sources are built on the same nuScenes scenes (DriveLM, nuScenes-QA, OmniDrive,
NuInstruct, Talk2Car), and their converters all write `nuscenes:<scene_token>` and
`nuscenes:<sample_token>` ids, so a sample of one dataset's val split can sit in a scene
another dataset trains on. A held-out number is only trustworthy when the audit shows no
such overlap. The audit reads manifests only (scene_id, frame_id, media_sha1), never shards.

For every evaluation split (val, test) of every dataset and every dataset with a train
split, it counts the evaluation samples that share with that training data:
  scene: the same `scene_id`; frame: the same `frame_id`; image: any identical image (sha1).
A sample counts once in `samples` however many kinds match. Output (see docs/audit.md):
`audit.json` (the matrix), `audit.md`, `audit.png` (heat map) and `overlaps.jsonl` (every
overlapping evaluation sample and what it shares with which training dataset).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from dataengine.errors import DataEngineError, UsageError
from dataengine.heldout import UNSEEN_DATASETS
from dataengine.manifest import MANIFEST, dataset_splits

AUDIT_FORMAT = "audit/1"
AUDIT_DIR = "audit"
KINDS = ("scene", "frame", "image")
EVAL_SPLITS = ("val", "test")
TRAIN_SPLIT = "train"
_NAME_RE = re.compile(r"^[a-z0-9_]+$")


class LeakageError(DataEngineError):
    """A benchmark declared unseen shares samples with training data (CLI exit code 1)."""


@dataclass(frozen=True)
class AuditConfig:
    root: Path
    """Shard root holding `<dataset>/<split>/manifest.parquet`."""
    out: Path | None = None
    """Where the report goes; default `<root>/audit`."""
    unseen: tuple[str, ...] = UNSEEN_DATASETS
    """Datasets whose evaluation splits must not overlap any training split."""

    def out_dir(self) -> Path:
        return Path(self.out) if self.out is not None else Path(self.root) / AUDIT_DIR


@dataclass(frozen=True)
class Pair:
    """One cell of the matrix: an evaluation split against one dataset's train split."""

    eval_dataset: str
    eval_split: str
    train_dataset: str
    eval_samples: int   # samples in the evaluation split
    samples: int        # of those, how many share anything with the training data
    scene: int          # ... share a scene_id
    frame: int          # ... share a frame_id
    image: int          # ... share at least one image (sha1)
    unseen: bool        # the evaluation dataset is declared unseen

    @property
    def fraction(self) -> float:
        return self.samples / self.eval_samples if self.eval_samples else 0.0

    def describe(self) -> str:
        return (f"{self.eval_dataset}/{self.eval_split} shares {self.samples} of {self.eval_samples} samples "
                f"with {self.train_dataset} train (scene {self.scene}, frame {self.frame}, image {self.image})")


@dataclass
class AuditResult:
    unseen: tuple[str, ...]
    train_datasets: list[dict]          # {"dataset", "samples"}
    eval_splits: list[dict]             # {"dataset", "split", "samples", "overlapping", "unseen"}
    pairs: list[Pair]                   # every eval split x every train dataset, zeros included
    overlaps: list[dict] = field(default_factory=list)  # one entry per overlapping eval sample

    def leaks(self) -> list[Pair]:
        """Overlapping pairs of unseen benchmarks, worst first: most samples, then largest share,
        then most matches (a shared frame and image is a closer copy than a shared scene)."""
        bad = [p for p in self.pairs if p.unseen and p.samples > 0]
        return sorted(bad, key=lambda p: (-p.samples, -p.fraction, -(p.scene + p.frame + p.image),
                                          p.eval_dataset, p.eval_split, p.train_dataset))


def _columns(root: Path, dataset: str, split: str) -> dict[str, list]:
    table = pq.read_table(root / dataset / split / MANIFEST, columns=["key", "scene_id", "frame_id", "media_sha1"])
    return table.to_pydict()


def _train_index(root: Path, train: list[str]) -> tuple[dict[str, dict[str, set[str]]], dict[str, int]]:
    """kind -> id (scene_id, frame_id or sha1) -> the training datasets that contain it."""
    index: dict[str, dict[str, set[str]]] = {kind: {} for kind in KINDS}
    sizes = {}
    for dataset in train:
        cols = _columns(root, dataset, TRAIN_SPLIT)
        sizes[dataset] = len(cols["key"])
        for scene, frame, sha1s in zip(cols["scene_id"], cols["frame_id"], cols["media_sha1"]):
            index["scene"].setdefault(scene, set()).add(dataset)
            index["frame"].setdefault(frame, set()).add(dataset)
            for sha1 in sha1s:
                index["image"].setdefault(sha1, set()).add(dataset)
    return index, sizes


def _sample_hits(index: dict, scene: str, frame: str, sha1s: list[str]) -> dict[str, list[str]]:
    """train dataset -> the kinds this sample shares with it (in KINDS order)."""
    hits: dict[str, list[str]] = {}
    found = {"scene": index["scene"].get(scene, ()), "frame": index["frame"].get(frame, ()),
             "image": set().union(*(index["image"].get(s, ()) for s in sha1s))}
    for kind in KINDS:
        for dataset in sorted(found[kind]):
            hits.setdefault(dataset, []).append(kind)
    return dict(sorted(hits.items()))


def _audit_split(root: Path, dataset: str, split: str, index: dict, train: list[str],
                 unseen: bool) -> tuple[dict, list[Pair], list[dict]]:
    cols = _columns(root, dataset, split)
    counts = {t: dict.fromkeys(("samples", *KINDS), 0) for t in train}
    overlaps = []
    for key, scene, frame, sha1s in zip(cols["key"], cols["scene_id"], cols["frame_id"], cols["media_sha1"]):
        hits = _sample_hits(index, scene, frame, sha1s)
        if not hits:
            continue
        overlaps.append({"dataset": dataset, "split": split, "key": key, "train": hits})
        for t, kinds in hits.items():
            counts[t]["samples"] += 1
            for kind in kinds:
                counts[t][kind] += 1
    n = len(cols["key"])
    pairs = [Pair(dataset, split, t, n, c["samples"], c["scene"], c["frame"], c["image"], unseen)
             for t, c in counts.items()]
    summary = {"dataset": dataset, "split": split, "samples": n, "overlapping": len(overlaps), "unseen": unseen}
    return summary, pairs, overlaps


def check_unseen_names(names: tuple[str, ...]) -> None:
    for name in names:
        if not _NAME_RE.match(name):
            raise UsageError(f"--unseen {name!r}: a dataset name is lowercase letters, digits and _")


def run_audit(cfg: AuditConfig) -> AuditResult:
    """Build the matrix from the manifests under `cfg.root` (writes nothing)."""
    root = Path(cfg.root)
    check_unseen_names(cfg.unseen)
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    splits = dataset_splits(root)
    if not splits:
        raise UsageError(f"{root}: no <dataset>/<split>/{MANIFEST} found; convert a dataset first")
    train = sorted(d for d, s in splits if s == TRAIN_SPLIT)
    index, sizes = _train_index(root, train)
    result = AuditResult(tuple(cfg.unseen), [{"dataset": d, "samples": sizes[d]} for d in train], [], [])
    for dataset, split in splits:
        if split in EVAL_SPLITS:
            summary, pairs, overlaps = _audit_split(root, dataset, split, index, train, dataset in cfg.unseen)
            result.eval_splits.append(summary)
            result.pairs += pairs
            result.overlaps += overlaps
    return result


def to_json(result: AuditResult) -> dict:
    """The audit.json document (format described in docs/audit.md)."""
    leaks = result.leaks()
    return {
        "format": AUDIT_FORMAT,
        "kinds": list(KINDS),
        "unseen": sorted(result.unseen),
        "clean": not leaks,
        "train": result.train_datasets,
        "eval": result.eval_splits,
        "pairs": [asdict(p) for p in result.pairs],
        "unseen_leaks": [asdict(p) for p in leaks],
    }
