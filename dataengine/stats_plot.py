"""The dataset card's figure: breakdowns stacked by split, token distributions, quarantine reasons.

Panel heights grow with the number of bars so labels never overlap; long labels wrap;
every bar carries its total; a distribution with few distinct values (visual tokens
usually) is drawn as bars per value instead of a histogram with meaningless bin edges.
"""
from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

from dataengine.cameras import CANONICAL
from dataengine.stats import DatasetStats

SPLIT_COLORS = {"train": "#4472c4", "val": "#ed7d31", "test": "#70ad47"}
_BAR_IN = 0.32      # inches per bar in horizontal bar panels
_DISCRETE = 12      # at most this many distinct values: bars per value, not a histogram


def _stacked_barh(ax, st: DatasetStats, by_split: dict[str, Counter], names: list[str], title: str,
                  xlabel: str) -> None:
    labels = [textwrap.fill(n, 42) for n in names]
    left = [0] * len(names)
    for split in st.splits:
        values = [by_split[split][n] for n in names]
        ax.barh(labels, values, left=left, color=SPLIT_COLORS[split], label=split, height=0.7)
        left = [a + b for a, b in zip(left, values)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total}", va="center", fontsize=8)
    ax.set_ylim(max(len(names), 3) - 0.5, -0.5)  # first name on top; a lone bar stays bar-sized
    ax.set_xlim(0, max(left, default=1) * 1.15 or 1)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=8)


def _distribution(ax, st: DatasetStats, attr: str, title: str, color_note: str) -> None:
    per_split = {s: getattr(st, attr)[s] for s in st.splits if getattr(st, attr)[s]}
    values = sorted({v for vs in per_split.values() for v in vs})
    if not values:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
    elif len(values) <= _DISCRETE:
        bottom = [0] * len(values)
        for split, vs in per_split.items():
            counts = Counter(vs)
            heights = [counts[v] for v in values]
            ax.bar([str(v) for v in values], heights, bottom=bottom, color=SPLIT_COLORS[split], label=split)
            bottom = [a + b for a, b in zip(bottom, heights)]
        ax.tick_params(axis="x", labelrotation=30 if len(values) > 4 else 0, labelsize=8)
        pad = max(0.0, (4 - len(values)) / 2)  # keep one or two bars from filling the panel
        ax.set_xlim(-0.5 - pad, len(values) - 0.5 + pad)
    else:
        ax.hist(list(per_split.values()), bins=min(30, len(values)), stacked=True,
                color=[SPLIT_COLORS[s] for s in per_split], label=list(per_split))
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"tokens per sample ({color_note})")
    ax.set_ylabel("samples")
    ax.yaxis.get_major_locator().set_params(integer=True)


def _quarantine_panel(ax, st: DatasetStats) -> None:
    total = st.total("quarantine")
    if not total:
        ax.axis("off")
        ax.text(0.5, 0.5, "no quarantined records", ha="center", va="center", fontsize=10)
        return
    names = sorted(total, key=lambda c: (-total[c], c))
    _stacked_barh(ax, st, st.quarantine, names, "quarantined records by reason", "records")


def plot_card(st: DatasetStats, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted(st.total("tasks"))
    layouts = sorted(st.total("layouts"))
    cameras = [c for c in CANONICAL if st.total("cameras")[c]]
    n_reasons = len(st.total("quarantine"))
    heights = [max(1.6, 0.9 + _BAR_IN * len(tasks)), max(2.2, 0.9 + _BAR_IN * max(len(layouts), len(cameras))),
               3.0, max(1.0, 0.9 + _BAR_IN * n_reasons) if n_reasons else 0.6]
    fig = plt.figure(figsize=(12, sum(heights) + 0.8), layout="constrained")
    grid = fig.add_gridspec(4, 2, height_ratios=heights)
    _stacked_barh(fig.add_subplot(grid[0, :]), st, st.tasks, tasks, "samples by task", "samples")
    _stacked_barh(fig.add_subplot(grid[1, 0]), st, st.layouts, layouts, "samples by layout", "samples")
    _stacked_barh(fig.add_subplot(grid[1, 1]), st, st.cameras, cameras, "images by camera", "images")
    _distribution(fig.add_subplot(grid[2, 0]), st, "text_tokens", "text tokens (estimated)", "4 chars/token")
    _distribution(fig.add_subplot(grid[2, 1]), st, "visual_tokens", "visual tokens (estimated)", "by layout")
    _quarantine_panel(fig.add_subplot(grid[3, :]), st)
    handles = [plt.Rectangle((0, 0), 1, 1, color=SPLIT_COLORS[s]) for s in st.splits]
    counts = ", ".join(f"{s} {c.samples}" for s, c in st.splits.items())
    fig.legend(handles, list(st.splits), loc="outside upper right", ncols=len(handles), fontsize=9)
    fig.suptitle(f"{st.dataset}: {counts} samples", fontsize=12, x=0.02, ha="left")
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
