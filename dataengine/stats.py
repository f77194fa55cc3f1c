"""`dataengine stats DIR`: a card per dataset (markdown + PNG plots) from manifests and quarantines."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from dataengine.manifest import CARD, QUARANTINE, dataset_splits, read_manifest, read_quarantine


def _percentiles(values: list[int]) -> str:
    if not values:
        return "-"
    s = sorted(values)
    pick = lambda q: s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]  # noqa: E731
    return f"min {s[0]}, median {pick(0.5)}, p90 {pick(0.9)}, max {s[-1]}"


def _table(title: str, counter: Counter) -> list[str]:
    lines = [f"| {title} | samples |", "|---|---:|"]
    lines += [f"| {name} | {n} |" for name, n in sorted(counter.items())]
    return lines + [""]


def dataset_stats(root: Path, dataset: str, splits: list[str]) -> dict:
    out: dict = {"dataset": dataset, "splits": {}, "tasks": Counter(), "layouts": Counter(),
                 "cameras": Counter(), "text_tokens": [], "visual_tokens": [], "quarantine": Counter()}
    for split in splits:
        split_dir = root / dataset / split
        rows = read_manifest(split_dir / "manifest.parquet").to_pylist()
        quarantine = read_quarantine(split_dir / QUARANTINE)
        card = json.loads((split_dir / CARD).read_text())
        out["splits"][split] = {"samples": len(rows), "quarantined": len(quarantine),
                                "shards": card["counts"]["shards"], "bytes": card["counts"]["bytes"]}
        for row in rows:
            out["tasks"][row["task"]] += 1
            out["layouts"][row["layout"]] += 1
            out["cameras"].update(row["cameras"])
            out["text_tokens"].append(row["text_tokens"])
            out["visual_tokens"].append(row["visual_tokens"])
        out["quarantine"].update(q["reason"].split(":")[0] for q in quarantine)
    return out


def _markdown(st: dict, plot_name: str) -> str:
    lines = [f"# Dataset card: {st['dataset']}", "", "| split | samples | quarantined | shards | MB |",
             "|---|---:|---:|---:|---:|"]
    for split, c in st["splits"].items():
        lines.append(f"| {split} | {c['samples']} | {c['quarantined']} | {c['shards']} | {c['bytes'] / 1e6:.1f} |")
    lines += ["", *_table("task", st["tasks"]), *_table("layout", st["layouts"]),
              *_table("camera (images)", st["cameras"]),
              f"Text tokens (estimated): {_percentiles(st['text_tokens'])}", "",
              f"Visual tokens (estimated): {_percentiles(st['visual_tokens'])}", ""]
    if st["quarantine"]:
        lines += _table("quarantine reason", st["quarantine"])
    else:
        lines += ["No quarantined records.", ""]
    lines += [f"![distributions]({plot_name})", ""]
    return "\n".join(lines)


def _plot(st: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    axes[0, 0].hist(st["text_tokens"], bins=30, color="#4472c4")
    axes[0, 0].set(title="text tokens per sample (est.)", xlabel="tokens", ylabel="samples")
    axes[0, 1].hist(st["visual_tokens"], bins=30, color="#ed7d31")
    axes[0, 1].set(title="visual tokens per sample (est.)", xlabel="tokens", ylabel="samples")
    for ax, key, title in ((axes[1, 0], "tasks", "samples by task"), (axes[1, 1], "cameras", "images by camera")):
        names = sorted(st[key])
        ax.barh(names, [st[key][n] for n in names], color="#70ad47")
        ax.set(title=title, xlabel="count")
    fig.suptitle(f"{st['dataset']}: " + ", ".join(f"{s} {c['samples']}" for s, c in st["splits"].items()))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_cards(root: Path) -> list[Path]:
    """Write `<root>/<dataset>/CARD.md` and `card.png` for every dataset; returns the markdown paths."""
    root = Path(root)
    grouped: dict[str, list[str]] = {}
    for dataset, split in dataset_splits(root):
        grouped.setdefault(dataset, []).append(split)
    written = []
    for dataset, splits in grouped.items():
        st = dataset_stats(root, dataset, splits)
        _plot(st, root / dataset / "card.png")
        md = root / dataset / "CARD.md"
        md.write_text(_markdown(st, "card.png"))
        written.append(md)
    return written
