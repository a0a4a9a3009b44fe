"""The one place external commands run: argument lists, a timeout, and errors that say everything."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


class CommandError(RuntimeError):
    """A command failed or timed out; carries the command line, exit code, stdout and stderr."""

    def __init__(self, args: Sequence[str], returncode: int | None, stdout: str, stderr: str,
                 reason: str = "") -> None:
        self.args_list = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        head = reason or f"exited with code {returncode}"
        super().__init__(
            f"command {' '.join(self.args_list)!r} {head}\n"
            f"--- stdout (last 2000 chars) ---\n{stdout[-2000:]}\n"
            f"--- stderr (last 4000 chars) ---\n{stderr[-4000:]}"
        )


def merged_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment plus `extra`: never drop PATH and friends."""
    env = dict(os.environ)
    if extra:
        env.update(extra)
    return env


def run(args: Sequence[str | Path], *, timeout: float, env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None, input_text: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command to completion and return its output; raise `CommandError` on failure."""
    argv = [str(a) for a in args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=merged_env(env), cwd=cwd, input=input_text, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise CommandError(argv, None, out, err, reason=f"timed out after {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise CommandError(argv, None, "", str(exc), reason="could not start (not installed?)") from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc
