"""`python -m train` with two observation points, run as a child process by test_train_faults.py.

    python train_child.py KEYS_LOG CRASH -- <python -m train arguments>

It appends each optimizer step's sample keys to KEYS_LOG (one JSON line per step with the pid, fsynced,
so what a SIGKILL leaves is exactly the steps that finished) and, per CRASH, kills itself with
a real SIGKILL at a chosen point: `step:N` in the middle of this process's N-th step (after the
forward pass, before backward and the optimizer step); `ckpt:TAG` while DeepSpeed writes the
checkpoint TAG (half of its first file written); `none` runs to the end. The trainer is not
changed: the hooks wrap `train.trainer.forward_loss`, `Trainer._train_step` and `torch.save`.
"""
from __future__ import annotations

import io
import json
import os
import signal
import sys


def _kill() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    keys_log, crash = sys.argv[1], sys.argv[2]
    argv = sys.argv[sys.argv.index("--") + 1:]
    import torch

    import train.trainer as trainer_module
    from train.cli import main as train_main

    calls = {"forward": 0}
    kind, _, arg = crash.partition(":")

    forward = trainer_module.forward_loss

    def forward_then_maybe_die(*args, **kwargs):
        result = forward(*args, **kwargs)
        calls["forward"] += 1
        if kind == "step" and calls["forward"] == int(arg):
            _kill()
        return result

    step = trainer_module.Trainer._train_step

    def logged_step(self, run, *args, **kwargs):
        record = step(self, run, *args, **kwargs)
        with open(keys_log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "stage": record.stage, "step": record.step, "keys": list(record.keys)}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return record

    save = torch.save

    def save_or_die_halfway(obj, f, *args, **kwargs):
        path = str(f)
        if kind == "ckpt" and f"/checkpoints/{arg}/" in path and "/rng-rank" not in path:
            buf = io.BytesIO()
            save(obj, buf, *args, **kwargs)
            with open(path, "wb") as out:
                out.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                out.flush()
                os.fsync(out.fileno())
            _kill()
        return save(obj, f, *args, **kwargs)

    trainer_module.forward_loss = forward_then_maybe_die
    trainer_module.Trainer._train_step = logged_step
    torch.save = save_or_die_halfway
    return train_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
