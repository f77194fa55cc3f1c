"""A sample that fails to encode is skipped on every rank together: the trainer's one
all-reduce per optimizer step tells all ranks whether the global batch trains anything.
Two CPU ranks (gloo): one rank's samples all fail, the other's train; then both fail."""
from __future__ import annotations

import socket
import types

import torch
import torch.multiprocessing as mp

from train.trainer import StageRun, Trainer
from vlm.encode import IGNORE, PlaceholderError


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Encoder:
    """Encodes a sample named "ok*" with 3 label tokens; any other fails as a bad sample does."""

    def encode(self, sample):
        if not sample.key.startswith("ok"):
            raise PlaceholderError(f"sample {sample.key}: 2 placeholders but 1 image group")
        return types.SimpleNamespace(key=sample.key, labels=torch.tensor([IGNORE, 5, 6, 7]))

    def filler(self):
        return types.SimpleNamespace(key="<skipped>", labels=torch.tensor([IGNORE]))


def _trainer(rank: int):
    t = Trainer.__new__(Trainer)
    t.dist = types.SimpleNamespace(rank=rank, world_size=2, device=torch.device("cpu"), is_main=rank == 0)
    return t


def _window(trainer, run, keys):
    before = len(run.skipped)
    encoded = [trainer._encode(run, _Encoder(), [types.SimpleNamespace(key=k, source="s") for k in micro])
               for micro in keys]
    return trainer._normalizer(encoded, len(keys), len(run.skipped) - before)


def _worker(rank: int, port: int, queue) -> None:
    try:
        _agree(rank, port, queue)
    except Exception as exc:   # reported to the test instead of a silent dead child
        queue.put((rank, repr(exc), None, None))


def _agree(rank: int, port: int, queue) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    trainer = _trainer(rank)
    run = StageRun(0, None, None, None, total=4)
    mixed = _window(trainer, run, [["ok0", "ok1"]] if rank == 0 else [["bad0", "bad1"]])
    failed = _window(trainer, run, [["bad2"]] if rank == 0 else [["bad3"]])
    queue.put((rank, mixed, failed, [s["key"] for s in run.skipped]))
    torch.distributed.destroy_process_group()


def test_ranks_agree_on_whether_a_step_trains():
    ctx = mp.get_context("spawn")  # fresh processes: a forked child would inherit a process group
    # that an earlier test of this session made
    queue = ctx.Queue()
    port = _port()
    procs = [ctx.Process(target=_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict((r, rest) for r, *rest in (queue.get(timeout=300) for _ in procs))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    # rank 1 skipped both its samples; the 6 label tokens of rank 0 still train, on both ranks
    assert results[0][0] == results[1][0] == (6 / 2, True)
    # then nothing trains anywhere: both ranks skip the optimizer step together
    assert results[0][1][1] is False and results[1][1][1] is False
    assert results[0][2] == ["bad2"] and results[1][2] == ["bad0", "bad1", "bad3"]


def test_a_window_without_trainable_samples_advances_the_counters_and_the_schedule():
    trainer = _trainer(0)
    trainer.dist = types.SimpleNamespace(rank=0, world_size=1, device=torch.device("cpu"), is_main=True)
    param = torch.nn.Parameter(torch.zeros(1))
    schedule = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([param], lr=1.0), lambda k: 1.0 / (k + 1))
    run = StageRun(0, types.SimpleNamespace(name="s"), None, types.SimpleNamespace(lr_scheduler=schedule), total=5)
    trainer._skip_window(run, 2, 2)
    assert (run.step, run.global_step, schedule.last_epoch) == (2, 1, 1)
    trainer._skip_window(run, 2, 2)
    trainer._skip_window(run, 1, 2)   # the stage's last, partial window
    assert (run.step, run.global_step, schedule.last_epoch) == (5, 3, 3)
    assert schedule.get_last_lr() == [0.25]   # the rate of the 4th planned step
