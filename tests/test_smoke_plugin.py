"""The smoke suite's pytest plugin, tested in-process with pytester: one option group, environment
mirrors, bad combinations refused before any test, and the report's NOT RUN and redaction."""

from __future__ import annotations

import re
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

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
    assert "**1 passed, 1 failed, 0 errors, 1 not run**" in report
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


# --- the report: passed only when the call passed; totals agree with pytest and JUnit ------------

REPORT_CHECKS = '''
import pytest

@pytest.fixture(scope="session")
def broken(kf_target):
    raise RuntimeError("the fixture crashed")

@pytest.mark.login
def test_a_passes(kf_target):
    pass

@pytest.mark.login
def test_b_fails(kf_target):
    raise AssertionError("wrong answer")

@pytest.mark.storage
def test_c_errors_in_setup(broken):
    pass

@pytest.mark.storage
def test_d_passes(kf_target):
    pass

@pytest.mark.storage
def test_e_also_errors(broken):
    pass

@pytest.mark.inference
def test_f_passes(kf_target):
    pass
'''


def _junit_totals(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def _report_totals(text: str) -> dict[str, int]:
    found = re.search(r"\*\*(\d+) passed, (\d+) failed, (\d+) errors, (\d+) not run\*\*", text)
    assert found, text
    return dict(zip(("passed", "failed", "errors", "not run"), map(int, found.groups()), strict=True))


def _run_report(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str, dict[str, int]]:
    pytester.makeconftest(FAKE_TARGET_CONFTEST)
    pytester.makepyfile(test_checks=REPORT_CHECKS)
    result = pytester.runpytest("--endpoint", "http://127.0.0.1:9", "--smoke-report", "out/smoke.md",
                                "--diagnostics-dir", "out/diag", "--junitxml", "out/junit.xml", *args)
    report = (pytester.path / "out" / "smoke.md").read_text()
    return result, report, _junit_totals(pytester.path / "out" / "junit.xml")


def _row(report: str, name: str) -> str:
    return next(line for line in report.splitlines() if f"test_checks.py::{name}`" in line and "|" in line)


def test_report_totals_agree_with_pytest_and_junit_on_a_full_run(pytester: pytest.Pytester) -> None:
    result, report, junit = _run_report(pytester)
    outcomes = result.parseoutcomes()
    totals = _report_totals(report)
    assert totals == {"passed": 3, "failed": 1, "errors": 2, "not run": 0}
    assert (outcomes["passed"], outcomes["failed"], outcomes["errors"]) == (3, 1, 2)
    assert (junit["passed"], junit["failures"], junit["errors"], junit["skipped"]) == (3, 1, 2, 0)
    assert "| **ERROR** |" in _row(report, "test_c_errors_in_setup")
    assert "setup failed: RuntimeError: the fixture crashed" in _row(report, "test_c_errors_in_setup")
    assert "INCOMPLETE" not in report


def test_report_after_x_marks_unrun_checks_not_run(pytester: pytest.Pytester) -> None:
    """`-x`: pytest stops at the first failure; the checks after it never ran and must not pass."""
    result, report, junit = _run_report(pytester, "-x")
    outcomes = result.parseoutcomes()
    totals = _report_totals(report)
    assert totals == {"passed": 1, "failed": 1, "errors": 0, "not run": 4}
    assert (outcomes.get("passed", 0), outcomes.get("failed", 0)) == (1, 1)
    assert (junit["passed"], junit["failures"], junit["errors"]) == (totals["passed"], totals["failed"], 0)
    row = _row(report, "test_f_passes")
    assert "| NOT RUN |" in row
    assert "never started: the run stopped early (stopping after 1 failures)" in row


def test_report_after_maxfail_counts_errors_and_stops(pytester: pytest.Pytester) -> None:
    result, report, junit = _run_report(pytester, "--maxfail=2")
    outcomes = result.parseoutcomes()
    totals = _report_totals(report)
    assert totals == {"passed": 1, "failed": 1, "errors": 1, "not run": 3}
    assert (outcomes.get("passed", 0), outcomes.get("failed", 0), outcomes.get("errors", 0)) == (1, 1, 1)
    assert (junit["passed"], junit["failures"], junit["errors"]) == (1, 1, 1)
    assert "| NOT RUN |" in _row(report, "test_d_passes")
    assert "| NOT RUN |" in _row(report, "test_f_passes")


def test_report_of_a_crashing_session_fixture_passes_nothing(pytester: pytest.Pytester) -> None:
    """A crash in the target fixture itself: every check errors, none passes."""
    pytester.makeconftest('''
import pytest

@pytest.fixture(scope="session")
def kf_target():
    raise RuntimeError("could not reach the stack")
''')
    pytester.makepyfile(test_checks=REPORT_CHECKS)
    result = pytester.runpytest("--endpoint", "http://127.0.0.1:9", "--smoke-report", "out/smoke.md",
                                "--diagnostics-dir", "out/diag", "--junitxml", "out/junit.xml")
    report = (pytester.path / "out" / "smoke.md").read_text()
    junit = _junit_totals(pytester.path / "out" / "junit.xml")
    assert result.parseoutcomes()["errors"] == 6
    assert _report_totals(report) == {"passed": 0, "failed": 0, "errors": 6, "not run": 0}
    assert junit["errors"] == 6
    assert "setup failed: RuntimeError: could not reach the stack" in _row(report, "test_a_passes")


def test_report_counts_only_selected_checks(pytester: pytest.Pytester) -> None:
    """Checks deselected with -m are not in the report at all (and certainly not passed)."""
    _, report, junit = _run_report(pytester, "-m", "inference")
    assert _report_totals(report) == {"passed": 1, "failed": 0, "errors": 0, "not run": 0}
    assert junit["tests"] == 1
    assert "test_a_passes" not in report


def test_report_of_a_killed_run_is_marked_incomplete(pytester: pytest.Pytester) -> None:
    """A run killed outright never reaches sessionfinish: the report written so far says so."""
    pytester.makeconftest(FAKE_TARGET_CONFTEST)
    pytester.makepyfile(test_checks='''
import os, signal
import pytest

@pytest.mark.login
def test_a_passes(kf_target):
    pass

@pytest.mark.login
def test_b_is_killed(kf_target):
    os.kill(os.getpid(), signal.SIGKILL)

@pytest.mark.login
def test_c_never_reached(kf_target):
    pass
''')
    result = pytester.runpytest_subprocess("--endpoint", "http://127.0.0.1:9", "--smoke-report", "out/smoke.md",
                                           "--diagnostics-dir", "out/diag")
    assert result.ret == -signal.SIGKILL
    report = (pytester.path / "out" / "smoke.md").read_text()
    assert "INCOMPLETE" in report
    assert _report_totals(report) == {"passed": 1, "failed": 0, "errors": 0, "not run": 2}
    assert "never finished" in _row(report, "test_b_is_killed")


def test_report_counts_a_check_module_that_cannot_be_collected(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_TARGET_CONFTEST)
    pytester.makepyfile(test_good="import pytest\n\n@pytest.mark.login\ndef test_ok(kf_target):\n    pass\n",
                        test_broken="import no_such_module_here\n")
    result = pytester.runpytest("--endpoint", "http://127.0.0.1:9", "--smoke-report", "out/smoke.md",
                                "--diagnostics-dir", "out/diag", "--junitxml", "out/junit.xml")
    report = (pytester.path / "out" / "smoke.md").read_text()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert _report_totals(report)["errors"] == 1 == _junit_totals(pytester.path / "out" / "junit.xml")["errors"]
    assert "collection failed: E   ModuleNotFoundError: No module named 'no_such_module_here'" in report
    assert _report_totals(report)["passed"] == 0
