"""A supervised `kubectl port-forward`: a free local port, a real readiness check, restart on exit.

kubectl prints "Forwarding from" before the tunnel necessarily works, and a forward dies whenever the
pod behind it restarts, so one forward for a whole session needs a supervisor: it waits for that
line and then probes the port, and when kubectl exits it starts it again on the same local port
(clients keep their URL). Its recent output goes into every error.
"""

from __future__ import annotations

import collections
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smoke_tests.process import free_port, port_open, spawn, stop_process
from smoke_tests.wait import WaitTimeout, wait_until

FORWARDING_LINE = "Forwarding from"

Probe = Callable[[int], tuple[bool, str]]


def tcp_probe(port: int) -> tuple[bool, str]:
    """Something accepts connections on the local port."""
    ok = port_open(port)
    return ok, "port accepts connections" if ok else "connection refused"


@dataclass(frozen=True)
class ForwardSpec:
    """What to forward: `kubectl port-forward -n NAMESPACE TARGET LOCAL:REMOTE`."""

    kubectl: Path
    namespace: str
    target: str  # e.g. svc/istio-ingressgateway
    remote_port: int
    kubeconfig: Path | None = None
    context: str | None = None

    def argv(self, local_port: int) -> list[str]:
        args = [str(self.kubectl), "port-forward", "--address", "127.0.0.1", "-n", self.namespace,
                self.target, f"{local_port}:{self.remote_port}"]
        if self.kubeconfig:
            args += ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            args += ["--context", self.context]
        return args


class PortForwardError(RuntimeError):
    pass


class PortForward:
    """One supervised forward. Use as a context manager, or call `start()` and `close()`."""

    def __init__(self, spec: ForwardSpec, *, local_port: int | None = None, probe: Probe = tcp_probe,
                 ready_timeout: float = 60.0, max_restarts: int = 10, log: Path | None = None) -> None:
        self.spec = spec
        self.local_port = local_port or free_port()
        self.probe = probe
        self.ready_timeout = ready_timeout
        self.max_restarts = max_restarts
        self.log = log
        self.restarts = 0
        self.output: collections.deque[str] = collections.deque(maxlen=60)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._forwarding = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._supervisor: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self.failure: str | None = None

    # -- public -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> PortForward:
        self._launch_and_wait()
        self._supervisor = threading.Thread(target=self._supervise, name="port-forward-supervisor",
                                            daemon=True)
        self._supervisor.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the forward answers (after a restart, say); raise with kubectl's output if not."""
        def check() -> tuple[bool, str]:
            if self.failure:
                raise PortForwardError(self.failure)
            proc = self._proc
            if proc is None or proc.poll() is not None or not self._forwarding.is_set():
                return False, "kubectl not forwarding (restarting)"
            return self.probe(self.local_port)

        self._wait(check, timeout or self.ready_timeout)

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            proc = self._proc
        if proc is not None:
            stop_process(proc, grace=5)
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)

    def __enter__(self) -> PortForward:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _wait(self, check: Callable[[], tuple[bool, str]], timeout: float) -> None:
        try:
            wait_until(check, timeout=timeout, interval=0.2,
                       what=f"port-forward {self.spec.namespace}/{self.spec.target} on {self.url}")
        except WaitTimeout as exc:
            raise PortForwardError(f"{exc}\n--- kubectl output ---\n{self.recent_output()}") from exc

    def recent_output(self) -> str:
        return "\n".join(self.output)

    def _launch(self) -> None:
        self._forwarding.clear()
        proc = spawn(self.spec.argv(self.local_port))
        with self._lock:
            self._proc = proc
        self._reader = threading.Thread(target=self._read_output, args=(proc,), daemon=True)
        self._reader.start()

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            self.output.append(line)
            if self.log is not None:
                with open(self.log, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            if FORWARDING_LINE in line:
                self._forwarding.set()

    def _launch_and_wait(self) -> None:
        self._launch()

        def check() -> tuple[bool, str]:
            proc = self._proc
            assert proc is not None
            if proc.poll() is not None:
                if self._reader is not None:
                    self._reader.join(timeout=5)  # so the error carries all of kubectl's output
                raise PortForwardError(f"kubectl port-forward exited with code {proc.returncode}\n"
                                       f"--- kubectl output ---\n{self.recent_output()}")
            if not self._forwarding.is_set():
                return False, f"no {FORWARDING_LINE!r} line yet"
            return self.probe(self.local_port)

        self._wait(check, self.ready_timeout)

    def _supervise(self) -> None:
        while not self._closing.is_set():
            proc = self._proc
            assert proc is not None
            proc.wait()
            if self._closing.is_set():
                return
            self.output.append(f"[supervisor] kubectl exited with code {proc.returncode}; restarting")
            self.restarts += 1
            if self.restarts > self.max_restarts:
                self.failure = (f"port-forward gave up after {self.max_restarts} restarts\n"
                                f"--- kubectl output ---\n{self.recent_output()}")
                return
            try:
                self._launch_and_wait()
            except PortForwardError as exc:
                self.output.append(f"[supervisor] restart failed: {exc}")
                # The next loop iteration sees the dead process and tries again.
                if self._proc is not None and self._proc.poll() is None:
                    stop_process(self._proc, grace=5)



def http_probe(port: int) -> tuple[bool, str]:
    """The gateway answers HTTP through the tunnel (any status: the tunnel, not the route, is probed).

    A TCP connect alone is not enough: kubectl accepts connections before the tunnel works."""
    import requests

    http = requests.Session()
    http.trust_env = False
    try:
        resp = http.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=5)
    except requests.RequestException as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"HTTP {resp.status_code}"
