"""Dataset cards on disk: `CARD.md` and `card.png` per dataset and the `CARDS.md` index."""
from __future__ import annotations

from pathlib import Path

from dataengine.errors import UsageError
from dataengine.manifest import MANIFEST, dataset_splits
from dataengine.stats import INDEX, card_markdown, dataset_stats, index_markdown
from dataengine.stats_plot import plot_card
from dataengine.storage import storage_figures, storage_markdown


def write_cards(root: Path) -> list[Path]:
    """Write `<root>/<dataset>/CARD.md` and `card.png` for every dataset and the index
    `<root>/CARDS.md`; returns the per-dataset markdown paths."""
    root = Path(root)
    if not root.is_dir() or not dataset_splits(root):
        raise UsageError(f"{root}: no <dataset>/<split>/{MANIFEST} found; convert a dataset first")
    grouped: dict[str, list[str]] = {}
    for dataset, split in dataset_splits(root):
        grouped.setdefault(dataset, []).append(split)
    written, all_stats = [], []
    for dataset, splits in grouped.items():
        st = dataset_stats(root, dataset, splits)
        plot_card(st, root / dataset / "card.png")
        md = root / dataset / "CARD.md"
        md.write_text(card_markdown(st, "card.png"))
        written.append(md)
        all_stats.append(st)
    (root / INDEX).write_text(index_markdown(all_stats) + storage_markdown(storage_figures(root)))
    return written
