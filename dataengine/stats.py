"""`dataengine stats DIR`: a card per dataset (markdown + PNG plots) and an index page.

Everything comes from the manifests, quarantines and cards the conversion job wrote, so
cards cost a manifest read, never a shard scan. Per dataset `<root>/<dataset>/CARD.md`
and `card.png`: samples by split, task, layout and camera; estimated text and visual
token distributions (dataengine/tokens.py); quarantined records by reason. The index
`<root>/CARDS.md` lists every dataset with its counts and links its card.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dataengine.cameras import CANONICAL
from dataengine.manifest import CARD, MANIFEST, QUARANTINE, read_manifest, read_quarantine, reason_category
from dataengine.schema import SPLITS

INDEX = "CARDS.md"
# RoboTron-Drive trains with an 8,192-token sequence (reference training.md 1.2); the card counts
# the samples whose estimated text + visual tokens exceed it, which a curriculum would drop.
CONTEXT_TOKENS = 8192


@dataclass
class SplitCounts:
    samples: int
    quarantined: int
    images: int
    shards: int
    bytes: int
    created_by: str


@dataclass
class DatasetStats:
    """One dataset's numbers, every breakdown kept per split (splits in train, val, test order)."""

    dataset: str
    converter: str = ""
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    tasks: dict[str, Counter] = field(default_factory=dict)
    layouts: dict[str, Counter] = field(default_factory=dict)
    cameras: dict[str, Counter] = field(default_factory=dict)        # images per canonical camera
    text_tokens: dict[str, list[int]] = field(default_factory=dict)
    visual_tokens: dict[str, list[int]] = field(default_factory=dict)
    quarantine: dict[str, Counter] = field(default_factory=dict)     # reason category counts
    examples: dict[str, dict] = field(default_factory=dict)          # first quarantine entry per category

    def total(self, attr: str) -> Counter:
        return sum(getattr(self, attr).values(), Counter())

    def tokens(self, attr: str) -> list[int]:
        return [v for split in self.splits for v in getattr(self, attr)[split]]


def _add_split(st: DatasetStats, split_dir: Path, split: str) -> None:
    cols = read_manifest(split_dir / MANIFEST).select(
        ["task", "layout", "cameras", "text_tokens", "visual_tokens"]).to_pydict()
    quarantine = read_quarantine(split_dir / QUARANTINE)
    card = json.loads((split_dir / CARD).read_text())
    counts = card.get("counts", {})
    cameras = Counter(c for cams in cols["cameras"] for c in cams)
    st.converter = st.converter or f"{card['converter']['name']} v{card['converter'].get('version', '?')}"
    st.splits[split] = SplitCounts(len(cols["task"]), len(quarantine), sum(cameras.values()),
                                   counts.get("shards", 0), counts.get("bytes", 0), card.get("created_by", ""))
    st.tasks[split], st.layouts[split], st.cameras[split] = Counter(cols["task"]), Counter(cols["layout"]), cameras
    st.text_tokens[split], st.visual_tokens[split] = cols["text_tokens"], cols["visual_tokens"]
    st.quarantine[split] = Counter()
    for entry in quarantine:
        category = reason_category(entry["reason"])
        st.quarantine[split][category] += 1
        st.examples.setdefault(category, entry)


def dataset_stats(root: Path, dataset: str, splits: list[str]) -> DatasetStats:
    st = DatasetStats(dataset)
    for split in sorted(splits, key=SPLITS.index):
        _add_split(st, Path(root) / dataset / split, split)
    return st


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an already sorted list."""
    return sorted_values[min(len(sorted_values) - 1, int(q * (len(sorted_values) - 1) + 0.5))]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _breakdown(title: str, st: DatasetStats, attr: str, order: list[str] | None = None) -> list[str]:
    """A table with one row per name, one column per split, and a total column."""
    splits = list(st.splits)
    by_split = getattr(st, attr)
    total = st.total(attr)
    names = order if order is not None else sorted(total)
    lines = [f"| {title} | " + " | ".join(splits) + " | total |", "|---|" + "---:|" * (len(splits) + 1)]
    for name in names:
        if total[name]:
            cells = " | ".join(str(by_split[s][name]) for s in splits)
            lines.append(f"| {_cell(name)} | {cells} | {total[name]} |")
    return lines + [""]


def _split_table(st: DatasetStats) -> list[str]:
    lines = ["| split | records in | samples | quarantined | images | shards | MB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    counts = list(st.splits.values())
    total = SplitCounts(sum(c.samples for c in counts), sum(c.quarantined for c in counts),
                        sum(c.images for c in counts), sum(c.shards for c in counts), sum(c.bytes for c in counts), "")
    for split, c in [*st.splits.items(), ("total", total)]:
        lines.append(f"| {split} | {c.samples + c.quarantined} | {c.samples} | {c.quarantined} | {c.images} | "
                     f"{c.shards} | {c.bytes / 1e6:.1f} |")
    return lines + [""]


def _token_table(st: DatasetStats) -> list[str]:
    lines = ["| split | tokens | min | p10 | median | mean | p90 | max |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for split in st.splits:
        text, visual = st.text_tokens[split], st.visual_tokens[split]
        for name, values in (("text", text), ("visual", visual), ("total", [a + b for a, b in zip(text, visual)])):
            if values:
                s = sorted(values)
                lines.append(f"| {split} | {name} | {s[0]} | {percentile(s, 0.1)} | {percentile(s, 0.5)} | "
                             f"{sum(s) / len(s):.0f} | {percentile(s, 0.9)} | {s[-1]} |")
    over = {s: sum(a + b > CONTEXT_TOKENS for a, b in zip(st.text_tokens[s], st.visual_tokens[s])) for s in st.splits}
    detail = ", ".join(f"{s} {n}" for s, n in over.items())
    summary = f"Samples over the {CONTEXT_TOKENS}-token training context: {sum(over.values())} ({detail})."
    return lines + ["", summary, ""]


def _quarantine_table(st: DatasetStats) -> list[str]:
    """Reason categories, most frequent first, with counts per split and one full example."""
    total = st.total("quarantine")
    if not total:
        return ["No quarantined records.", ""]
    splits = list(st.splits)
    lines = ["| reason | " + " | ".join(splits) + " | total | first record: full reason |",
             "|---|" + "---:|" * (len(splits) + 1) + "---|"]
    for category in sorted(total, key=lambda c: (-total[c], c)):
        ex = st.examples[category]
        reason = ex["reason"] if len(ex["reason"]) <= 160 else ex["reason"][:157] + "..."
        counts = " | ".join(str(st.quarantine[s][category]) for s in splits)
        lines.append(f"| {_cell(category)} | {counts} | {total[category]} | "
                     f"{_cell(ex['record_id'])}: {_cell(reason)} |")
    return lines + ["", "Reasons are grouped by the text before the first `:` or `(`, with paths, ids and quoted "
                        "values replaced by `…`; every record is in the split's `quarantine.jsonl`.", ""]


def card_markdown(st: DatasetStats, plot_name: str = "card.png") -> str:
    total, quarantined = sum(c.samples for c in st.splits.values()), sum(c.quarantined for c in st.splits.values())
    per_split = ", ".join(f"{s} {c.samples}" for s, c in st.splits.items())
    lines = [f"# Dataset card: {st.dataset}", "",
             f"Converter `{st.converter}`. {total} samples ({per_split}); {quarantined} of "
             f"{total + quarantined} source records quarantined.", "",
             "## Splits", "", *_split_table(st),
             "## Samples by task", "", *_breakdown("task", st, "tasks"),
             "## Samples by layout", "", *_breakdown("layout", st, "layouts"),
             "## Images by camera", "", *_breakdown("camera", st, "cameras", list(CANONICAL)),
             "## Tokens per sample (estimated)", "",
             "Text: 4 characters per token; visual: from the layout and image count "
             "(`dataengine/tokens.py`); the training processor computes the exact numbers.", "",
             *_token_table(st),
             "## Quarantined records by reason", "", *_quarantine_table(st),
             f"![{st.dataset}: samples by task, layout and camera; token distributions; quarantine]({plot_name})", ""]
    made = [f"- {s}: `{_cell(c.created_by)}`" for s, c in st.splits.items() if c.created_by]
    if made:
        lines += ["## Provenance", "", *made, ""]
    return "\n".join(lines)


def index_markdown(stats: list[DatasetStats]) -> str:
    """`CARDS.md`: one row per dataset, linking its card."""
    lines = ["# Dataset cards", "", f"{len(stats)} datasets. Counts are samples; details in each card.", "",
             "| dataset | train | val | test | quarantined | tasks | layouts | cameras | median tokens | card |",
             "|---|---:|---:|---:|---:|---|---|---|---:|---|"]
    for st in stats:
        n = [str(st.splits[s].samples) if s in st.splits else "-" for s in SPLITS]
        q = sum(c.quarantined for c in st.splits.values())
        cams = [c for c in CANONICAL if st.total("cameras")[c]]
        totals = sorted(a + b for a, b in zip(st.tokens("text_tokens"), st.tokens("visual_tokens")))
        median = percentile(totals, 0.5) if totals else 0
        lines.append(f"| {st.dataset} | " + " | ".join(n) + f" | {q} | {len(st.total('tasks'))} | "
                     f"{', '.join(sorted(st.total('layouts')))} | {', '.join(cams)} | {median} | "
                     f"[CARD]({st.dataset}/CARD.md) |")
    return "\n".join(lines) + "\n"
