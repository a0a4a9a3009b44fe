"""T0: how the installed-alone suite finds the programs it runs, and attaches to or starts the local
target, without the project's tool locator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smoke_tests import local
from smoke_tests.tools import ToolNotFoundError, find_tool


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def test_the_variable_wins_then_path(tmp_path: Path) -> None:
    mine, on_path = _executable(tmp_path / "mine" / "kubectl"), _executable(tmp_path / "bin" / "kubectl")
    env = {"PATH": str(on_path.parent), "KFSTACK_BIN_KUBECTL": str(mine)}
    assert find_tool("kubectl", env) == str(mine)
    assert find_tool("kubectl", {"PATH": str(on_path.parent)}) == str(on_path)


def test_a_bad_variable_or_a_missing_tool_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFoundError, match=r"^KFSTACK_BIN_KUBE_APISERVER=/nowhere is not an executable file$"):
        find_tool("kube-apiserver", {"KFSTACK_BIN_KUBE_APISERVER": "/nowhere", "PATH": ""})
    with pytest.raises(ToolNotFoundError, match=r"no-such-tool not found on PATH; install it or set "
                                                r"KFSTACK_BIN_NO_SUCH_TOOL to its path"):
        find_tool("no-such-tool", {"PATH": str(tmp_path)})


def test_the_local_target_is_started_with_kfstack_and_stopped_only_if_it_recorded_something(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `kfstack` records its arguments and writes a state whose one process is itself
    running (its command line names the working directory, as the real target's processes do)."""
    import subprocess
    import sys

    calls = tmp_path / "calls"
    workdir = tmp_path / "target"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(workdir)])
    try:
        state = {"workdir": str(workdir), "started": "", "gateway_url": "http://127.0.0.1:9", "model_domain": "d",
                 "ports": {}, "processes": {"gateway": sleeper.pid}, "models": {}, "mnist_samples": "",
                 "mnist_source": "digits", "users": [{"email": "u@x.io", "profile": "p", "password": "pw"}]}
        kfstack = _executable(tmp_path / "bin" / "kfstack", f"""#!{sys.executable}
import json, sys
from pathlib import Path
with open({str(calls)!r}, "a") as fh:
    fh.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[2] == "up":
    Path({str(workdir)!r}).mkdir(parents=True, exist_ok=True)
    Path({str(workdir / local.STATE_FILE)!r}).write_text({json.dumps(state)!r})
""")
        monkeypatch.setenv("KFSTACK_BIN_KFSTACK", str(kfstack))
        assert local.running_state(workdir) is None
        started = local.start(workdir, timeout=5, mnist_source="digits")
        assert (started.gateway_url, started.users[0].password) == ("http://127.0.0.1:9", "pw")
        assert local.running_state(workdir) == started
        local.stop(workdir)
        (workdir / local.STATE_FILE).unlink()
        local.stop(workdir)  # nothing recorded: `kfstack local down` is not run
        assert calls.read_text().splitlines() == [
            f"local up --dir {workdir} --timeout 5 --mnist-source digits", f"local down --dir {workdir}"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_without_kfstack_the_local_target_is_not_started_and_the_message_says_how(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFSTACK_BIN_KFSTACK", str(tmp_path / "absent"))
    with pytest.raises(local.LocalTargetUnavailable, match=r"no local target runs in .*target, and the "
                       r"kubeflow-stacks project, which starts one, is not installed here .*; start it "
                       r"elsewhere with `kfstack local up --dir .*target`"):
        local.start(tmp_path / "target", timeout=5, mnist_source="digits")
