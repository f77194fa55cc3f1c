"""Checks run by `make setup`: the pinned CPU torch was not replaced, the pins hold; and
warnings for what only some features need (Java for the text metrics of `python -m eval`)."""
from __future__ import annotations

import re
import shutil
import subprocess
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


def warnings() -> list[str]:
    """Missing optional tools: reported, but setup still succeeds."""
    java = shutil.which("java")
    if java is None:
        return ["java not found: the evaluation's text metrics (pycocoevalcap's PTB tokenizer and METEOR) need "
                "Java 17 (Debian: apt-get install default-jre-headless); without it they are reported as not computed"]
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    if not m or int(m.group(1)) < 11:
        return [f"java at {java} is not Java 11+ ({out.splitlines()[0] if out else 'no version'}); "
                "pycocoevalcap is tested with Java 17"]
    return []


def main() -> int:
    found = problems()
    for line in found:
        print(f"envcheck: {line}", file=sys.stderr)
    for line in warnings():
        print(f"envcheck: warning: {line}", file=sys.stderr)
    if not found:
        import torch

        print(f"envcheck: ok (torch {torch.__version__})")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
