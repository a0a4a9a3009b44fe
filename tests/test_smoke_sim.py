"""`pytest smoke_tests --stack <sim stack>` (T0, pytester): the stack's outputs say the cluster is
simulated, so no port-forward is tried, and every check that needs a running pod is NOT RUN with
that reason, while readiness, objects and outputs checks run."""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO

# A plugin that stands in for `pulumi stack output`: a sim stack whose API server is unreachable
# (the checks that do run then fail, which is the point: they ran).
FAKE_OUTPUTS_PLUGIN = '''
import smoke_tests.stack_outputs as stack_outputs

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: sim, cluster: {server: "http://127.0.0.1:9"}}]
contexts: [{name: sim, context: {cluster: sim, user: sim}}]
current-context: sim
users: [{name: sim, user: {token: not-a-real-token}}]
"""

def fake(stack, **_):
    return stack_outputs.StackOutputs.parse({
        "contractVersion": 1, "kubeconfig": KUBECONFIG,
        "ingress": {"namespace": "istio-system", "service": "istio-ingressgateway", "port": 80},
        "users": [{"email": "user@example.com", "profile": "kubeflow-user-example-com"}],
        "profiles": ["kubeflow-user-example-com"], "kubeflowVersion": "v1.11.0",
        "components": ["istio", "profiles"], "clusterProvider": "sim", "objectCount": 573,
    })

stack_outputs.read_stack_outputs = fake
'''


def _sim_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("KFSTACK_STACK", "KFSTACK_KUBECONFIG", "KFSTACK_ENDPOINT", "KFSTACK_LOCAL_TARGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KFSTACK_USER_PASSWORD", "12341234")
    # Any kubectl the suite might start would be this one, and would leave a trace.
    trace = pytester.path / "kubectl-was-run"
    kubectl = pytester.path / "bin" / "kubectl"
    kubectl.parent.mkdir()
    kubectl.write_text(f"#!/bin/sh\ntouch {trace}\nexit 1\n", encoding="utf-8")
    kubectl.chmod(0o755)
    monkeypatch.setenv("KFSTACK_BIN_KUBECTL", str(kubectl))
    pytester.makepyfile(fake_outputs=FAKE_OUTPUTS_PLUGIN)
    pytester.syspathinsert()
    result = pytester.runpytest_subprocess(
        str(REPO / "smoke_tests" / "checks"), "-p", "fake_outputs", "--stack", "sim", "-rs",
        "--wait-timeout", "1", "--smoke-report", "out/smoke.md", "--diagnostics-dir", "out/diag",
        "--rootdir", str(pytester.path), "-p", "no:cacheprovider")
    assert not trace.exists(), "a port-forward was started against a simulated cluster"
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the unreachable API server fails the checks that ran
    return (pytester.path / "out" / "smoke.md").read_text()


def _rows(report: str) -> dict[str, tuple[str, str, str]]:
    """check name -> (capability, result, note) from the report's table."""
    rows = {}
    for line in report.splitlines():
        found = re.match(r"\| `[^`]*::(\S+)` \| ([^|]*) \| ([^|]+) \| [^|]* \| (.*) \|$", line)
        if found:
            rows[found.group(1)] = (found.group(2).strip(), found.group(3).strip(), found.group(4))
    return rows


def test_sim_stack_runs_only_the_checks_that_need_no_pods(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    report = _sim_run(pytester, monkeypatch)
    rows = _rows(report)
    # Checks that need a running pod: NOT RUN, with the reason.
    needs_pods = [n for n, (capability, _, _) in rows.items()
                  if capability in ("portforward", "login", "pipeline", "inference", "storage", "isolation")]
    assert len(needs_pods) > 20, rows
    for name in needs_pods:
        _, outcome, note = rows[name]
        assert outcome == "NOT RUN", (name, outcome, note)
        if name != "test_sample_pipelines_ran_with_kfp_local":  # a local-target check, NOT RUN anywhere else
            assert "stack sim runs on a simulated cluster (clusterProvider: sim)" in note, (name, note)

    # Readiness, objects and outputs: run.
    for name in ("test_every_workload_ready", "test_nothing_crash_looping", "test_every_webhook_has_endpoints",
                 "test_every_user_has_a_profile_they_own", "test_gateway_service_exists"):
        # The fake API server is unreachable, so they fail; what matters is that they ran.
        assert rows[name][1] in ("**FAILED**", "**ERROR**"), (name, rows[name])
    for name in ("test_every_user_owns_a_listed_profile", "test_outputs_name_the_release_components_and_objects"):
        assert rows[name][1] == "passed", (name, rows[name])

    assert "| cluster provider | sim |" in report
    assert "| gateway | n/a |" in report
