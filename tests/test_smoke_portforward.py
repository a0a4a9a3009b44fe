"""The port-forward supervisor against a fake kubectl that really listens: port choice, readiness
after the "Forwarding from" line, restart on exit, errors carrying kubectl's output."""

from __future__ import annotations

import os
import queue
import signal
import stat
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import requests

from smoke_tests.portforward import ForwardSpec, PortForward, PortForwardError, http_probe
from smoke_tests.process import pid_alive, port_open
from smoke_tests.wait import wait_until

FAKE_KUBECTL = textwrap.dedent('''\
    #!{python}
    """A stand-in for `kubectl port-forward`: prints kubectl's line, then serves HTTP on the port
    (with FAKE_KUBECTL_GATE, a FIFO, only once the test opens it and closes it again)."""
    import http.server, os, re, sys
    if os.environ.get("FAKE_KUBECTL_FAIL"):
        print(os.environ["FAKE_KUBECTL_FAIL"], flush=True)
        sys.exit(1)
    local, remote = next(a for a in sys.argv if re.fullmatch(r"[0-9]+:[0-9]+", a)).split(":")
    print(f"Forwarding from 127.0.0.1:{{local}} -> {{remote}}", flush=True)
    if os.environ.get("FAKE_KUBECTL_GATE"):
        with open(os.environ["FAKE_KUBECTL_GATE"]) as gate:  # blocks until the test opens it
            gate.read()  # and until the test closes it

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"fake gateway {{os.getpid()}}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", int(local)), Handler).serve_forever()
''')


@pytest.fixture
def fake_kubectl(tmp_path: Path) -> Path:
    path = tmp_path / "kubectl"
    path.write_text(FAKE_KUBECTL.format(python=sys.executable), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def spec_for(kubectl: Path) -> ForwardSpec:
    return ForwardSpec(kubectl=kubectl, namespace="istio-system", target="svc/istio-ingressgateway",
                       remote_port=80)


def get(url: str) -> requests.Response:
    http = requests.Session()
    http.trust_env = False
    return http.get(url, timeout=5)


def test_argv_is_an_argument_list_with_its_own_kubeconfig(tmp_path: Path) -> None:
    spec = ForwardSpec(Path("/bin/kubectl"), "istio-system", "svc/istio-ingressgateway", 80,
                       kubeconfig=tmp_path / "kc", context="kind-kubeflow")
    assert spec.argv(8080) == ["/bin/kubectl", "port-forward", "--address", "127.0.0.1", "-n", "istio-system",
                               "svc/istio-ingressgateway", "8080:80", "--kubeconfig", str(tmp_path / "kc"),
                               "--context", "kind-kubeflow"]


def test_chooses_a_free_port_and_answers(fake_kubectl: Path) -> None:
    with PortForward(spec_for(fake_kubectl), probe=http_probe, ready_timeout=20) as forward:
        assert forward.local_port > 1024
        assert forward.url == f"http://127.0.0.1:{forward.local_port}"
        resp = get(forward.url)
        assert resp.status_code == 200
        assert resp.text == f"fake gateway {forward.pid}"


def test_ready_means_the_port_answers_not_just_the_line(fake_kubectl: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake prints "Forwarding from" and then listens only when the test lets it, as kubectl can
    print the line before the tunnel works. The test lets it only after the forward has probed the
    port and found nothing: `start()` returning before that means the line alone counted as ready."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    monkeypatch.setenv("FAKE_KUBECTL_GATE", str(gate))
    events: queue.Queue[str] = queue.Queue()

    def probe(port: int) -> tuple[bool, str]:
        ok, seen = http_probe(port)
        events.put(f"probe {'answered' if ok else 'found nothing'}")
        return ok, seen

    forward = PortForward(spec_for(fake_kubectl), probe=probe, ready_timeout=30)
    def start() -> None:
        forward.start()
        events.put("ready")
    starting = threading.Thread(target=start, daemon=True)
    starting.start()
    try:
        assert events.get(timeout=30) == "probe found nothing"  # not "ready": nothing listens yet
        with open(gate, "w"):  # let the fake listen (its read returns when this closes)
            pass
        starting.join(timeout=30)
        seen = [events.get_nowait() for _ in range(events.qsize())]
        assert seen[-2:] == ["probe answered", "ready"], seen
        assert set(seen[:-2]) <= {"probe found nothing"}, seen
        assert get(forward.url).status_code == 200
        assert "Forwarding from" in forward.recent_output()
    finally:
        forward.close()


def test_restarts_on_the_same_port_when_kubectl_exits(fake_kubectl: Path) -> None:
    with PortForward(spec_for(fake_kubectl), probe=http_probe, ready_timeout=20) as forward:
        port, first = forward.local_port, forward.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        second = wait_until(lambda: (forward.pid not in (None, first), forward.pid), timeout=20, interval=0.1,
                            what="a new kubectl process")
        forward.wait_ready()
        assert forward.local_port == port
        assert forward.restarts == 1
        assert get(forward.url).text == f"fake gateway {second}"
        assert "restarting" in forward.recent_output()


def test_kubectl_failing_at_once_reports_its_output(fake_kubectl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBECTL_FAIL", 'Error from server (NotFound): services "istio-ingressgateway" not found')
    with pytest.raises(PortForwardError) as failure:
        PortForward(spec_for(fake_kubectl), ready_timeout=20).start()
    assert 'services "istio-ingressgateway" not found' in str(failure.value)
    assert "exited with code 1" in str(failure.value)


def test_close_stops_kubectl_and_frees_the_port(fake_kubectl: Path) -> None:
    forward = PortForward(spec_for(fake_kubectl), ready_timeout=20).start()
    pid, port = forward.pid, forward.local_port
    assert pid is not None
    forward.close()
    assert forward.pid is None
    assert not pid_alive(pid) or _is_zombie(pid)
    assert port_open(port) is False


def _is_zombie(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" in status.read_text()
