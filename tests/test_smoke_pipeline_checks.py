"""The pipeline checks can fail (T0, pytester): a run that ends FAILED fails
test_hello_pipeline_succeeds with the run's state and failing step, instead of erroring in a
fixture that only ever returned successes. The KFP API is a fake that answers with KFP's own
v2beta1 model objects; the checks and fixtures are the suite's own."""

from __future__ import annotations

import pytest

from tests.helpers import REPO

FAKE_KFP_CONFTEST = '''
import pytest
from types import SimpleNamespace

import kfp_server_api as api
from smoke_tests.fixtures.target import TARGET_KEY
from smoke_tests.target import Target, TargetUser

@pytest.fixture(scope="session")
def kf_target(pytestconfig):
    target = Target(kind="endpoint", label="fake KFP", gateway_url="http://127.0.0.1:9",
                    users=(TargetUser("user@example.com", "kubeflow-user-example-com", None),))
    pytestconfig.stash[TARGET_KEY] = target
    return target

class FakeKfp:
    """Every run ends as RUN_STATE says, with one failing task when it is FAILED."""
    def create_experiment(self, name, namespace):
        return SimpleNamespace(experiment_id="exp-1")
    def delete_experiment(self, experiment_id):
        pass
    def create_run_from_pipeline_func(self, pipeline, **_):
        return SimpleNamespace(run_id="run-1")
    def get_run(self, run_id):
        tasks = [api.V2beta1PipelineTaskDetail(display_name="say-hello", state="FAILED",
                                               error=api.GooglerpcStatus(message="exit code 1: no such module"))]
        return api.V2beta1Run(run_id=run_id, display_name="hello", state="FAILED",
                              error=api.GooglerpcStatus(message="1 task failed"),
                              run_details=api.V2beta1RunDetails(task_details=tasks))
    def delete_run(self, run_id):
        pass

@pytest.fixture(scope="session")
def kfp_client():
    return FakeKfp()
'''


def test_a_failed_hello_run_fails_the_check_with_its_state_and_failing_step(pytester: pytest.Pytester,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KFSTACK_STACK", "KFSTACK_KUBECONFIG", "KFSTACK_LOCAL_TARGET"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(FAKE_KFP_CONFTEST)
    pytester.makepyfile(test_pipeline=(REPO / "smoke_tests" / "checks" / "test_pipeline.py").read_text())
    result = pytester.runpytest("--endpoint", "http://127.0.0.1:9", "-k", "hello_pipeline_succeeds",
                                "--smoke-report", "out/smoke.md", "--diagnostics-dir", "out/diag")
    result.assert_outcomes(failed=1)  # failed, not errored in a fixture
    out = result.stdout.str()
    assert "pipeline run run-1 (kfstack-smoke-hello) ended FAILED" in out
    assert "run error: 1 task failed" in out
    assert "failing steps: say-hello FAILED: exit code 1: no such module" in out


CONCURRENT_KFP_CONFTEST = FAKE_KFP_CONFTEST.replace("class FakeKfp:", "class _Unused:") + '''
import json, os

EVENTS = os.path.join(os.path.dirname(__file__), "events.jsonl")

def note(*event):
    with open(EVENTS, "a") as f:
        f.write(json.dumps(event) + "\\n")

class FakeKfp:
    """Runs end after a number of polls each (the MNIST run FAILED); every call is noted in order."""
    polls_to_end = {"kfstack-smoke-hello": 1, "kfstack-smoke-iris": 3, "kfstack-smoke-mnist": 2}

    def __init__(self):
        self.runs = {}
    def create_experiment(self, name, namespace):
        return SimpleNamespace(experiment_id="exp-1")
    def delete_experiment(self, experiment_id):
        pass
    def create_run_from_pipeline_func(self, pipeline, **_):
        run_id = f"run-{len(self.runs) + 1}"
        self.runs[run_id] = [pipeline.name, 0]
        note("create", pipeline.name)
        return SimpleNamespace(run_id=run_id)
    def get_run(self, run_id):
        name, polls = self.runs[run_id]
        self.runs[run_id][1] = polls = polls + 1
        ended = polls >= self.polls_to_end[name]
        state = ("FAILED" if name.endswith("mnist") else "SUCCEEDED") if ended else "RUNNING"
        note("get", name, state)
        return api.V2beta1Run(run_id=run_id, display_name=name, state=state)
    def delete_run(self, run_id):
        pass

@pytest.fixture(scope="session")
def kfp_client():
    return FakeKfp()

@pytest.fixture(scope="session")
def kube_api():
    pytest.skip("NOT RUN: no Kubernetes API in this fake")
'''


def test_the_three_runs_are_started_together_and_awaited_together(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """hello, iris and MNIST are all created before any is polled, each is polled until it ends and
    not after, and each check gets its own run's outcome (the failed MNIST run fails its check only)."""
    import json

    import smoke_tests.fixtures.kfp as kfp_fixtures

    for name in ("KFSTACK_STACK", "KFSTACK_KUBECONFIG", "KFSTACK_LOCAL_TARGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(kfp_fixtures, "RUN_POLL_S", 0.01)  # pytester runs in this process
    pytester.makeconftest(CONCURRENT_KFP_CONFTEST)
    pytester.makepyfile(test_pipeline=(REPO / "smoke_tests" / "checks" / "test_pipeline.py").read_text())
    result = pytester.runpytest_inprocess("--endpoint", "http://127.0.0.1:9", "-k", "succeeds",
                                          "--smoke-report", "out/smoke.md", "--diagnostics-dir", "out/diag")
    result.assert_outcomes(passed=2, failed=1)
    assert "pipeline run run-3 (kfstack-smoke-mnist) ended FAILED" in result.stdout.str()
    events = [json.loads(line) for line in (pytester.path / "events.jsonl").read_text().splitlines()]
    assert events[:3] == [["create", "kfstack-smoke-hello"], ["create", "kfstack-smoke-iris"],
                          ["create", "kfstack-smoke-mnist"]]
    gets = [tuple(e[1:]) for e in events[3:]]
    assert all(e[0] == "get" for e in events[3:])
    # One poll reads every unfinished run; an ended run is not read again.
    assert gets == [("kfstack-smoke-hello", "SUCCEEDED"), ("kfstack-smoke-iris", "RUNNING"),
                    ("kfstack-smoke-mnist", "RUNNING"),
                    ("kfstack-smoke-iris", "RUNNING"), ("kfstack-smoke-mnist", "FAILED"),
                    ("kfstack-smoke-iris", "SUCCEEDED")]
