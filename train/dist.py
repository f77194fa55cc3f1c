"""Process group setup, the same for a plain `python -m train`, `torchrun`, the `deepspeed`
launcher and Ray Train workers.

Launchers export RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (read through
`vlm.dist.DistEnv`, as evaluation reads them). A plain process gets single-process values
(DeepSpeed would otherwise look for MPI). NCCL on GPUs, gloo on CPU. The first DeepSpeed
init on a CPU machine compiles a small shared-memory op with gcc (cached in
~/.cache/torch_extensions afterwards).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch

from vlm.dist import DistEnv


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single_process_env() -> None:
    """Fill in the launcher variables for a process that no launcher started."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))


def setup() -> DistInfo:
    """Initialize (once per process) and describe this rank."""
    import deepspeed

    single_process_env()
    env = DistEnv.read()
    device = env.device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(torch.distributed.get_rank(), torch.distributed.get_world_size(), env.local_rank, device)


def all_reduce(tensor: torch.Tensor, op=None) -> torch.Tensor:
    """In-place sum (or `op`) across ranks; a no-op for one process."""
    if torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(tensor, op=op or torch.distributed.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    if torch.distributed.get_world_size() > 1:
        torch.distributed.barrier()
