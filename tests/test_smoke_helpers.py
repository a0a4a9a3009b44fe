"""The smoke suite's small helpers: the one wait, option resolution, redaction, model payloads."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from smoke_tests.inference import predictions, request_body
from smoke_tests.redact import MASK, Redactor
from smoke_tests.settings import SmokeSettings, problems, resolve
from smoke_tests.target import password_for, users_from_option
from smoke_tests.wait import WaitTimeout, wait_until


def test_wait_returns_the_observation_that_satisfied_it() -> None:
    counter = itertools.count()
    assert wait_until(lambda: (next(counter) >= 2, "seen"), timeout=5, interval=0.01, what="x") == "seen"


def test_wait_timeout_says_what_how_long_and_what_was_last_seen() -> None:
    with pytest.raises(WaitTimeout) as failure:
        wait_until(lambda: (False, {"ready": "0/1"}), timeout=0.2, interval=0.05, what="the widget")
    message = str(failure.value)
    assert message.startswith("timed out after 0s waiting for the widget (")
    assert "last observation: {'ready': '0/1'}" in message
    assert failure.value.attempts >= 2


def test_wait_reports_the_last_error_of_a_retried_exception() -> None:
    def check() -> tuple[bool, str]:
        raise ConnectionRefusedError("nothing listens")

    with pytest.raises(WaitTimeout) as failure:
        wait_until(check, timeout=0.1, interval=0.02, what="a server")
    assert "last error: ConnectionRefusedError: nothing listens" in str(failure.value)


def test_wait_stops_early_when_the_failure_predicate_fires() -> None:
    with pytest.raises(WaitTimeout) as failure:
        wait_until(lambda: (False, "CrashLoopBackOff"), timeout=30, interval=0.01, what="the pod",
                   fail_if=lambda seen: f"it is in {seen}" if seen == "CrashLoopBackOff" else None)
    assert str(failure.value).startswith("gave up waiting for the pod: it is in CrashLoopBackOff (1 attempt(s))")


def test_command_line_first_then_environment_then_default() -> None:
    env = {"KFSTACK_STACK": "nightly", "KFSTACK_WAIT_TIMEOUT": "42", "KFSTACK_LOCAL_TARGET": "1"}
    settings = resolve({"kf_stack": "dev"}, env)
    assert (settings.stack, settings.wait_timeout, settings.local_target) == ("dev", 42.0, True)
    assert settings.smoke_report == Path("reports/smoke.md")
    assert resolve({}, {}).target_kind is None
    assert problems(settings, env) == ["choose one target, not --stack and --local-target"]


def test_ingress_parts() -> None:
    assert SmokeSettings(ingress="gw/my-gateway:8080").ingress_parts() == ("gw", "my-gateway", 8080)


def test_passwords_come_from_the_environment_only() -> None:
    env = {"KFSTACK_USER_PASSWORD": "shared-pass", "KFSTACK_PASSWORD_1": "second-pass"}
    users = users_from_option("a@example.com, b@example.com", env)
    assert [u.profile for u in users] == ["kubeflow-a-example-com", "kubeflow-b-example-com"]
    assert [u.password.reveal() if u.password else None for u in users] == ["shared-pass", "second-pass"]
    assert password_for(0, {}) is None


def test_redaction_masks_known_secrets_and_credential_shapes() -> None:
    redact = Redactor(["s3cr3t-value"])
    text = ("pw s3cr3t-value; Authorization: Bearer abc.def-ghi; cookie oauth2_proxy_kubeflow=xyz123; "
            "token eyJhbGciOi.eyJzdWIiOiJ4In0.sig_nature; password: hunter22; "
            "hash $2b$10$" + "a" * 53)
    assert redact(text) == (f"pw {MASK}; Authorization: Bearer {MASK}; cookie oauth2_proxy_kubeflow={MASK}; "
                            f"token {MASK}; password: {MASK}; hash {MASK}")


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_payloads_for_both_protocols(protocol: str) -> None:
    body = request_body(protocol, [[1.0, 2.0], [3.0, 4.0]])
    if protocol == "v1":
        assert body == {"instances": [[1.0, 2.0], [3.0, 4.0]]}
        assert predictions("v1", {"predictions": [1, 0]}) == [1, 0]
    else:
        assert body == {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64",
                                    "data": [1.0, 2.0, 3.0, 4.0]}]}
        assert predictions("v2", {"outputs": [{"name": "output-0", "data": [1, 0]}]}) == [1, 0]


def test_descendants_include_children_that_left_the_process_group() -> None:
    import contextlib
    import os
    import signal
    import subprocess

    from smoke_tests.process import descendants, pid_alive

    # The second child waits half a second on a pipe nobody writes before it execs setsid: the
    # moment between its fork and setsid(), when both children are still in the group, is made
    # long on purpose. (A check that took "two descendants" to mean "one has left" passed on a quiet
    # machine and failed under load, as in the fresh container.)
    gate, unused = os.pipe()
    script = f"sleep 60 & {{ read -t 0.5 -u {gate}; exec setsid sleep 61; }} & wait"
    parent = subprocess.Popen(["bash", "-c", script], start_new_session=True, pass_fds=(gate,))
    os.close(gate)
    try:
        def groups() -> tuple[bool, dict[int, int]]:
            # setsid leaves the group only once it runs, a moment after its fork shows up.
            seen = {}
            for pid in descendants(parent.pid):
                with contextlib.suppress(ProcessLookupError):
                    seen[pid] = os.getpgid(pid)
            return len(seen) == 2 and len(set(seen.values())) == 2, seen

        found = wait_until(groups, timeout=10, interval=0.1, what="both sleeps started, one in its own session")
        own_group = [pid for pid, group in found.items() if group == parent.pid]
        assert len(own_group) == 1  # setsid took the other one out of the group killpg would reach
    finally:
        tree = descendants(parent.pid)
        os.killpg(parent.pid, signal.SIGKILL)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.wait(timeout=10)
        os.close(unused)
    assert wait_until(lambda: (not any(pid_alive(p) for p in tree), tree), timeout=10, interval=0.1,
                      what="the whole tree gone")
