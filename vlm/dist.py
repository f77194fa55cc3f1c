"""Where this process stands in a launch, read from the variables every launcher exports.

torchrun, the `deepspeed` launcher and Ray Train all set RANK, WORLD_SIZE and LOCAL_RANK;
a process that no launcher started is rank 0 of 1. Training and evaluation read them here
and set up their own process groups (DeepSpeed's for training, plain gloo for generation).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0             # the rank within its node: picks the node's GPU

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> DistEnv:
        env = os.environ if environ is None else environ
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self):
        """This rank's GPU (cuda:LOCAL_RANK) when there is one, else the CPU."""
        import torch

        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")
