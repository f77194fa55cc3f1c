"""The launcher's environment, as training and evaluation both read it."""
from __future__ import annotations

from vlm.dist import DistEnv


def test_launcher_variables_and_a_plain_process():
    env = DistEnv.read({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_PORT": "29500"})
    assert env == DistEnv(rank=3, world_size=8, local_rank=1) and not env.is_main
    assert DistEnv.read({}) == DistEnv(0, 1, 0) and DistEnv.read({}).is_main
