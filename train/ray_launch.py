"""Launch `python -m train` on a Ray cluster with Ray Train's TorchTrainer.

    python -m train.ray_launch --workers 16 --gpus-per-worker 1 -- \\
        --curriculum robotron_drive --model /models/llava-ov-0.5b --shards /data/shards --out /shared/run

Every worker runs the same trainer as a launcher would. Ray Train starts the process group
and exports RANK, WORLD_SIZE and LOCAL_RANK (the torchrun names), so `train.dist.setup`
finds a process group already up and DeepSpeed reuses it. The run directory (--out) must
be on storage every node sees: checkpoints, stage outputs and plans live there. Resuming is
the same as anywhere: submit the same command again.
"""
from __future__ import annotations

import argparse
import sys

from dataengine.errors import UsageError


def _worker(config: dict) -> None:
    from train.cli import main

    code = main(config["argv"])
    if code:
        raise RuntimeError(f"python -m train {' '.join(config['argv'])} exited with {code}")


def launch(argv: list[str], workers: int, gpus_per_worker: int, address: str | None, storage: str | None):
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if not ray.is_initialized():
        ray.init(address=address)
    backend = TorchConfig(backend="nccl" if gpus_per_worker else "gloo")
    scaling = ScalingConfig(num_workers=workers, use_gpu=bool(gpus_per_worker),
                            resources_per_worker={"GPU": gpus_per_worker} if gpus_per_worker else None)
    trainer = TorchTrainer(_worker, train_loop_config={"argv": argv}, torch_config=backend,
                           scaling_config=scaling, run_config=RunConfig(name="train", storage_path=storage))
    return trainer.fit()


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    if "--" not in args:
        print("usage: python -m train.ray_launch [--workers N] [--gpus-per-worker G] [--address A] "
              "[--storage DIR] -- TRAIN ARGS", file=sys.stderr)
        return 2
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="python -m train.ray_launch")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gpus-per-worker", type=int, default=0)
    parser.add_argument("--address", default=None, help="Ray address (default: connect or start locally)")
    parser.add_argument("--storage", default=None, help="Ray Train's own storage (default ~/ray_results)")
    opts = parser.parse_args(args[:split])
    if opts.workers < 1:
        raise UsageError("--workers must be at least 1")
    launch(args[split + 1:], opts.workers, opts.gpus_per_worker, opts.address, opts.storage)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
