"""`reports/demo/index.html`: one page linking what `make demo` produced.

Dataset cards, the leakage audit, the curriculum plan, training curves (read from the run's
TensorBoard events) and the evaluation report, plus one sample as the model sees it
(prompt and contact sheet). Files are copied beside the page so the folder is self-contained.
"""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from dataengine.manifest import CARD, dataset_splits


def _datasets(shards: Path, report: Path) -> str:
    rows, cards = [], []
    for dataset, split in dataset_splits(shards):
        c = json.loads((shards / dataset / split / CARD).read_text())["counts"]
        rows.append(f"<tr><td>{dataset}</td><td>{split}</td><td>{c['records_in']}</td><td>{c['samples']}</td>"
                    f"<td>{c['quarantined']}</td><td>{c['shards']}</td></tr>")
    for card in sorted(shards.glob("*/card.png")):
        name = card.parent.name
        shutil.copy(card, report / "cards" / f"{name}.png")
        shutil.copy(card.parent / "CARD.md", report / "cards" / f"{name}.md")
        cards.append(f'<figure><a href="cards/{name}.md"><img src="cards/{name}.png" width="310"></a>'
                     f"<figcaption>{name}</figcaption></figure>")
    return ("<table><tr><th>dataset</th><th>split</th><th>records in</th><th>samples</th><th>quarantined</th>"
            "<th>shards</th></tr>" + "".join(rows) + "</table><div class=grid>" + "".join(cards) + "</div>")


def _audit(shards: Path, report: Path) -> str:
    audit = shards / "audit"
    for name in ("audit.png", "audit.md", "audit.json"):
        shutil.copy(audit / name, report / "audit" / name)
    data = json.loads((audit / "audit.json").read_text())
    verdict = ("clean: no unseen benchmark shares a scene, frame or image with training data" if data["clean"]
               else f"{len(data['unseen_leaks'])} unseen benchmark/train pairs overlap (marked contaminated)")
    return (f'<p><b>{html.escape(verdict)}</b> &middot; <a href="audit/audit.md">audit.md</a> &middot; '
            f'<a href="audit/audit.json">audit.json</a></p><img src="audit/audit.png" width="900">')


def _training_curves(run: Path, path: Path) -> None:
    """Loss and learning-rate curves from the run's TensorBoard events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    loss_tags = [t for t in tags if t.startswith("loss")]
    lr_tags = [t for t in tags if t.startswith("lr")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, chosen, title in ((axes[0], loss_tags, "training loss"), (axes[1], lr_tags, "learning rate")):
        for tag in chosen:
            events = acc.Scalars(tag)
            ax.plot([e.step for e in events], [e.value for e in events], label=tag, marker=".")
        ax.set(title=title, xlabel="optimizer step")
        if chosen:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _stage_losses(run: Path, path: Path) -> bool:
    """Train and validation loss per stage, from the run's metrics.jsonl (one panel a stage)."""
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    stages = sorted({(r["stage"], r["stage_name"]) for r in rows})
    fig, axes = plt.subplots(1, len(stages), figsize=(6 * len(stages), 4), squeeze=False)
    for ax, (index, name) in zip(axes[0], stages):
        mine = [r for r in rows if r["stage"] == index]
        train = [(r["global_step"], r["train/loss"]) for r in mine if "train/loss" in r]
        val = [(r["global_step"], r["val/loss"]) for r in mine if "val/loss" in r]
        for points, label, marker in ((train, "train", "."), (val, "validation", "o")):
            if points:
                ax.plot(*zip(*points), label=label, marker=marker)
        ax.set(title=f"stage {index + 1}: {name}", xlabel="optimizer step", ylabel="loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _evaluation(out: Path, report: Path) -> str:
    parts = []
    for name in ("report.html", "report.md", "report.json", "groups.png", "comparison.png"):
        if (out / "eval" / name).exists():
            shutil.copy(out / "eval" / name, report / "eval" / name)
    parts.append(_verdicts(out / "eval" / "report.json"))
    parts.append('<p><a href="eval/report.html">full evaluation report</a> &middot; '
                 '<a href="eval/report.md">report.md</a> &middot; <a href="eval/report.json">report.json</a></p>')
    for name in ("groups.png", "comparison.png"):
        if (report / "eval" / name).exists():
            parts.append(f'<img src="eval/{name}" width="900">')
    return "".join(parts)


def _verdicts(path: Path) -> str:
    """Per seen and unseen benchmark: zero-shot vs fine-tuned, the difference, its direction
    and whether fine-tuning improved it (the evaluation report's own section, from report.json)."""
    from eval.report import html_verdict

    if not path.is_file():
        return "<p><b>no evaluation report</b></p>"
    return html_verdict(json.loads(path.read_text()))


def loss_summary(run: Path) -> str:
    """The run's training loss at the first step, at the last, and over the last five steps
    (one batch is noisy), from metrics.jsonl; "" without two steps."""
    metrics = run / "metrics.jsonl"
    rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()] if metrics.is_file() else []
    train = [r["train/loss"] for r in rows if "train/loss" in r]
    if len(train) < 2:
        return ""
    tail = train[-5:]
    mean = sum(tail) / len(tail)
    return (f"training loss over the run ({len(train)} optimizer steps): {train[0]:.3g} at the first step, "
            f"{train[-1]:.3g} at the last, {mean:.3g} over the last {len(tail)}: {100 * mean / train[0]:.0f}% "
            "of the start")


def verdict_lines(eval_dir: Path) -> list[str]:
    """The evaluation's per-group sentences and verdict table as text lines (for the terminal)."""
    from eval import verdict

    path = eval_dir / "report.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    head, body = verdict.table_rows(data)
    if not body:
        return []
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *body]]
    return verdict.summary(data) + table


def _sample(shards: Path, report: Path) -> str:
    from dataengine.reader import DatasetReader
    from dataengine.show import show

    # a planning sample with a past trajectory (the split also holds agent-motion samples)
    planning = [s.key for s in DatasetReader(shards, "nuscenes", "train") if s.sample["task"] == "planning.trajectory"]
    key = planning[5]
    text = show(shards, key, "robotron", report / "sample.png")
    return f"<p>key <code>{key}</code></p><pre>{html.escape(text)}</pre><img src=\"sample.png\" width=\"900\">"


def write_report(demo: Path, report: Path) -> Path:
    demo, report = Path(demo), Path(report)
    if report.exists():
        shutil.rmtree(report)
    for sub in ("cards", "audit", "eval"):
        (report / sub).mkdir(parents=True)
    shards = demo / "shards"
    _training_curves(demo / "run", report / "training.png")
    per_stage = ('<img src="stage_losses.png" width="900">'
                 if _stage_losses(demo / "run", report / "stage_losses.png") else "")
    shutil.copy(demo / "plan.txt", report / "plan.txt")
    sections = [
        ("Datasets", "Every source's fixture, converted and validated; cards from the manifests.",
         _datasets(shards, report)),
        ("One sample, as the model sees it", "The nuScenes planning prompt in the default (RoboTron-Drive) style.",
         _sample(shards, report)),
        ("Leakage audit", "Evaluation splits against every training split: shared scenes, frames, images.",
         _audit(shards, report)),
        ("Curriculum plan", "curricula/demo.yaml planned against these shards.",
         f'<pre>{html.escape((demo / "plan.txt").read_text())}</pre>'),
        ("Training", "The tiny random model from `python -m vlm.make_tiny` (its BPE tokenizer learned from the "
         "training splits' text) through every stage with DeepSpeed on CPU (TensorBoard events in run/tb).",
         f"<p><b>{html.escape(loss_summary(demo / 'run'))}</b></p>{per_stage}"
         '<img src="training.png" width="900">'),
        ("Evaluation", "Seen and unseen benchmarks, the fine-tuned tiny model against the random one it started "
         "from (zero-shot), on a few samples each. The fixtures' answers follow from their inputs (trajectories "
         "from the ego state and command in the prompt, closed choices from the pictures or the question), so "
         "a model that learns them scores; nuScenes val drives 1 m/s slower than train, so a trajectory cannot "
         "be recited. A score here is not driving skill. The figures are the metrics' own, "
         "on what this run's model wrote; `not computed`: a judged metric without a judge, or nothing "
         "scoreable (no parseable trajectory), and a metric only the fine-tuned model computes counts as better.",
         _evaluation(demo, report)),
    ]
    body = "".join(f"<section><h2>{t}</h2><p class=note>{n}</p>{c}</section>" for t, n, c in sections)
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>Driving data engine: demo</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
            "td:first-child,td:nth-child(2){text-align:left}.grid{display:flex;flex-wrap:wrap;gap:8px}"
            "figure{margin:4px}figcaption{text-align:center;font-size:13px}"
            "pre{background:#f4f4f4;padding:8px;overflow-x:auto;font-size:12px}.note{color:#666}"
            f"</style></head><body><h1>Driving data engine: demo report</h1>{body}</body></html>")
    index = report / "index.html"
    index.write_text(page)
    return index
