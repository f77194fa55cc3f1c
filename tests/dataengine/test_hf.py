"""A shard root as an HF IterableDataset: typed features, images decoded on access, bytes equal the store's."""
import hashlib
import io
import json

import datasets
import pytest
from PIL import Image
from synthetic_shards import jpeg, png, record, write_split

from dataengine.errors import UsageError
from dataengine.hf import load
from dataengine.mediastore import MediaStore
from dataengine.reader import DatasetReader


@pytest.fixture()
def root(tmp_path):
    root = tmp_path / "shards"
    write_split(root, "a", "train", [
        record("a", "train", "one", "x:s1", "x:f1", [jpeg(1), png(2)], layout="multi_view", cameras=["front", "back"]),
        record("a", "train", "text", "x:s1", "x:f2", []),
    ])
    write_split(root, "b", "val", [record("b", "val", "vid", "x:s2", "x:f3", [jpeg(3), jpeg(4)], layout="video",
                                          offsets=[-0.5, 0.0])])
    return root


def test_rows_typed_and_images_decoded_on_access(root):
    ds = load(root)
    assert isinstance(ds, datasets.IterableDataset)
    assert isinstance(ds.features["images"].feature, datasets.Image)
    assert ds.features["time_offsets_s"].feature.dtype == "float64"
    assert ds.num_shards == 2  # one per shard file: DataLoader workers split them
    rows = list(ds)
    expected = [s for d, sp in (("a", "train"), ("b", "val")) for s in DatasetReader(root, d, sp)]
    assert [r["key"] for r in rows] == [s.key for s in expected]
    store = MediaStore(root)
    for r, stored in zip(rows, expected):
        assert json.loads(r["sample"]) == stored.sample
        assert r["conversations"] == stored.sample["conversations"]
        assert r["cameras"] == [m["camera"] for m in stored.sample["media"]]
        assert len(r["images"]) == len(stored.sample["media"])
        for image, item in zip(r["images"], stored.sample["media"]):
            assert isinstance(image, Image.Image) and image.size == (item["width"], item["height"])
            want = Image.open(io.BytesIO(store.read(item["sha1"])))
            assert image.convert("RGB").tobytes() == want.convert("RGB").tobytes()
    assert rows[2]["layout"] == "video" and rows[2]["time_offsets_s"] == [-0.5, 0.0]


def test_undecoded_bytes_and_selection(root):
    ds = load(root, datasets=["a"], splits=["train"]).cast_column("images", datasets.List(datasets.Image(decode=False)))
    rows = list(ds)
    assert [r["key"] for r in rows] == ["a-one", "a-text"]
    sample = json.loads(rows[0]["sample"])
    assert [hashlib.sha1(i["bytes"]).hexdigest() for i in rows[0]["images"]] == [m["sha1"] for m in sample["media"]]
    with pytest.raises(UsageError, match="no <dataset>/<split>"):
        load(root, datasets=["absent"])
