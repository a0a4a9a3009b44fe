"""The Markdown summary (and, on failure, the diagnostics bundle) of a smoke run.

JUnit XML is pytest's own (`--junitxml`). This adds what a reader of a nightly run wants first:
which target, which versions, each check with its result and duration, and every check that did
not run with the reason, so nothing that was skipped can pass for a success.

A check starts as NOT RUN and becomes `passed` only when its call phase passed and its setup and
teardown did too. A failed call is `failed`; a failed setup or teardown is `error` (pytest's and
JUnit's word); a skip is NOT RUN with its reason; a check the session never reached (`-x`,
`--maxfail`, Ctrl-C, a crash) stays NOT RUN and says why. The report is rewritten after every
check, so a run that is killed outright leaves a report marked incomplete, never a stale success.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smoke_tests.settings import SmokeSettings
from smoke_tests.target import NOT_RUN, Target

CHECK_MARKERS = ("readiness", "objects", "outputs", "portforward", "login", "pipeline", "inference", "storage",
                 "isolation")
PASSED, FAILED, ERROR, NOT_RUN_OUTCOME = "passed", "failed", "error", "not run"
OUTCOMES = (PASSED, FAILED, ERROR, NOT_RUN_OUTCOME)
NEVER_STARTED = "never started: the run ended before this check"
KILLED = "never finished: the run was stopped before this check completed (killed or still running)"


@dataclass
class CheckResult:
    nodeid: str
    markers: list[str]
    outcome: str = NOT_RUN_OUTCOME
    duration: float = 0.0
    note: str = NEVER_STARTED
    failure: str = ""
    phases: dict[str, str] = field(default_factory=dict)  # when -> passed | failed | skipped
    skipped_by_pytest: bool = False  # a skip pytest reported (JUnit lists it as skipped)

    def settle(self) -> None:
        """The outcome from the phases seen so far; only a passed call with clean set-up and
        teardown is a pass."""
        setup, call, teardown = (self.phases.get(w) for w in ("setup", "call", "teardown"))
        if setup == "failed":
            self.outcome = ERROR
        elif call == "failed":
            self.outcome = FAILED
        elif teardown == "failed":
            self.outcome = ERROR
        elif call == "passed" and setup == "passed" and teardown == "passed":
            self.outcome = PASSED
        elif "skipped" in (setup, call):
            self.outcome = NOT_RUN_OUTCOME
        elif setup is not None or call is not None:
            self.outcome = NOT_RUN_OUTCOME
            self.note = KILLED


def _note(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.skipped and hasattr(report, "wasxfail"):
        return f"expected failure: {report.wasxfail}"
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = getattr(crash, "message", "")
        if message:
            return str(message)
        lines = report.longreprtext.strip().splitlines()
        return lines[-1] if lines else ""
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


@dataclass(eq=False)  # a plugin object: pytest keeps plugins in sets, by identity
class SmokeReport:
    """Registered by the plugin only when a target is selected."""

    config: pytest.Config
    settings: SmokeSettings
    results: dict[str, CheckResult] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    path: Path | None = None
    finished: bool = False
    stop_reason: str = ""

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A check module that cannot be collected is an error of the run, as pytest and JUnit count it."""
        if report.failed:
            lines = report.longreprtext.strip().splitlines()
            self.results[report.nodeid] = CheckResult(report.nodeid, [], outcome=ERROR, failure=report.longreprtext,
                                                      note=f"collection failed: {lines[-1] if lines else ''}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The checks this run will try (after -m/-k deselection), each NOT RUN until it runs."""
        for item in session.items:
            markers = [m for m in CHECK_MARKERS if item.get_closest_marker(m)]
            self.results[item.nodeid] = CheckResult(item.nodeid, markers)
        self._write()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Also redacts a failure's text before JUnit and the terminal see it (tryfirst); its first
        line is the crash message, which pytest's short summary shows."""
        note = _note(report)
        if report.failed:
            from smoke_tests.redact import Redactor

            target = self._target()
            redact = Redactor(target.secrets if target else ())
            note = redact(note)
            report.longrepr = redact(f"{note}\n\n{report.longreprtext}")
        result = self.results.setdefault(report.nodeid, CheckResult(report.nodeid, []))
        result.duration += report.duration
        result.phases[report.when] = report.outcome
        first_problem = result.outcome not in (FAILED, ERROR)
        if report.failed:
            result.failure += f"--- {report.when} ---\n{report.longreprtext}\n"
            if first_problem:
                result.note = note if report.when == "call" else f"{report.when} failed: {note}"
        elif report.skipped:
            result.skipped_by_pytest = True
            if first_problem:
                result.note = note
        result.settle()
        self._write()

    def _target(self) -> Target | None:
        from smoke_tests.fixtures.target import TARGET_KEY

        return self.config.stash.get(TARGET_KEY, None)

    def _stopped_because(self, session: pytest.Session, exitstatus: int) -> str:
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return "the run was interrupted"
        if session.shouldfail:
            return f"the run stopped early ({session.shouldfail})"
        if session.shouldstop:
            return f"the run stopped early ({session.shouldstop})"
        return "the run ended before this check"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.stop_reason = self._stopped_because(session, int(exitstatus))
        for result in self.results.values():
            if result.note == NEVER_STARTED:
                result.note = f"never started: {self.stop_reason}"
        self.finished = True
        self._write()

    def counts(self) -> dict[str, int]:
        return {k: sum(r.outcome == k for r in self.results.values()) for k in OUTCOMES}

    def _write(self) -> None:
        """Rewritten after each check: a run killed midway leaves a report that says so."""
        target = self._target()
        bundle = None
        if self.finished:
            failures = {r.nodeid: r.failure for r in self.results.values() if r.outcome in (FAILED, ERROR)}
            if failures:
                from smoke_tests.diagnostics import write_bundle

                bundle = write_bundle(self.settings.diagnostics_dir, target, failures)
        self.path = self.settings.smoke_report
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(self.markdown(target, bundle), encoding="utf-8")
        tmp.replace(self.path)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.path is not None:
            counts = self.counts()
            terminalreporter.write_line(
                f"kubeflow-stacks smoke report: {self.path} ({self._totals(counts)})")
        if any(r.outcome in (FAILED, ERROR) for r in self.results.values()):
            terminalreporter.write_line(f"diagnostics bundle: {self.settings.diagnostics_dir}")

    @staticmethod
    def _totals(counts: dict[str, int]) -> str:
        return (f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[ERROR]} errors, "
                f"{counts[NOT_RUN_OUTCOME]} not run")

    def markdown(self, target: Target | None, bundle: Path | None) -> str:
        from smoke_tests.redact import Redactor

        redact = Redactor(target.secrets if target else ())
        counts = self.counts()
        started = dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(timespec="seconds")
        lines = ["# Kubeflow smoke test report", ""]
        if not self.finished:
            lines += ["**INCOMPLETE: the run has not finished (or was killed); checks not yet reached are "
                      "NOT RUN.**", ""]
        info = target.summary() if target else {"target": f"not started ({self.settings.target_kind})"}
        info["started (UTC)"] = started
        info["duration"] = f"{time.time() - self.started:.1f} s"
        lines += ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in info.items()), ""]
        skipped = sum(r.outcome == NOT_RUN_OUTCOME and r.skipped_by_pytest for r in self.results.values())
        lines += [f"**{self._totals(counts)}**", ""]
        if counts[NOT_RUN_OUTCOME]:
            lines += [f"Not run: {skipped} skipped by pytest, {counts[NOT_RUN_OUTCOME] - skipped} never "
                      "started or never finished.", ""]
        lines += ["| check | capability | result | duration | note |", "|---|---|---|---|---|"]
        shown = {PASSED: "passed", FAILED: "**FAILED**", ERROR: "**ERROR**", NOT_RUN_OUTCOME: "NOT RUN"}
        for r in self.results.values():
            note = r.note.removeprefix(f"{NOT_RUN}: ") if r.outcome != PASSED else ""
            lines.append(f"| `{r.nodeid}` | {', '.join(r.markers) or '-'} | {shown[r.outcome]} | "
                         f"{r.duration:.1f} s | {_cell(note)} |")
        not_run = [r for r in self.results.values() if r.outcome == NOT_RUN_OUTCOME]
        if not_run:
            lines += ["", "## Not run, and why", ""]
            lines += [f"- `{r.nodeid}`: {r.note.removeprefix(f'{NOT_RUN}: ')}" for r in not_run]
        if bundle is not None:
            lines += ["", "## Diagnostics", "", f"Bundle (secrets redacted): `{bundle}`"]
        return redact("\n".join(lines) + "\n")
