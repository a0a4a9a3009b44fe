"""Long-running child processes (kubectl port-forward, Dex, oauth2-proxy, nginx, model servers).

Short commands go through `smoke_tests.run.run`; processes that must keep running are started here, with
the environment merged into the current one (never replacing PATH) and their output in a log file
or a pipe, and stopped politely before they are killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from smoke_tests.run import merged_env


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago: the kernel picks it, so two callers rarely collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def spawn(argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None,
          log: Path | None = None, cwd: Path | None = None, detach: bool = False
          ) -> subprocess.Popen[str]:
    """Start a long-running process. With `log`, stdout and stderr are appended to that file;
    without, they are merged into a text pipe the caller reads. `detach` puts it in its own
    session so it outlives the caller (`kfstack local up`)."""
    out: IO[str] | int
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "a", encoding="utf-8")  # noqa: SIM115 - handed to the child, closed below
    else:
        out = subprocess.PIPE
    try:
        return subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, env=merged_env(env),
                                cwd=cwd, start_new_session=detach)
    finally:
        if log is not None and not isinstance(out, int):
            out.close()


def stop_process(proc: subprocess.Popen[str], *, grace: float = 10.0) -> int | None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


def _stat_fields(stat_file: Path) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): state, ppid, ..."""
    return stat_file.read_text(encoding="utf-8").rsplit(")", 1)[1].split()


def pid_alive(pid: int) -> bool:
    """Whether the process exists and has not exited (an unreaped zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        return _stat_fields(Path(f"/proc/{pid}/stat"))[0] != "Z"
    return True


def stop_pid(pid: int, *, grace: float = 10.0) -> bool:
    """Stop a process this project started earlier (recorded in a state file) by its id only."""
    from smoke_tests.wait import WaitTimeout, wait_until

    if not pid_alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: (not pid_alive(pid), pid), timeout=grace, interval=0.2,
                   what=f"process {pid} to exit after SIGTERM")
    except WaitTimeout:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc), including those that left its process group, as
    Pulumi's plugins do: killing the group alone leaves them running."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(_stat_fields(stat)[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
