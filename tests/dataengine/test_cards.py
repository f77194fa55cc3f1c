"""Dataset cards: the markdown's counts are the manifests' counts; quarantine reasons are grouped and counted."""
from collections import Counter

import pyarrow.parquet as pq
import pytest
from PIL import Image
from synthetic_shards import jpeg, record, write_split

from dataengine.cards import write_cards
from dataengine.cli import main
from dataengine.converter import Quarantined
from dataengine.stats import CONTEXT_TOKENS, INDEX, reason_category

SIX = ["front", "front_left", "front_right", "back", "back_left", "back_right"]
QUARANTINE = {
    "train": ["missing image samples/CAM_FRONT/a.jpg", "missing image samples/CAM_BACK/b.jpg",
              "truncated JPEG (no end-of-image marker)", "not the CODA-LM per-image format: key 'x' missing"],
    "val": ["missing image samples/CAM_FRONT/c.jpg"],
}


def _records(split: str, n: int, seed: int) -> list:
    out = []
    for i in range(n):
        k = seed + i
        if i % 3 == 0:
            out.append(record("demo", split, f"{split}{i}", "demo:s", f"demo:f{k}", [jpeg(k)], task="vqa.perception"))
        elif i % 3 == 1:
            out.append(record("demo", split, f"{split}{i}", "demo:s", f"demo:f{k}",
                              [jpeg(k + 1000 * j) for j in range(6)], layout="multi_view", cameras=SIX,
                              task="planning.trajectory"))
        else:
            out.append(record("demo", split, f"{split}{i}", "demo:s", f"demo:f{k}",
                              [jpeg(k + 1000 * j) for j in range(3)], layout="video", offsets=[0.0, -0.5, -1.0], task="caption.action",
                              turns=["q " * (i * 40), "a " * i]))
    return out


@pytest.fixture()
def root(tmp_path):
    for split, n, seed in (("train", 10, 0), ("val", 5, 100)):
        quarantined = [Quarantined(f"{split}-bad{i}", r) for i, r in enumerate(QUARANTINE[split])]
        write_split(tmp_path, "demo", split, _records(split, n, seed) + quarantined)
    write_split(tmp_path, "other", "test", [record("other", "test", "t", "o:s", "o:f", [jpeg(7)])])
    return tmp_path


def md_table(text: str, heading: str) -> dict[str, dict[str, str]]:
    """The markdown table under `## heading`, as {first cell: {column: cell}}."""
    block = text.split(f"## {heading}\n\n", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.splitlines()]
    return {r[0]: dict(zip(rows[0][1:], r[1:])) for r in rows[2:]}


def manifest(root, dataset, split) -> dict:
    return pq.read_table(root / dataset / split / "manifest.parquet").to_pydict()


def test_card_counts_match_the_manifests(root):
    write_cards(root)
    card = (root / "demo" / "CARD.md").read_text()
    for heading, column, flatten in (("Samples by task", "task", False), ("Samples by layout", "layout", False),
                                     ("Images by camera", "cameras", True)):
        table = md_table(card, heading)
        total = Counter()
        for split in ("train", "val"):
            values = manifest(root, "demo", split)[column]
            counts = Counter(v for vs in values for v in vs) if flatten else Counter(values)
            total += counts
            assert {k: int(row[split]) for k, row in table.items() if int(row[split])} == dict(counts), heading
        assert {k: int(row["total"]) for k, row in table.items()} == dict(total), heading
    splits = md_table(card, "Splits")
    assert [(s, splits[s]["samples"], splits[s]["quarantined"], splits[s]["records in"]) for s in splits] == [
        ("train", "10", "4", "14"), ("val", "5", "1", "6"), ("total", "15", "5", "20")]
    assert splits["train"]["images"] == str(sum(manifest(root, "demo", "train")["n_media"]))


def test_quarantine_reasons_grouped_and_counted(root):
    write_cards(root)
    table = md_table((root / "demo" / "CARD.md").read_text(), "Quarantined records by reason")
    assert list(table) == ["missing image …", "not the CODA-LM per-image format", "truncated JPEG"]
    assert [(r["train"], r["val"], r["total"]) for r in table.values()] == [("2", "1", "3"), ("1", "0", "1"),
                                                                           ("1", "0", "1")]
    assert table["truncated JPEG"]["first record: full reason"] == \
        "train-bad2: truncated JPEG (no end-of-image marker)"
    assert "No quarantined records." in (root / "other" / "CARD.md").read_text()


@pytest.mark.parametrize("reason, category", [
    ("missing image samples/CAM_FRONT/n015-2018.jpg", "missing image …"),
    ("path '../../etc/passwd' escapes the dataset root", "path … escapes the dataset root"),
    ("timestamp 1533151603547590 is not after the previous frame's 1533151603047590",
     "timestamp … is not after the previous frame's …"),
    ("unreadable JSON (Expecting value: line 1 column 1 (char 0))", "unreadable JSON"),
    ("not the CODA-LM per-image format: missing 'general_perception'", "not the CODA-LM per-image format"),
    ("", "(no reason given)"),
])
def test_reason_category(reason, category):
    assert reason_category(reason) == category


def test_token_table_and_context_overflow(tmp_path):
    long_text = "x" * 4 * CONTEXT_TOKENS  # text alone exceeds the context
    write_split(tmp_path, "long", "train", [
        record("long", "train", "a", "l:s", "l:a", [jpeg(1)], turns=[long_text, "ok"]),
        record("long", "train", "b", "l:s", "l:b", [jpeg(2)])])
    write_cards(tmp_path)
    card = (tmp_path / "long" / "CARD.md").read_text()
    text = manifest(tmp_path, "long", "train")["text_tokens"]
    assert f"| train | text | {min(text)} |" in card and f"| {max(text)} |" in card
    assert f"Samples over the {CONTEXT_TOKENS}-token training context: 1 (train 1)." in card


def test_index_lists_every_dataset(root):
    write_cards(root)
    index = (root / INDEX).read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in index.splitlines() if line.startswith("| ") and "[CARD]" in line}
    assert set(rows) == {"demo", "other"}
    assert rows["demo"][:4] == ["10", "5", "-", "5"] and rows["other"][:4] == ["-", "-", "1", "0"]
    assert rows["demo"][-1] == "[CARD](demo/CARD.md)" and (root / "demo" / "CARD.md").exists()


def test_card_png_renders_and_grows_with_tasks(root, tmp_path):
    write_cards(root)
    small = Image.open(root / "other" / "card.png")
    big = Image.open(root / "demo" / "card.png").convert("RGB")
    assert big.height > small.height and big.width >= 900
    colors = dict((c, n) for n, c in big.getcolors(maxcolors=1 << 20))
    assert colors.get((0x44, 0x72, 0xc4), 0) > 1000 and colors.get((0xed, 0x7d, 0x31), 0) > 1000  # train, val bars


def test_cards_are_deterministic(root):
    write_cards(root)
    first = {p: p.read_bytes() for p in sorted(root.rglob("*.md")) + sorted(root.rglob("card.png"))}
    write_cards(root)
    assert first == {p: p.read_bytes() for p in first}


def test_stats_cli_empty_root_exits_2(tmp_path, capsys):
    assert main(["stats", str(tmp_path)]) == 2
    assert "no <dataset>/<split>/manifest.parquet" in capsys.readouterr().err
    assert not (tmp_path / INDEX).exists()


def test_empty_manifest_round_trips(tmp_path):
    """A split whose every record was quarantined still gets a manifest with the schema."""
    from dataengine.manifest import manifest_schema, read_manifest, write_manifest

    write_manifest([], tmp_path / "m.parquet")
    table = read_manifest(tmp_path / "m.parquet")
    assert table.num_rows == 0 and table.schema == manifest_schema()
