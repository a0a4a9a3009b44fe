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
