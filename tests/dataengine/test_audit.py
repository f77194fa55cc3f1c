"""Leakage audit: planted scene/frame/image overlaps are found and counted; clean roots pass."""
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from synthetic_shards import jpeg, record, write_split

from dataengine.audit import AuditConfig, run_audit, to_json
from dataengine.audit_report import write_report
from dataengine.cli import main
from dataengine.reader import DatasetReader

S1, S9 = "nuscenes:scene1", "nuscenes:scene9"


def planted_root(root: Path) -> Path:
    """drivelm and nuscenes train; nuscenes_qa val with one overlap of each kind plus a clean
    sample; codalm val (seen) sharing an image with nuscenes train; bddx val clean."""
    write_split(root, "drivelm", "train", [
        record("drivelm", "train", "a", S1, "nuscenes:f1", [jpeg(1)]),
        record("drivelm", "train", "b", S1, "nuscenes:f2", [jpeg(2), jpeg(3)], layout="multi_view",
               cameras=["front", "back"]),
    ])
    write_split(root, "nuscenes", "train", [record("nuscenes", "train", "n", S9, "nuscenes:f9", [jpeg(9)])])
    write_split(root, "nuscenes_qa", "val", [
        record("nuscenes_qa", "val", "scene-only", S1, "nuscenes:f7", [jpeg(20)]),
        record("nuscenes_qa", "val", "scene-and-frame", S1, "nuscenes:f2", [jpeg(21)]),
        record("nuscenes_qa", "val", "image-only", "nuscenes:scene5", "nuscenes:f5", [jpeg(3)]),
        record("nuscenes_qa", "val", "clean", "nuscenes:scene6", "nuscenes:f6", [jpeg(22)]),
    ])
    write_split(root, "codalm", "val", [record("codalm", "val", "c", "codalm:c", "codalm:c", [jpeg(9)])])
    write_split(root, "bddx", "val", [record("bddx", "val", "v", "bddx:v", "bddx:v:0", [jpeg(30)])])
    return root


def _pair(doc: dict, eval_dataset: str, train: str) -> dict:
    return next(p for p in doc["pairs"] if p["eval_dataset"] == eval_dataset and p["train_dataset"] == train)


def test_planted_overlaps_counted_by_kind(tmp_path):
    doc = to_json(run_audit(AuditConfig(planted_root(tmp_path))))
    qa = _pair(doc, "nuscenes_qa", "drivelm")
    assert (qa["eval_samples"], qa["samples"], qa["scene"], qa["frame"], qa["image"]) == (4, 3, 2, 1, 1)
    assert qa["unseen"] is True
    assert _pair(doc, "nuscenes_qa", "nuscenes")["samples"] == 0
    coda = _pair(doc, "codalm", "nuscenes")
    assert (coda["samples"], coda["scene"], coda["frame"], coda["image"], coda["unseen"]) == (1, 0, 0, 1, False)
    assert _pair(doc, "bddx", "drivelm")["samples"] == _pair(doc, "bddx", "nuscenes")["samples"] == 0
    assert len(doc["pairs"]) == 3 * 2  # every evaluation split x every training dataset
    assert doc["clean"] is False
    assert [(p["eval_dataset"], p["train_dataset"]) for p in doc["unseen_leaks"]] == [("nuscenes_qa", "drivelm")]
    assert {e["dataset"]: e["overlapping"] for e in doc["eval"]} == {"bddx": 0, "codalm": 1, "nuscenes_qa": 3}


def test_overlaps_jsonl_lists_every_overlapping_sample(tmp_path):
    root = planted_root(tmp_path)
    write_report(run_audit(AuditConfig(root)), root / "audit")
    lines = [json.loads(x) for x in (root / "audit" / "overlaps.jsonl").read_text().splitlines()]
    by_key = {x["key"]: x["train"] for x in lines}
    assert by_key == {
        "codalm-c": {"nuscenes": ["image"]},
        "nuscenes_qa-scene-only": {"drivelm": ["scene"]},
        "nuscenes_qa-scene-and-frame": {"drivelm": ["scene", "frame"]},
        "nuscenes_qa-image-only": {"drivelm": ["image"]},
    }


def test_cli_exits_1_naming_worst_pair_and_writes_report(tmp_path, capsys):
    root = planted_root(tmp_path)
    assert main(["audit", str(root)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "nuscenes_qa/val" in err and "drivelm" in err and "3 of 4" in err
    for name in ("audit.json", "audit.md", "audit.png", "overlaps.jsonl"):
        assert (root / "audit" / name).stat().st_size > 0
    md = (root / "audit" / "audit.md").read_text()
    assert "LEAKAGE" in md and "| nuscenes_qa/val | drivelm | 3 of 4 |" in md


def test_unseen_flag_overrides_the_default_set(tmp_path, capsys):
    root = planted_root(tmp_path)
    assert main(["audit", str(root), "--unseen", "bddx"]) == 0  # nuscenes_qa no longer held out
    assert main(["audit", str(root), "--unseen", "codalm", "--out", str(tmp_path / "rep")]) == 1
    assert "codalm/val" in capsys.readouterr().err
    doc = json.loads((tmp_path / "rep" / "audit.json").read_text())
    assert doc["unseen"] == ["codalm"] and doc["clean"] is False


def test_same_dataset_train_val_overlap_is_flagged(tmp_path):
    write_split(tmp_path, "talk2car", "train", [record("talk2car", "train", "t", S1, "nuscenes:f1", [jpeg(1)])])
    write_split(tmp_path, "talk2car", "val", [record("talk2car", "val", "v", S1, "nuscenes:f8", [jpeg(2)])])
    result = run_audit(AuditConfig(tmp_path))
    assert [(p.eval_dataset, p.train_dataset, p.scene) for p in result.leaks()] == [("talk2car", "talk2car", 1)]


def test_report_is_deterministic(tmp_path):
    root = planted_root(tmp_path / "root")
    write_report(run_audit(AuditConfig(root)), tmp_path / "a")
    write_report(run_audit(AuditConfig(root)), tmp_path / "b")
    for name in ("audit.json", "audit.md", "overlaps.jsonl", "audit.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_heatmap_renders_cells_and_unseen_rows(tmp_path):
    root = planted_root(tmp_path)
    write_report(run_audit(AuditConfig(root)), root / "audit")
    img = Image.open(root / "audit" / "audit.png").convert("RGB")
    assert img.width > 400 and img.height > 250
    colors = img.getcolors(maxcolors=1 << 20)
    red_text = sum(n for n, (r, g, b) in colors if r > 150 and g < 60 and b < 60)
    assert len(colors) > 50 and red_text > 20  # a rendered colour scale and red unseen labels


def test_clean_on_converted_nuscenes_official_splits(nuscenes_shards, tmp_path, capsys):
    assert main(["audit", str(nuscenes_shards), "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "audit.json").read_text())
    assert doc["clean"] is True
    assert [(p["eval_dataset"], p["eval_split"], p["train_dataset"], p["samples"]) for p in doc["pairs"]] == [
        ("nuscenes", "val", "nuscenes", 0)]
    assert "0 of 20 evaluation samples overlap" in capsys.readouterr().out  # planning + agent motion


def test_planted_overlap_with_converted_nuscenes(nuscenes_shards, tmp_path):
    """A nuScenes-QA val sample on a frame the nuscenes converter wrote to train, as a
    nuScenes-derived converter would produce it (same namespaced ids, same image bytes)."""
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(nuscenes_shards / "nuscenes", root / "nuscenes")
    row = pq.read_table(nuscenes_shards / "nuscenes" / "train" / "manifest.parquet").to_pylist()[3]
    front = DatasetReader(nuscenes_shards, "nuscenes", "train").get(row["key"]).media_bytes(0)
    write_split(root, "nuscenes_qa", "val", [
        record("nuscenes_qa", "val", "q1", row["scene_id"], row["frame_id"], [front]),
        record("nuscenes_qa", "val", "q2", "nuscenes:other", "nuscenes:other", [jpeg(5)])])
    leaks = run_audit(AuditConfig(root, out=tmp_path / "rep")).leaks()
    assert [(p.train_dataset, p.samples, p.scene, p.frame, p.image) for p in leaks] == [("nuscenes", 1, 1, 1, 1)]


@pytest.mark.parametrize("args", [["audit", "/nonexistent/shards"], ["audit", "{empty}"],
                                  ["audit", "{root}", "--unseen", "Bad-Name"]])
def test_bad_arguments_exit_2_writing_nothing(tmp_path, capsys, args):
    (tmp_path / "empty").mkdir()
    root = planted_root(tmp_path / "root")
    argv = [a.format(empty=tmp_path / "empty", root=root) for a in args]
    assert main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (root / "audit").exists() and not (tmp_path / "empty" / "audit").exists()


def test_no_training_split_is_clean_and_still_reports(tmp_path):
    write_split(tmp_path, "drama", "test", [record("drama", "test", "d", "drama:a", "drama:a", [jpeg(1)])])
    assert main(["audit", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert (doc["clean"], doc["pairs"], doc["train"]) == (True, [], [])
    assert Image.open(tmp_path / "audit" / "audit.png").size[0] > 300
