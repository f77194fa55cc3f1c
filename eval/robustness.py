"""Robustness: how a benchmark's tasks hold up from clean images to corrupted ones and to none.

A benchmark scored per setting (DriveBench: `<setting>.<task>.<metric>` for clean, each
corruption and text_only) gets two gaps per task, on the task's main metric (MCQ:
accuracy; VQA: the judge's score when computed, else ROUGE-L): `gap.corrupted` = the mean
over the corruption settings minus clean, `gap.text_only` = text_only minus clean. Negative
is worse. A model that answers as well without images as with them reads its answers off
priors, which is the question DriveBench asks (Xie et al., ICCV 2025).

`plot` draws the report's `robustness.png`: per variant, a grid of tasks x settings whose
cell colour is the change from clean (red = worse) and whose text is the value, and beside
it the two gaps per task and variant as bars.
"""
from __future__ import annotations

import math
from pathlib import Path

TASKS = ("perception_mcq", "perception_vqa", "prediction_vqa", "planning_vqa", "behavior_mcq")
CLEAN, TEXT_ONLY = "clean", "text_only"


def main_metric(metrics: dict, task: str, settings: list[str]) -> str:
    """accuracy for MCQ; for VQA the judge's score if every setting has it, else ROUGE-L."""
    if task.endswith("_mcq"):
        return "accuracy"
    judged = all(metrics.get(f"{s}.{task}.gpt", {}).get("value") is not None for s in settings)
    return "gpt" if judged else "rouge_l"


def _v(metrics: dict, key: str) -> float | None:
    return metrics.get(key, {}).get("value")


def gaps(metrics: dict, settings: list[str]) -> dict[str, dict]:
    """`gap.corrupted.<task>.<metric>` and `gap.text_only.<task>.<metric>` entries (value None
    with a note when clean or the other side is missing)."""
    from eval.metrics.core import missing, value

    out = {}
    corrupted = [s for s in settings if s not in (CLEAN, TEXT_ONLY)]
    for task in TASKS:
        metric = main_metric(metrics, task, settings)
        clean = _v(metrics, f"{CLEAN}.{task}.{metric}")
        sides = {"corrupted": [_v(metrics, f"{s}.{task}.{metric}") for s in corrupted],
                 "text_only": [_v(metrics, f"{TEXT_ONLY}.{task}.{metric}")] if TEXT_ONLY in settings else []}
        for name, vals in sides.items():
            key = f"gap.{name}.{task}.{metric}"
            vals = [v for v in vals if v is not None]
            if clean is None or not vals:
                out[key] = missing(f"needs the clean and the {name.replace('_', '-')} {metric}")
                continue
            note = f"mean over {len(vals)} corruption settings minus clean" if name == "corrupted" else \
                "text-only minus clean"
            out[key] = value(sum(vals) / len(vals) - clean, len(vals), note=note + "; negative = worse")
    return out


def table(metrics: dict) -> tuple[list[str], list[str], dict]:
    """(settings in order: clean, corruptions, text_only; tasks present; {(task, setting): (metric, value)})."""
    settings = sorted({k.split(".", 1)[0] for k in metrics if k.count(".") == 2 and not k.startswith("gap.")},
                      key=lambda s: (s != CLEAN, s == TEXT_ONLY, s))
    cells = {}
    for task in TASKS:
        metric = main_metric(metrics, task, settings)
        for s in settings:
            cells[(task, s)] = (metric, _v(metrics, f"{s}.{task}.{metric}"))
    tasks = [t for t in TASKS if any(cells[(t, s)][1] is not None for s in settings)]
    return settings, tasks, cells


def robust_benchmarks(report: dict) -> list[dict]:
    """The report's benchmarks scored per setting (they carry gap entries)."""
    return [b for b in report["benchmarks"]
            if any(k.startswith("gap.") for m in b["metrics"].values() for k in m)]


def _change(a: float, b: float) -> float:
    return 0.0 if a == b else 200.0 * (b - a) / (abs(a) + abs(b))


def plot(report: dict, path: Path) -> Path | None:
    """robustness.png for the first benchmark scored per setting; None when there is none."""
    benches = robust_benchmarks(report)
    if not benches:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    bench, variants = benches[0], report["variants"]
    rows = [(v, *table(bench["metrics"][v])) for v in variants if bench["metrics"][v]]
    if not rows:
        return None
    width = max(len(r[1]) for r in rows)
    every_gap = [e.get("value") for v in variants for k, e in bench["metrics"][v].items() if k.startswith("gap.")]
    lim = max([abs(g) for g in every_gap if g is not None] + [0.05]) * 1.6  # one scale: variants compare
    fig, axes = plt.subplots(len(rows), 2, figsize=(1.0 * width + 8.5, 2.6 * len(rows) + 0.8), squeeze=False,
                             gridspec_kw={"width_ratios": [max(width, 3), 4]})
    for (variant, settings, tasks, cells), (ax, bar_ax) in zip(rows, axes):
        grid = np.full((len(tasks), len(settings)), np.nan)
        for i, t in enumerate(tasks):
            clean = cells[(t, CLEAN)][1] if (t, CLEAN) in cells else None
            for j, s in enumerate(settings):
                val = cells[(t, s)][1]
                if val is not None and clean is not None:
                    grid[i, j] = _change(clean, val)
                dark = not np.isnan(grid[i, j]) and abs(grid[i, j]) > 60
                ax.text(j, i, "n/c" if val is None else f"{val:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
        ax.imshow(grid, cmap="RdBu", vmin=-100, vmax=100, aspect="auto")
        ax.set_xticks(range(len(settings)), [s.replace("_", "-") for s in settings], rotation=35, ha="right",
                      fontsize=8)
        ax.set_yticks(range(len(tasks)), [f"{t.replace('_', ' ')} ({cells[(t, settings[0])][0]})" for t in tasks],
                      fontsize=8)
        ax.set_title(f"{variant}: value per setting (colour: change from clean, red = worse)", fontsize=9)
        gap_c = [bench["metrics"][variant].get(f"gap.corrupted.{t}.{cells[(t, settings[0])][0]}", {}).get("value")
                 for t in tasks]
        gap_t = [bench["metrics"][variant].get(f"gap.text_only.{t}.{cells[(t, settings[0])][0]}", {}).get("value")
                 for t in tasks]
        y = np.arange(len(tasks))
        bar_ax.barh(y - 0.2, [0 if g is None else g for g in gap_c], height=0.4, color="#e1812c",
                    label="corrupted − clean")
        bar_ax.barh(y + 0.2, [0 if g is None else g for g in gap_t], height=0.4, color="#7f7f7f",
                    label="text-only − clean")
        for i, (gc, gt) in enumerate(zip(gap_c, gap_t)):
            for off, g in ((-0.2, gc), (0.2, gt)):
                bar_ax.text(0 if g is None else g, i + off, " n/c " if g is None else f" {g:+.2f} ", va="center",
                            ha="left" if (g or 0) >= 0 else "right", fontsize=7)
        bar_ax.set_xlim(-lim, lim)
        bar_ax.axvline(0, color="black", linewidth=0.8)
        bar_ax.set_yticks(y, [""] * len(tasks))
        bar_ax.invert_yaxis()
        bar_ax.set_title("gaps (negative = worse than clean)", fontsize=9)
        bar_ax.legend(fontsize=7, loc="lower right")
        bar_ax.tick_params(axis="x", labelsize=7)
    contaminated = " (CONTAMINATED)" if bench["contamination"].get("contaminated") else ""
    fig.suptitle(f"{bench['benchmark']}{contaminated}: does the model look at the images? "
                 f"clean vs {max(0, len(rows[0][1]) - 2)} corruptions vs text only", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def markdown_rows(report: dict) -> list[str]:
    """A gap table per per-setting benchmark, for report.md."""
    lines = []
    for b in robust_benchmarks(report):
        vs = report["variants"]
        keys = sorted({k for v in vs for k in b["metrics"][v] if k.startswith("gap.")})
        lines += [f"### Robustness: {b['benchmark']}", "", "| gap | " + " | ".join(vs) + " |",
                  "|---|" + "---|" * len(vs)]
        for k in keys:
            vals = [b["metrics"][v].get(k, {}).get("value") for v in vs]
            shown = ["not computed" if x is None or math.isnan(x) else f"{x:+.4g}" for x in vals]
            lines.append(f"| {k} | " + " | ".join(shown) + " |")
        lines.append("")
    return lines
