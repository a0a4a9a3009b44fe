"""The local conformance target as the suite sees it: the state file a running target records.

The target itself (Dex, oauth2-proxy, an nginx gateway and model servers on 127.0.0.1, configured by
the same generators as a stack) belongs to the kubeflow-stacks project (`kfstack local up`); it
writes `state.json` in its working directory with this module's `LocalState`, and the suite reads
it back. `--local-target` attaches to a running target, or starts one with `kfstack local up` and
stops it with `kfstack local down` at the end of the session.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smoke_tests.cache import cache_root
from smoke_tests.process import pid_alive
from smoke_tests.run import run
from smoke_tests.tools import ToolNotFoundError, find_tool

STATE_FILE = "state.json"
IRIS_MODEL = "sklearn-iris"
MNIST_MODEL = "mnist"


def default_workdir() -> Path:
    """Where `kfstack local up` and `--local-target` work when no directory is given."""
    return cache_root() / "local-target"


@dataclass
class LocalUser:
    email: str
    profile: str
    password: str


@dataclass
class LocalState:
    """What `up` recorded: enough for `down`, `status` and the smoke suite to attach."""

    workdir: str
    started: str
    gateway_url: str
    model_domain: str
    ports: dict[str, Any]
    processes: dict[str, int]
    users: list[LocalUser]
    models: dict[str, dict[str, str]]  # namespace -> model name -> model directory
    mnist_samples: str
    mnist_source: str
    hello_output: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    # The artifact store: endpoint, root directory, each namespace's kfp-launcher ConfigMap and key.
    object_store: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)  # sample pipeline (iris, mnist) -> kfp.local run

    @classmethod
    def load(cls, path: Path) -> LocalState:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["users"] = [LocalUser(**u) for u in data["users"]]
        return cls(**data)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, indent=2)
        tmp.replace(path)

    def secrets(self) -> list[str]:
        keys = self.object_store.get("keys", {}).values()
        return [u.password for u in self.users] + [k["secretkey"] for k in keys]


def runs_here(pid: int, workdir: Path) -> bool:
    """Whether `pid` still runs a command of the target in `workdir`: every one names that directory
    (a recorded pid may have been reused by an unrelated process since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(workdir) in cmdline


def running_state(workdir: Path) -> LocalState | None:
    """The recorded state if every recorded process is still alive, else None."""
    path = workdir / STATE_FILE
    if not path.exists():
        return None
    state = LocalState.load(path)
    alive = all(pid_alive(p) and runs_here(p, workdir) for p in state.processes.values())
    return state if alive else None


class LocalTargetUnavailable(RuntimeError):
    """No local target runs in the directory, and none can be started from here."""


def start(workdir: Path, *, timeout: float, mnist_source: str) -> LocalState:
    """`kfstack local up` in `workdir` (the project's command: it knows its tools and configs)."""
    try:
        kfstack = find_tool("kfstack")
    except ToolNotFoundError as exc:
        raise LocalTargetUnavailable(
            f"no local target runs in {workdir}, and the kubeflow-stacks project, which starts one, is not "
            f"installed here ({exc}); start it elsewhere with `kfstack local up --dir {workdir}`") from None
    run([kfstack, "local", "up", "--dir", workdir, "--timeout", str(timeout), "--mnist-source", mnist_source],
        timeout=timeout * 8 + 900)  # the sample pipelines train first (minutes), then each server starts
    state = running_state(workdir)
    if state is None:
        raise LocalTargetUnavailable(f"`kfstack local up --dir {workdir}` returned, but no target runs there")
    return state


def stop(workdir: Path) -> None:
    """`kfstack local down`: stops exactly what `start` started (nothing when it recorded nothing:
    a failed `up` stops what it started itself)."""
    if not (workdir / STATE_FILE).exists():
        return
    run([find_tool("kfstack"), "local", "down", "--dir", workdir], timeout=120)
