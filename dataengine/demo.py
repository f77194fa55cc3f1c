"""`make demo`: fixtures for every registered converter, converted, validated, with cards.

Says at each step what it is doing and how far along it is. One Ray instance serves all
conversions.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from dataengine.converter import registry
from dataengine.job import JobConfig, run_job
from dataengine.stats import write_cards
from dataengine.validate import validate_root


def _step(i: int, n: int, text: str) -> None:
    print(f"[demo {i}/{n}] {text}", flush=True)


def run_demo(out: Path, workers: int = 2, datasets: list[str] | None = None) -> None:
    import ray

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    converters = {k: v for k, v in registry().items() if not datasets or k in datasets}
    n = 2 * len(converters) + 2
    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=128 * 1024 * 1024,
             configure_logging=False)
    try:
        step = 0
        for name, cls in converters.items():
            step += 1
            _step(step, n, f"writing the {name} fixture in its raw format")
            src = cls.make_fixture(out / "raw" / name)
            step += 1
            _step(step, n, f"converting {name} with Ray ({workers} workers)")
            result = run_job(JobConfig(dataset=name, src=src, out=out / "shards",
                                       options=cls.fixture_options(out / "raw" / name), workers=workers))
            for split, card in result.cards.items():
                c = card["counts"]
                print(f"    {name}/{split}: {c['samples']} samples, {c['quarantined']} quarantined")
    finally:
        ray.shutdown()
    _step(n - 1, n, "validating every shard against its manifest")
    for key, count in validate_root(out / "shards").items():
        print(f"    {key}: {count} samples ok")
    _step(n, n, "writing dataset cards")
    for path in write_cards(out / "shards"):
        print(f"    {path}")
    print(f"demo done in {time.perf_counter() - start:.0f} s: {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo-out")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--datasets", nargs="*", default=None)
    args = parser.parse_args()
    run_demo(Path(args.out), args.workers, args.datasets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
