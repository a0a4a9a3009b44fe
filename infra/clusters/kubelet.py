"""A node whose kubelet never starts fails the create in seconds, with kubelet's own reason.

kind and minikube start kubelet as a systemd unit inside each node container and then wait for it
(kubeadm waits four minutes, the create command longer). A kubelet that exits at start (a host
quirk such as a missing cgroup hierarchy) is restarted every second by systemd and never becomes
healthy, so the create would wait out its whole timeout and say only that it timed out. Instead
the create command runs while the nodes' kubelet units are read: once one has been restarted
`CRASH_RESTARTS` times, the command is stopped and the error carries the line of the unit's
journal that says why, with the rest written to a diagnostics file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.errors import UserError
from smoke_tests.process import stop_process
from smoke_tests.run import CommandError, merged_env, run

# systemd restarts kind's and minikube's kubelet every second; a healthy start never restarts it
# (kind's unit waits for kubeadm's config file instead of failing before it exists).
CRASH_RESTARTS = 5
POLL_INTERVAL_S = 3.0
JOURNAL_LINES = 60
# Lines kubelet prints when it gives up, most telling first.
CAUSE_MARKERS = ("failed to run Kubelet", "command failed", "failed to", "error")


class KubeletFailedError(UserError):
    """kubelet in a node exits over and over: the cluster can never become Ready."""


@dataclass(frozen=True)
class KubeletState:
    """What systemd in one node says of its kubelet unit."""

    node: str
    active_state: str
    restarts: int
    journal: tuple[str, ...] = ()

    @property
    def crash_looping(self) -> bool:
        return self.restarts >= CRASH_RESTARTS

    def cause(self) -> str:
        """The one journal line that says why kubelet exits (the last one that looks like a reason)."""
        for marker in CAUSE_MARKERS:
            for line in reversed(self.journal):
                if marker.lower() in line.lower():
                    return line.strip()
        return self.journal[-1].strip() if self.journal else f"kubelet is {self.active_state}"


def parse_show(text: str) -> dict[str, str]:
    """`systemctl show --property=...` output as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def state_from(node: str, show: str, journal: str) -> KubeletState:
    props = parse_show(show)
    try:
        restarts = int(props.get("NRestarts", "0") or 0)
    except ValueError:
        restarts = 0
    return KubeletState(node, props.get("ActiveState", "unknown"), restarts,
                        tuple(line for line in journal.splitlines() if line.strip()))


def read_state(container: str) -> KubeletState | None:
    """The kubelet unit of the node container `container`, or None while it cannot be read yet."""
    try:
        show = run(["docker", "exec", container, "systemctl", "show", "kubelet",
                    "--property=ActiveState,NRestarts"], timeout=20).stdout
    except CommandError:
        return None
    state = state_from(container, show, "")
    if not state.crash_looping:
        return state
    try:
        journal = run(["docker", "exec", container, "journalctl", "--unit", "kubelet", "--no-pager",
                       "--output", "cat", "--lines", str(JOURNAL_LINES)], timeout=20).stdout
    except CommandError as exc:
        journal = f"(journal unreadable: {str(exc).splitlines()[0]})"
    return state_from(container, show, journal)


def failure(state: KubeletState, diagnostics: Path) -> KubeletFailedError:
    """The error for a crash-looping kubelet; its journal goes to `diagnostics`."""
    diagnostics.parent.mkdir(parents=True, exist_ok=True)
    diagnostics.write_text(f"kubelet on node {state.node}: {state.active_state}, restarted {state.restarts} "
                           f"times\n--- last {len(state.journal)} journal lines ---\n"
                           + "\n".join(state.journal) + "\n")
    return KubeletFailedError(f"kubelet on node {state.node} exited {state.restarts} times and cannot start: "
                              f"{state.cause()} (its journal: {diagnostics}; `kfstack doctor` checks this "
                              "host for known causes)")


def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop the create command and whatever it started in its session (its docker and ssh children)."""
    stop_process(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_watching_kubelet(command: Sequence[str | Path], *, timeout: float, nodes: Callable[[], list[str]],
                         diagnostics: Path, env: Mapping[str, str] | None = None,
                         read: Callable[[str], KubeletState | None] = read_state,
                         interval: float = POLL_INTERVAL_S) -> str:
    """Run a cluster create command to completion, stopping it as soon as a node's kubelet
    crash-loops. Returns its stdout; raises `CommandError` for its own failure or timeout and
    `KubeletFailedError` with kubelet's reason."""
    argv = [str(part) for part in command]
    logs = diagnostics.parent
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / "create.stdout", logs / "create.stderr"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True,
                                env=merged_env(env), start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                proc.wait(timeout=interval)
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                _stop(proc)
                raise CommandError(argv, None, out_path.read_text(), err_path.read_text(),
                                   reason=f"timed out after {timeout:.0f}s")
            for node in nodes():
                state = read(node)
                if state is not None and state.crash_looping:
                    _stop(proc)
                    raise failure(state, diagnostics)
    finally:
        if proc.poll() is None:
            _stop(proc)
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, out_path.read_text(), err_path.read_text())
    return out_path.read_text()


def running_containers(label: str) -> list[str]:
    """Names of the running containers carrying `label` (a node's cluster label)."""
    try:
        return run(["docker", "ps", "--filter", f"label={label}", "--format", "{{.Names}}"], timeout=30).stdout.split()
    except CommandError:
        return []
