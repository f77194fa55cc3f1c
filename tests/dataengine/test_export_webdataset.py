"""Self-contained WebDataset export: plain `webdataset` decodes it, image bytes equal the store's."""
import hashlib
import io
import json

import pytest
import webdataset as wds
from PIL import Image
from synthetic_shards import jpeg, png, record, write_split

from dataengine.cli import main
from dataengine.export_webdataset import WebDatasetExportConfig, export
from dataengine.mediastore import MediaStore
from dataengine.reader import DatasetReader


@pytest.fixture()
def root(tmp_path):
    """Two datasets sharing one image (stored once in the store, inline in both exports)."""
    shared = jpeg(7)
    root = tmp_path / "shards"
    write_split(root, "a", "train", [
        record("a", "train", "one", "x:s1", "x:f1", [shared, png(2)], layout="multi_view", cameras=["front", "back"]),
        record("a", "train", "two", "x:s1", "x:f2", [jpeg(3)]),
        record("a", "train", "text", "x:s1", "x:f3", []),
    ])
    write_split(root, "b", "val", [record("b", "val", "one", "x:s2", "x:f4", [shared])])
    return root


def test_plain_webdataset_decodes_images_equal_to_the_store(root, tmp_path):
    out = tmp_path / "wds"
    export(WebDatasetExportConfig(root, out))
    store = MediaStore(root)
    seen = 0
    for dataset, split in (("a", "train"), ("b", "val")):
        reader = DatasetReader(root, dataset, split)
        urls = sorted(str(p) for p in (out / dataset / split).glob("shard-*.tar"))
        # no project code: webdataset's own decoder ("pil") turns the image members into PIL images
        raw = list(wds.WebDataset(urls, shardshuffle=False))
        decoded = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
        assert [s["__key__"] for s in raw] == reader.keys()
        for plain, pil in zip(raw, decoded):
            sample = json.loads(plain["json"])
            assert sample == reader.get(plain["__key__"]).sample
            images = [k for k in plain if k.startswith("img")]
            assert sorted(images) == sorted(m["member"] for m in sample["media"])
            for item in sample["media"]:
                blob = plain[item["member"]]
                assert hashlib.sha1(blob).hexdigest() == item["sha1"] == hashlib.sha1(store.read(item["sha1"])).hexdigest()
                image = pil[item["member"]]
                assert isinstance(image, Image.Image) and image.size == (item["width"], item["height"])
                assert image.tobytes() == Image.open(io.BytesIO(store.read(item["sha1"]))).convert("RGB").tobytes()
                seen += 1
    assert seen == 4  # the shared image is inline in both datasets
    summary = json.loads((out / "export.json").read_text())
    assert [(s["dataset"], s["samples"], s["images"]) for s in summary["splits"]] == [("a", 3, 3), ("b", 1, 1)]


def test_deterministic_and_rolls_over(root, tmp_path):
    export(WebDatasetExportConfig(root, tmp_path / "one", shard_mb=0.002))
    export(WebDatasetExportConfig(root, tmp_path / "two", shard_mb=0.002))
    one = sorted((tmp_path / "one" / "a" / "train").glob("*.tar"))
    assert [p.name for p in one] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    for p in one:
        assert p.read_bytes() == (tmp_path / "two" / "a" / "train" / p.name).read_bytes()
    export(WebDatasetExportConfig(root, tmp_path / "one"))  # re-export into the same folder: no stale shard
    assert [p.name for p in (tmp_path / "one" / "a" / "train").glob("*.tar")] == ["shard-000000.tar"]
    keys = [s["__key__"] for s in wds.WebDataset(str(tmp_path / "two" / "a" / "train" / "shard-{000000..000002}.tar"),
                                                  shardshuffle=False)]
    assert keys == DatasetReader(root, "a", "train").keys()


def test_cli_bad_arguments_exit_2(root, tmp_path, capsys):
    assert main(["export-webdataset", str(root), "--out", str(tmp_path / "w")]) == 0
    assert "a/train: 3 samples, 3 images inline" in capsys.readouterr().out
    assert main(["export-webdataset", str(tmp_path / "nothing"), "--out", str(tmp_path / "w")]) == 2
    assert main(["export-webdataset", str(root), "--out", str(root / "inside")]) == 2
    assert main(["export-webdataset", str(root), "--out", str(tmp_path / "w"), "--shard-mb", "0"]) == 2
    err = capsys.readouterr().err
    assert "not a directory" in err and "outside the shard root" in err and "must be positive" in err
    assert "Traceback" not in err
