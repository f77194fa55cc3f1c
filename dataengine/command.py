"""What every command line of the project shares (`dataengine`, `curricula`, `python -m train`,
`python -m eval`): a bad argument is one line and exit code 2; a UsageError is one line and
exit 2; any other DataEngineError one line and exit 1."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from dataengine.errors import DataEngineError, UsageError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line (no usage block) and exits with 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def run_command(prog: str, fn: Callable[[], int]) -> int:
    """Run a command body; project errors become one line on stderr and an exit code."""
    try:
        return fn()
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except DataEngineError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
