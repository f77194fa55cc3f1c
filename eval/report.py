"""The generalization report: report.json, report.md and report.html (plots embedded).

One row per benchmark, seen and unseen apart: sample count, failures, the headline
metrics of every evaluated variant (zero-shot, fine-tuned, ...), and the contamination
flag. Then each benchmark's full metric table, with what was not computed and why, and
the judge behind every judged number. Plots (matplotlib, PNG): `groups.png`, the headline
metrics per group, one panel per benchmark, one bar per variant; and, with two variants,
`comparison.png`, the symmetric relative change 200(b-a)/(|a|+|b|) from the first to the
last variant per headline metric (bounded where a baseline is near 0),
signed so that right is better, coloured by group: "does fine-tuning help on what it
never saw?" at a glance. With two variants or more, each benchmark also carries a
`comparison` (eval/verdict.py): difference, direction and a verdict, first to last variant.
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from eval import robustness, verdict

FORMAT = "eval-report/1"
GROUP_COLOURS = {"seen": "#3b75af", "unseen": "#e1812c", "other": "#7f7f7f"}
VARIANT_COLOURS = ["#9aa5b1", "#2b6cb0", "#38a169", "#d69e2e"]


def build(scores: dict[str, dict], groups: dict[str, str], contamination: dict, order: list[str]) -> dict:
    """report.json: per benchmark (in `order`), its group, contamination and per-variant metrics."""
    variants = list(scores)
    rows = []
    for name in order:
        per = {v: scores[v]["benchmarks"].get(name, {}) for v in variants}
        first = next((b for b in per.values() if b.get("headline")), next(iter(per.values())))
        rows.append({"benchmark": name, "group": groups.get(name, "other"),
                     "dataset": first.get("dataset"), "split": first.get("split"),
                     "contamination": contamination["benchmarks"].get(name, {}),
                     "status": first.get("status", "scored"), "note": first.get("note", ""),
                     "submission": first.get("submission"),
                     "samples": {v: b.get("samples", 0) for v, b in per.items()},
                     "failures": {v: b.get("failures", 0) for v, b in per.items()},
                     "headline": [{**h, "values": {v: _metric(b, h["metric"]) for v, b in per.items()}}
                                  for h in first.get("headline", [])],
                     "metrics": {v: b.get("metrics", {}) for v, b in per.items()}})
        if len(variants) >= 2:  # first -> last variant (zero-shot -> fine-tuned), said plainly
            rows[-1]["comparison"] = verdict.compare(rows[-1], variants[0], variants[-1])
    return {"format": FORMAT, "variants": variants,
            "models": {v: scores[v].get("model") for v in variants},
            "git_commit": next(iter(scores.values())).get("git_commit", "") if scores else "",
            "judge": next((s.get("judge") for s in scores.values() if s.get("judge")), None),
            "contamination_basis": contamination.get("basis", ""), "benchmarks": rows}


def _metric(bench: dict, key: str) -> float | None:
    return bench.get("metrics", {}).get(key, {}).get("value")


def fmt(v) -> str:
    if v is None:
        return "not computed"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def flag(c: dict) -> str:
    if not c or c.get("contaminated") is None:
        return "unknown"
    if c["contaminated"]:
        return f"CONTAMINATED ({c['overlap']} samples overlap {', '.join(c['with'])})"
    if not c["overlap"]:
        return "clean"
    return f"overlap {c['overlap']}" + (f" with {', '.join(c['with'])}" if c["with"] else "")


def _summary_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    vs = report["variants"]
    head = ["group", "benchmark", "samples", "failures", "headline metric"] + vs + ["contamination"]
    body = []
    for b in sorted(report["benchmarks"], key=lambda b: (b["group"] != "seen", b["group"])):
        lines = b["headline"] or [{"metric": b["status"] if b["status"] != "scored" else "-", "values": {}}]
        for i, h in enumerate(lines):
            arrow = "" if "higher_is_better" not in h else \
                (" (higher is better)" if h["higher_is_better"] else " (lower is better)")
            body.append([b["group"] if i == 0 else "", b["benchmark"] if i == 0 else "",
                         "/".join(str(b["samples"][v]) for v in vs) if i == 0 else "",
                         "/".join(str(b["failures"][v]) for v in vs) if i == 0 else "",
                         h["metric"] + arrow] + [fmt(h["values"].get(v)) for v in vs] +
                        [(flag(b["contamination"]) if b["status"] == "scored" else "-") if i == 0 else ""])
    return head, body


def _metric_rows(report: dict, bench: dict) -> tuple[list[str], list[list[str]]]:
    vs = report["variants"]
    keys = sorted({k for v in vs for k in bench["metrics"][v]})
    body = []
    for k in keys:
        entries = [bench["metrics"][v].get(k, {}) for v in vs]
        e = next((x for x in entries if x), {})
        note = "; ".join(dict.fromkeys(x.get("note", "") for x in entries if x.get("note")))
        judge = e.get("judge")
        if judge:
            note += f" [judge {judge['model']}, T={judge['temperature']}, prompt {judge['prompt_sha1'][:10]}]"
        body.append([k] + [fmt(x.get("value")) for x in entries] + [str(e.get("n", "")), e.get("unit", ""), note])
    return ["metric"] + vs + ["n", "unit", "note"], body


def markdown(report: dict, plots: list[str]) -> str:
    def table(head, body):
        esc = [[c.replace("|", "\\|") for c in row] for row in body]
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                         ["| " + " | ".join(r) + " |" for r in esc])

    lines = ["# Evaluation report", "", f"Variants: {', '.join(report['variants'])}. "
             f"Commit {report['git_commit'] or 'unknown'}. Contamination basis: {report['contamination_basis']}.", ""]
    for v, m in report["models"].items():
        lines.append(f"- **{v}**: {m.get('label') if m else 'no predictions'}")
    lines += ["", "## Seen vs unseen", "", table(*_summary_rows(report)), ""]
    head, body = verdict.table_rows(report)
    if body:
        lines += [f"## {head[3]} vs {head[4]}", ""] + [f"- {x}" for x in verdict.summary(report)] + [
            "", table(head, body), ""]
    lines += [f"![{p}]({p})" for p in plots] + [""]
    lines += robustness.markdown_rows(report)
    for b in report["benchmarks"]:
        lines += [f"## {b['benchmark']} ({b['group']}; {b['dataset']}/{b['split']})", ""]
        if b["status"] != "scored":
            lines += [f"{b['status']}: {b['note']}", ""]
            continue
        if b.get("submission"):
            c = b["submission"]
            lines += [f"External predictions (join on {c['join']}): {c['matched']} matched, {c['unanswered']} "
                      f"references unanswered, {c['unmatched_predictions']} predictions matched nothing.", ""]
            lines += [f"**Warning**: {w}" for w in c["warnings"]] + ([""] if c["warnings"] else [])
        lines += [table(*_metric_rows(report, b)), ""]
    return "\n".join(lines) + "\n"


def _html_table(head, body) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td class='{'bad' if c.startswith('CONTAMINATED') else ''}'>{html.escape(c)}</td>"
                                   for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def page(report: dict, plot_paths: list[Path]) -> str:
    imgs = "".join(f"<figure><img alt='{p.name}' src='data:image/png;base64,"
                   f"{base64.b64encode(p.read_bytes()).decode()}'><figcaption>{p.name}</figcaption></figure>"
                   for p in plot_paths)
    sections = "".join(
        f"<h2>{html.escape(b['benchmark'])} <small>({b['group']}; {b['dataset']}/{b['split']})</small></h2>" +
        (_html_table(*_metric_rows(report, b)) if b["status"] == "scored"
         else f"<p>{html.escape(b['status'] + ': ' + b['note'])}</p>")
        for b in report["benchmarks"])
    models = "".join(f"<li><b>{html.escape(v)}</b>: {html.escape(str((m or {}).get('label')))}</li>"
                     for v, m in report["models"].items())
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}th{background:#eef}"
             ".bad{background:#fdd;font-weight:bold}img{max-width:100%}small{color:#666}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title><style>{style}</style>"
            f"</head><body><h1>Evaluation report</h1><p>Commit {html.escape(report['git_commit'] or 'unknown')}. "
            f"Contamination basis: {html.escape(report['contamination_basis'])}.</p><ul>{models}</ul>"
            f"<h2>Seen vs unseen</h2>{_html_table(*_summary_rows(report))}{html_verdict(report)}{imgs}{sections}"
            "</body></html>\n")


def html_verdict(report: dict) -> str:
    """The zero-shot vs fine-tuned section: per-group sentences and the verdict table."""
    head, body = verdict.table_rows(report)
    if not body:
        return ""
    items = "".join(f"<li>{html.escape(x)}</li>" for x in verdict.summary(report))
    return f"<h2>{html.escape(head[3])} vs {html.escape(head[4])}</h2><ul>{items}</ul>{_html_table(head, body)}"


def _panels(report: dict) -> list[tuple[dict, dict]]:
    return [(b, h) for b in report["benchmarks"] for h in b["headline"]]


def plot_groups(report: dict, path: Path) -> Path | None:
    """One panel per (benchmark, headline metric), bars per variant, panels grouped seen first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted(_panels(report), key=lambda p: (p[0]["group"] != "seen", p[0]["group"]))
    if not panels:
        return None
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    vs = report["variants"]
    for ax, (b, h) in zip(axes.flat, panels):
        vals = [h["values"].get(v) for v in vs]
        ax.bar(range(len(vs)), [0 if x is None else x for x in vals], color=VARIANT_COLOURS[:len(vs)])
        for i, x in enumerate(vals):
            ax.text(i, 0 if x is None else x, "n/c" if x is None else f"{x:.3g}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(vs)), vs, fontsize=8)
        top = max([x for x in vals if x is not None] + [0.0])
        ax.set_ylim(0, top * 1.2 if top > 0 else 1.0)
        title = f"{b['group']}: {b['benchmark']}{' (CONTAMINATED)' if b['contamination'].get('contaminated') else ''}"
        ax.set_title(title, fontsize=9, color=GROUP_COLOURS.get(b["group"], "black"), fontweight="bold")
        ax.set_ylabel(f"{h['metric']} {'↑' if h['higher_is_better'] else '↓'}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Headline metrics per benchmark (title colour: blue = seen, orange = unseen; n/c = not computed)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def symmetric_change(a: float, b: float) -> float:
    """200 (b - a) / (|a| + |b|): a relative change that stays within +-200 when a is near 0;
    0 where the verdict reads the two as the same (0 -> 3e-13 is dust, not +200)."""
    same = verdict.direction(a, b, True) == verdict.SAME
    return 0.0 if same else 200.0 * (b - a) / (abs(a) + abs(b))


def plot_comparison(report: dict, path: Path) -> Path | None:
    """Symmetric relative change of each headline metric from the first variant to the last, right = better."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vs = report["variants"]
    if len(vs) < 2:
        return None
    items = []
    for b, h in _panels(report):
        a, z = h["values"].get(vs[0]), h["values"].get(vs[-1])
        if a is None and z is None:
            continue
        mark = " (CONTAMINATED)" if b["contamination"].get("contaminated") else ""
        if a is None or z is None:   # scoreable on one side only: the verdict's better (or worse), hatched
            signed, hatch = (200.0 if a is None else -200.0), "//"
        else:
            change = symmetric_change(a, z)
            signed, hatch = (change if h["higher_is_better"] else -change), ""
        items.append((f"{b['benchmark']}{mark}: {h['metric']}", signed, b["group"],
                      f"{_short(a)} → {_short(z)}", hatch))
    if not items:
        return None
    items.sort(key=lambda x: (x[2] != "seen", x[2], x[0]))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(items) + 1.5))
    for i, x in enumerate(items):
        ax.barh(i, x[1], color=GROUP_COLOURS.get(x[2], "grey"), hatch=x[4], edgecolor="white" if x[4] else None)
        # a bar's figures at its end, or just right of zero for a bar going left (clear of the labels)
        ax.text(max(x[1], 0), i, f" {x[3]} ", va="center", ha="left", fontsize=7)
    ax.set_xlim(-230, 370)                     # room right of the longest bar for its figures
    ax.set_xticks([-200, -100, 0, 100, 200])
    ax.set_yticks(range(len(items)), [x[0] for x in items], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"{vs[0]} (a) → {vs[-1]} (b): 200·(b−a)/(|a|+|b|), right = better\n"
                  "hatched: computed on one side only (counted as better, or worse)")
    ax.set_title("Does it generalize? blue = seen, orange = unseen", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def _short(v: float | None) -> str:
    return "not computed" if v is None else f"{v:.3g}"


def write(out: Path, scores: dict[str, dict], groups: dict[str, str], contamination: dict,
          order: list[str]) -> list[Path]:
    """report.json, report.md, report.html and the plots under `out`."""
    out = Path(out)
    report = build(scores, groups, contamination, order)
    plots = [p for p in (plot_groups(report, out / "groups.png"), plot_comparison(report, out / "comparison.png"),
                         robustness.plot(report, out / "robustness.png")) if p]
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(markdown(report, [p.name for p in plots]))
    (out / "report.html").write_text(page(report, plots))
    return [out / "report.json", out / "report.md", out / "report.html", *plots]
