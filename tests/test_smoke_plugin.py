"""The smoke suite's pytest plugin, tested in-process with pytester: one option group, environment
mirrors, bad combinations refused before any test, and the report's NOT RUN and redaction."""

from __future__ import annotations

import pytest

SMOKE_ENV = ("KFSTACK_STACK", "KFSTACK_KUBECONFIG", "KFSTACK_CONTEXT", "KFSTACK_ENDPOINT", "KFSTACK_LOCAL_TARGET")

# A conftest that swaps in a fake target, so the report machinery runs without any cluster.
FAKE_TARGET_CONFTEST = '''
import pytest
from smoke_tests.fixtures.target import TARGET_KEY
from smoke_tests.target import KFP, Target, TargetUser

@pytest.fixture(scope="session")
def kf_target(pytestconfig):
    target = Target(kind="endpoint", label="fake endpoint", gateway_url="http://127.0.0.1:9",
                    users=(TargetUser("user@example.com", "kubeflow-user-example-com", None),),
                    unavailable={KFP: "the fake target has no pipelines"},
                    secrets=["hunter2-very-secret"])
    pytestconfig.stash[TARGET_KEY] = target
    return target
'''


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SMOKE_ENV:
        monkeypatch.delenv(name, raising=False)


def test_options_are_one_group_with_their_environment_variables(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert "kubeflow-stacks smoke suite" in out
    for flag, env in (("--stack", "$KFSTACK_STACK"), ("--local-target", "$KFSTACK_LOCAL_TARGET"),
                      ("--endpoint", "$KFSTACK_ENDPOINT"), ("--keep", "$KFSTACK_KEEP"),
                      ("--wait-timeout", "$KFSTACK_WAIT_TIMEOUT")):
        assert flag in out
        assert env in out


def test_plain_test_runs_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "smoke report" not in result.stdout.str()


@pytest.mark.parametrize(("args", "message"), [
    (["--stack", "dev", "--local-target"], "choose one target, not --stack and --local-target"),
    (["--context", "kind-x"], "--context (KFSTACK_CONTEXT) needs --kubeconfig (KFSTACK_KUBECONFIG)"),
    (["--endpoint", "localhost:8080"], "--endpoint 'localhost:8080' must be an http(s) URL"),
    (["--local-target", "--endpoint", "http://x"], "--endpoint does not apply to --local-target"),
    (["--wait-timeout", "0"], "--wait-timeout must be positive"),
])
def test_bad_combinations_fail_before_any_test(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_never():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_environment_mirrors_options(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFSTACK_ENDPOINT", "ftp://nope")
    pytester.makepyfile("def test_never():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--endpoint 'ftp://nope' must be an http(s) URL" in result.stderr.str()


def test_command_line_wins_over_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFSTACK_ENDPOINT", "ftp://nope")
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("--endpoint", "http://127.0.0.1:9", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_check_without_a_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_check(kf_target):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "1 smoke check(s) collected but no target: choose a target: --stack NAME" in result.stderr.str()


def test_report_lists_not_run_with_reason_and_redacts(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_TARGET_CONFTEST)
    pytester.makepyfile('''
import pytest
from smoke_tests.target import KFP

@pytest.mark.login
def test_passes(kf_target):
    assert kf_target.label == "fake endpoint"

@pytest.mark.pipeline
def test_needs_pipelines(kf_target):
    kf_target.require(KFP)

@pytest.mark.inference
def test_fails(kf_target):
    raise AssertionError("token hunter2-very-secret was rejected")
''')
    result = pytester.runpytest("--endpoint", "http://127.0.0.1:9", "--smoke-report", "out/smoke.md",
                                "--diagnostics-dir", "out/diag", "--junitxml", "out/junit.xml")
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    report = (pytester.path / "out" / "smoke.md").read_text()
    assert "**1 passed, 1 failed, 1 not run**" in report
    assert "| `test_report_lists_not_run_with_reason_and_redacts.py::test_needs_pipelines` | pipeline | " \
           "NOT RUN | " in report
    assert "the fake target has no pipelines" in report
    assert "| target | fake endpoint |" in report
    assert "hunter2-very-secret" not in report
    failures = list((pytester.path / "out" / "diag" / "failures").iterdir())
    assert len(failures) == 1
    text = failures[0].read_text()
    assert "token **** was rejected" in text
    assert "hunter2-very-secret" not in text
    junit = (pytester.path / "out" / "junit.xml").read_text()
    assert 'message="NOT RUN: the fake target has no pipelines"' in junit


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    out = result.stdout.str()
    for marker in ("readiness", "portforward", "login", "pipeline", "inference", "storage", "isolation"):
        assert f"@pytest.mark.{marker}:" in out
