"""What the sub-command modules share: the `register` signature, progress lines, and how a
library's error becomes a one-line error with the command's exit status."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TypeAlias

from infra.errors import UserError

# Each module's `register(sub: Subparsers)` adds its parser to kfstack's.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CommandFailed(UserError):
    """A library error that a command reports as the user's to fix, with that command's exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def failures(*kinds: type[Exception], exit_code: int = 1) -> Iterator[None]:
    """Report an error of these kinds as the user's (one `error:` line, `exit_code`), not as a bug."""
    try:
        yield
    except kinds as exc:
        raise CommandFailed(str(exc), exit_code) from exc


def say(line: str) -> None:
    """A progress line on standard output, shown at once."""
    print(line, flush=True)
