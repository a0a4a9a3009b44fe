"""A cluster whose kubelet never starts fails in seconds, naming why (infra/clusters/kubelet.py).

Before, a node whose kubelet exited at start left `kind create cluster` waiting out its timeout,
and the error said only that it timed out. The watcher runs the real create command (here a
stand-in process) and reads the nodes' kubelet state through an injected reader, as
`docker exec ... systemctl show kubelet` gives it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra.clusters import kubelet
from smoke_tests.run import CommandError

JOURNAL = """Started kubelet.service - kubelet: The Kubernetes Node Agent.
I1203 08:01:02.123456     201 server.go:530] "Kubelet version" kubeletVersion="v1.34.2"
E1203 08:01:02.234567     201 run.go:72] "command failed" err="failed to run Kubelet: invalid configuration: \
cgroup [\\"kubelet\\"] has some missing paths: /sys/fs/cgroup/hugetlb/kubelet.slice"
kubelet.service: Main process exited, code=exited, status=1/FAILURE
kubelet.service: Failed with result 'exit-code'.
"""
SHOW_LOOPING = "ActiveState=activating\nNRestarts=7\n"


def test_the_state_reads_systemd_and_picks_kubelets_reason() -> None:
    state = kubelet.state_from("kfstack-control-plane", SHOW_LOOPING, JOURNAL)
    assert (state.active_state, state.restarts, state.crash_looping) == ("activating", 7, True)
    assert state.cause().startswith('E1203 08:01:02.234567     201 run.go:72] "command failed" err="failed to run '
                                    'Kubelet: invalid configuration')
    healthy = kubelet.state_from("n", "ActiveState=active\nNRestarts=0\n", "")
    assert not healthy.crash_looping and healthy.cause() == "kubelet is active"
    assert kubelet.state_from("n", "ActiveState=active\nNRestarts=\n", "").restarts == 0


def _sleeper(seconds: float) -> list[str]:
    return [sys.executable, "-c",
            f"import time; print('creating', flush=True); time.sleep({seconds}); print('done', flush=True)"]


def test_a_crash_looping_kubelet_stops_the_create_with_its_reason(tmp_path: Path) -> None:
    reads: list[str] = []

    diagnostics = tmp_path / "kind-x" / "kubelet-journal.txt"
    stdout = diagnostics.parent / "create.stdout"

    def read(node: str) -> kubelet.KubeletState | None:
        if "creating" not in stdout.read_text():
            return None  # the node does not exist before the create has started
        reads.append(node)
        restarts = len(reads)  # systemd restarts it about once a second: every read sees one more
        return kubelet.state_from(node, f"ActiveState=activating\nNRestarts={restarts}\n",
                                  JOURNAL if restarts >= kubelet.CRASH_RESTARTS else "")

    with pytest.raises(kubelet.KubeletFailedError) as err:
        kubelet.run_watching_kubelet(_sleeper(120), timeout=300, nodes=lambda: ["x-control-plane"],
                                     diagnostics=diagnostics, read=read, interval=0.05)
    assert stdout.read_text().split() == ["creating"]  # stopped, not waited out
    message = str(err.value)
    assert message.startswith(f"kubelet on node x-control-plane exited {kubelet.CRASH_RESTARTS} times and cannot "
                              "start: ")
    assert "missing paths: /sys/fs/cgroup/hugetlb/kubelet.slice" in message and str(diagnostics) in message
    assert "\n" not in message  # one line of cause; the rest is in the file
    assert "Failed with result 'exit-code'" in diagnostics.read_text()
    assert reads == ["x-control-plane"] * kubelet.CRASH_RESTARTS


def test_a_healthy_create_runs_to_its_end(tmp_path: Path) -> None:
    healthy = kubelet.KubeletState("n", "active", 0)
    out = kubelet.run_watching_kubelet(_sleeper(0.3), timeout=60, nodes=lambda: ["n"],
                                       diagnostics=tmp_path / "k.txt", read=lambda _n: healthy, interval=0.05)
    assert out.split() == ["creating", "done"]
    assert not (tmp_path / "k.txt").exists()


def test_the_commands_own_failure_and_timeout_keep_their_output(tmp_path: Path) -> None:
    failing = [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(CommandError) as err:
        kubelet.run_watching_kubelet(failing, timeout=60, nodes=list, diagnostics=tmp_path / "k.txt", interval=0.05)
    assert err.value.returncode == 3 and "boom" in err.value.stderr
    with pytest.raises(CommandError, match="timed out after 1s") as slow:
        kubelet.run_watching_kubelet(_sleeper(60), timeout=1, nodes=list, diagnostics=tmp_path / "k.txt",
                                     interval=0.05)
    assert "done" not in slow.value.stdout  # stopped at its deadline, whatever it had printed by then
