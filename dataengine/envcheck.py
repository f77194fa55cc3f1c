"""Checks run by `make setup`: the pinned CPU torch was not replaced, the pins hold."""
from __future__ import annotations

import shutil
import sys


def problems() -> list[str]:
    import numpy
    import torch

    found = []
    if not torch.__version__.startswith("2.13.0"):
        found.append(f"torch {torch.__version__} replaced the pinned 2.13.0")
    if shutil.which("nvidia-smi") is None and torch.version.cuda is not None:
        found.append(f"torch {torch.__version__} is a CUDA build on a machine without CUDA")
    if int(numpy.__version__.split(".")[0]) >= 2:
        found.append(f"numpy {numpy.__version__}: nuscenes-devkit needs numpy<2")
    import pyarrow  # noqa: F401  (pyarrow>=26 fails to import with numpy<2)
    from waymo_open_dataset import dataset_pb2  # noqa: F401
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(f"envcheck: {line}", file=sys.stderr)
    if not found:
        import torch

        print(f"envcheck: ok (torch {torch.__version__})")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
