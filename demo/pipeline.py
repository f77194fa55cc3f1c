"""`make demo`: the whole pipeline on generated data, on CPU, from a fresh clone.

Fixtures for every registered source in their raw formats (plus the real samples that have
images when DATAENGINE_REAL_SAMPLES is set), conversion with one Ray instance, validation,
dataset cards, the leakage audit, a tiny random model whose tokenizer is learned from the
training splits (`python -m vlm.make_tiny`), the demo curriculum's plan, training of that
model through every stage with DeepSpeed, evaluation on the seen and unseen groups (fine-tuned
against zero-shot), and `reports/demo/index.html` linking all of it. Each step says what it
does and how far along the demo is. Plan, training and evaluation run through their own
command lines, exactly as a user would type them.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dataengine.audit import AuditConfig, LeakageError
from dataengine.audit_report import main as audit
from dataengine.build import BuildConfig, convert_sources, read_corpus, summary_table
from dataengine.cards import write_cards
from dataengine.converter import registry
from dataengine.job import JobConfig, run_job
from dataengine.validate import validate_root

DEMO_CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "demo.yaml"
MAX_NEW_TOKENS = 112


class Steps:
    """Numbered progress lines: `[demo 3/31 0:42] converting drivelm`."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def __call__(self, text: str) -> None:
        self.done += 1
        elapsed = int(time.perf_counter() - self.start)
        print(f"[demo {self.done}/{self.total} {elapsed // 60}:{elapsed % 60:02d}] {text}", flush=True)


def _run(cmd: list[str], log: Path) -> None:
    """Run one of the project's commands; its output goes to a log, a failure stops the demo."""
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit(f"demo: `{' '.join(cmd)}` failed (exit {proc.returncode}); last lines of {log}:\n"
                         + "\n".join(tail))


def convert_all(out: Path, workers: int, steps: Steps, datasets: list[str], real: Path | None) -> None:
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=128 * 1024 * 1024,
             configure_logging=False, log_to_driver=False)
    try:
        # `dataengine build corpora/demo.yaml --base OUT --out OUT/shards`, one source per step
        _, sources = read_corpus(BuildConfig(corpus=DEMO_CORPUS, out=out / "shards", base=out))
        rows = []
        for source in (s for s in sources if s.dataset in datasets):
            steps(f"{source.dataset}: writing a fixture in its raw format, converting it with Ray ({workers} workers)")
            rows += convert_sources(out / "shards", [source], workers, progress=False)
        print("    " + summary_table(rows).replace("\n", "\n    "))
        if real is not None:
            steps(f"converting the real samples with images from {real} (DriveLM on real nuScenes JPEGs, Waymo)")
            for job in real_jobs(real, out):
                _print_counts(f"real {job.dataset}", run_job(job).cards)
    finally:
        ray.shutdown()


def real_jobs(real: Path, out: Path) -> list[JobConfig]:
    """The real samples that carry images: DriveLM's train sample over the real nuScenes JPEGs,
    and the real Waymo frame. They go to their own shard root, out of the demo's training."""
    from converters.drivelm.converter import DriveLMOptions

    waymo = out / "raw" / "real-waymo" / "validation"
    waymo.mkdir(parents=True)
    for record in sorted((real / "waymo").glob("*.tfrecord")):
        (waymo / record.name).symlink_to(record.resolve())
    shards = out / "real-shards"
    return [JobConfig(dataset="drivelm", src=real / "drivelm" / "train_sample.json", out=shards, progress=False,
                      options=DriveLMOptions(nuscenes_root=str(real / "nuscenes"), drivelm_mode="per_frame")),
            JobConfig(dataset="waymo", src=waymo.parent, out=shards, progress=False)]


def _print_counts(name: str, cards: dict) -> None:
    for split, card in sorted(cards.items()):
        c = card["counts"]
        print(f"    {name}/{split}: {c['samples']} samples, {c['quarantined']} quarantined")


def run_demo(out: Path, report: Path, workers: int, datasets: list[str] | None, limit: int) -> None:
    out, py = Path(out), sys.executable
    if out.exists():
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True)
    names = [n for n in registry() if not datasets or n in datasets]
    real = Path(os.environ["DATAENGINE_REAL_SAMPLES"]) if os.environ.get("DATAENGINE_REAL_SAMPLES") else None
    steps = Steps(len(names) + 8 + (real is not None))
    convert_all(out, workers, steps, names, real)
    shards = out / "shards"
    steps("validating every shard against its manifest")
    checked = validate_root(shards)
    if real is not None:
        checked |= {f"real {k}": v for k, v in validate_root(out / "real-shards").items()}
    print(f"    {len(checked)} dataset/splits, {sum(checked.values())} samples ok")
    steps("writing dataset cards")
    write_cards(shards)
    steps("auditing leakage between evaluation and training splits")
    try:
        audit(AuditConfig(root=shards))
    except LeakageError as exc:  # shown, and marked in the evaluation report; the demo goes on
        print(f"    WARNING: {exc}")
    model = out / "model"
    steps(f"building the tiny model, its tokenizer learned from the training splits' text: {model}")
    _run([py, "-m", "vlm.make_tiny", "--shards", str(shards), "--out", str(model)], out / "logs" / "model.log")
    print("    " + (out / "logs" / "model.log").read_text().strip().splitlines()[-1])
    steps("planning the demo curriculum")
    # on the model's exact lengths, as training plans them (the second call reads the cache)
    plan = subprocess.run([py, "-m", "curricula", "plan", "demo", "--shards", str(shards), "--model", str(model)],
                          capture_output=True, text=True, check=True)
    (out / "plan.txt").write_text(plan.stdout)
    json_plan = subprocess.run([py, "-m", "curricula", "plan", "demo", "--shards", str(shards), "--model",
                                str(model), "--json"],
                               capture_output=True, text=True, check=True)
    (out / "plan.json").write_text(json_plan.stdout)
    print("    " + "\n    ".join(plan.stdout.strip().splitlines()[:3]))
    steps("training the tiny model through every stage with DeepSpeed on CPU (log: logs/train.log)")
    _run([py, "-m", "train", "--curriculum", "demo", "--model", str(model), "--shards", str(shards),
          "--out", str(out / "run"), "--no-progress"], out / "logs" / "train.log")
    steps(f"evaluating on the seen and unseen groups, fine-tuned vs zero-shot, {limit} samples each "
          "(log: logs/eval.log)")
    # 112 new tokens: a 6-waypoint trajectory is 76 of the demo model's tokens (digits one by one)
    # (the benchmarks' own caps, up to 512, would let the random zero-shot model babble for minutes)
    _run([py, "-m", "eval", "--run", str(out / "run"), "--compare", "--benchmarks", "seen", "unseen",
          "--shards", str(shards), "--out", str(out / "eval"), "--limit", str(limit),
          "--max-new-tokens", str(MAX_NEW_TOKENS)], out / "logs" / "eval.log")
    steps(f"writing the report: {report / 'index.html'}")
    from demo.report import loss_summary, verdict_lines, write_report

    write_report(out, report)
    print("    " + loss_summary(out / "run"))
    print("    " + "\n    ".join(verdict_lines(out / "eval")))
    print(f"demo done in {time.perf_counter() - steps.start:.0f} s: open {report / 'index.html'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo-out")
    parser.add_argument("--report", default="reports/demo")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--datasets", nargs="*", default=None, help="only these converters")
    parser.add_argument("--limit", type=int, default=4, help="evaluation samples per benchmark")
    args = parser.parse_args()
    run_demo(Path(args.out), Path(args.report), args.workers, args.datasets, args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
