"""The leakage audit as people read it: audit.json, a markdown page, a PNG heat map and the
overlap list, plus the command that runs the audit and writes them."""
from __future__ import annotations

import json
from pathlib import Path

from dataengine.audit import AuditConfig, AuditResult, LeakageError, Pair, run_audit, to_json

_CMAP = "OrRd"


def _row_label(summary: dict) -> str:
    tag = " (unseen)" if summary["unseen"] else ""
    return f"{summary['dataset']}/{summary['split']}{tag}"


def _cell(p: Pair) -> str:
    if not p.samples:
        return "-"
    return f"**{p.samples}** ({p.fraction:.0%}; scene {p.scene} / frame {p.frame} / image {p.image})"


def _leak_table(leaks: list[Pair]) -> list[str]:
    lines = ["| evaluation split | training dataset | overlapping samples | share | scene | frame | image |",
             "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {p.eval_dataset}/{p.eval_split} | {p.train_dataset} | {p.samples} of {p.eval_samples} | "
              f"{p.fraction:.1%} | {p.scene} | {p.frame} | {p.image} |" for p in leaks]
    return lines + [""]


def _matrix_table(result: AuditResult) -> list[str]:
    train = [t["dataset"] for t in result.train_datasets]
    cells = {(p.eval_dataset, p.eval_split, p.train_dataset): p for p in result.pairs}
    lines = ["| evaluation split | samples | overlapping any training | " + " | ".join(train) + " |",
             "|---|---:|---:|" + "---|" * len(train)]
    for e in result.eval_splits:
        row = [_cell(cells[(e["dataset"], e["split"], t)]) for t in train]
        lines.append(f"| {_row_label(e)} | {e['samples']} | {e['overlapping']} | " + " | ".join(row) + " |")
    return lines + [""]


def markdown(result: AuditResult) -> str:
    leaks = result.leaks()
    present = {e["dataset"] for e in result.eval_splits}
    unseen = sorted(result.unseen)
    lines = ["# Leakage audit", ""]
    if leaks:
        lines += [f"**LEAKAGE**: {len(leaks)} (unseen evaluation split, training dataset) pairs overlap. "
                  f"Worst: {leaks[0].describe()}.", ""]
    else:
        lines += ["**Clean**: no evaluation split of an unseen benchmark shares a scene, a frame or an image "
                  "with any training split.", ""]
    lines += [f"Unseen benchmarks: {', '.join(unseen) or 'none declared'}"
              f" (with an evaluation split here: {', '.join(u for u in unseen if u in present) or 'none'}).",
              "Training datasets: " + (", ".join(f"{t['dataset']} ({t['samples']} samples)"
                                                  for t in result.train_datasets) or "none") + ".", ""]
    if leaks:
        lines += ["## Unseen benchmarks that overlap training data", "", *_leak_table(leaks)]
    lines += ["## Matrix", "",
              "Each cell counts the evaluation samples that share something with that dataset's train split "
              "(a sample counts once), its share of the split, and how many share a scene, a frame, an image "
              "(a sample can share several). `-` is no overlap.", "", *_matrix_table(result),
              "![leakage heat map](audit.png)", "",
              "Every overlapping sample, with what it shares with which training dataset: `overlaps.jsonl`.", ""]
    return "\n".join(lines)


def _annotate(ax, frac, counts, threshold: float = 0.55) -> None:
    for i in range(frac.shape[0]):
        for j in range(frac.shape[1]):
            n = counts[i][j]
            text = f"{n}\n{frac[i, j]:.0%}" if n else "0"
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color="white" if frac[i, j] > threshold else ("#202020" if n else "#a0a0a0"))


def plot_heatmap(result: AuditResult, path: Path) -> None:
    """Rows: evaluation splits; columns: training datasets; colour: share of the evaluation split
    that overlaps; text: overlapping samples and share. Unseen rows are labelled in red and
    their overlapping cells (the audit failures) outlined in light blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    train = [t["dataset"] for t in result.train_datasets]
    rows = result.eval_splits
    cells = {(p.eval_dataset, p.eval_split, p.train_dataset): p for p in result.pairs}
    fig_w, fig_h = max(7.0, 4.0 + 1.25 * len(train)), 2.2 + 0.55 * max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    if not rows or not train:
        ax.axis("off")
        ax.text(0.5, 0.5, "nothing to compare:\n" + ("no val/test split" if not rows else "no train split"),
                ha="center", va="center", fontsize=12)
    else:
        grid = [[cells[(r["dataset"], r["split"], t)] for t in train] for r in rows]
        frac = np.array([[p.fraction for p in row] for row in grid])
        image = ax.imshow(frac, cmap=_CMAP, vmin=0.0, vmax=1.0, aspect="auto")
        _annotate(ax, frac, [[p.samples for p in row] for row in grid])
        for i, row in enumerate(grid):  # outline the cells that fail the audit
            for j, p in enumerate(row):
                if p.unseen and p.samples:
                    ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=3, ec="#00a8f0"))
        ax.set_xticks(range(len(train)), [f"{t['dataset']}\ntrain {t['samples']}" for t in result.train_datasets],
                      rotation=30, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(rows)), [f"{_row_label(r)}  n={r['samples']}" for r in rows])
        for label, r in zip(ax.get_yticklabels(), rows):
            label.set_color("#c00000" if r["unseen"] else "black")
        ax.set_xlabel("training dataset (train split)")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the evaluation split")
    leaks = result.leaks()
    verdict = f"LEAKAGE: {len(leaks)} unseen pair(s) overlap" if leaks else "clean: no unseen benchmark overlaps"
    ax.set_title(f"Evaluation samples sharing a scene, frame or image with a train split\n{verdict}",
                 fontsize=10, color="#c00000" if leaks else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_report(result: AuditResult, out: Path) -> list[Path]:
    """Write audit.json, audit.md, audit.png and overlaps.jsonl under `out`; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "audit.json", out / "audit.md", out / "audit.png", out / "overlaps.jsonl"]
    paths[0].write_text(json.dumps(to_json(result), indent=2, sort_keys=True) + "\n")
    paths[1].write_text(markdown(result))
    plot_heatmap(result, paths[2])
    with open(paths[3], "w") as f:
        for entry in result.overlaps:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
    return paths


def main(cfg: AuditConfig) -> int:
    """The CLI command: audit, write the report, print a summary; raise LeakageError on unseen leakage."""
    result = run_audit(cfg)
    paths = write_report(result, cfg.out_dir())
    overlapping = sum(e["overlapping"] for e in result.eval_splits)
    total = sum(e["samples"] for e in result.eval_splits)
    print(f"audit: {len(result.eval_splits)} evaluation splits x {len(result.train_datasets)} training datasets; "
          f"{overlapping} of {total} evaluation samples overlap training data; report in {paths[1]}")
    leaks = result.leaks()
    if leaks:
        more = f" (and {len(leaks) - 1} more pairs)" if len(leaks) > 1 else ""
        raise LeakageError(f"unseen benchmark leakage: {leaks[0].describe()}{more}; see {paths[1]}")
    return 0
