"""The Markdown summary (and, on failure, the diagnostics bundle) of a smoke run.

JUnit XML is pytest's own (`--junitxml`). This adds what a reader of a nightly run wants first:
which target, which versions, each check with its result and duration, and every check that did
not run with the reason, so nothing that was skipped can pass for a success.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smoke_tests.settings import SmokeSettings
from smoke_tests.target import NOT_RUN, Target

CHECK_MARKERS = ("readiness", "portforward", "login", "pipeline", "inference", "storage", "isolation")


@dataclass
class CheckResult:
    nodeid: str
    markers: list[str]
    outcome: str = "passed"
    duration: float = 0.0
    note: str = ""
    failure: str = ""


def _note(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        return str(getattr(crash, "message", "") or report.longreprtext.strip().splitlines()[-1:] or "")
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


@dataclass
class SmokeReport:
    """Registered by the plugin only when a target is selected."""

    config: pytest.Config
    settings: SmokeSettings
    results: dict[str, CheckResult] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    path: Path | None = None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            markers = [m for m in CHECK_MARKERS if item.get_closest_marker(m)]
            self.results[item.nodeid] = CheckResult(item.nodeid, markers)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Also redacts a failure's text before JUnit and the terminal see it (tryfirst)."""
        if report.failed:
            from smoke_tests.redact import Redactor

            target = self._target()
            report.longrepr = Redactor(target.secrets if target else ())(report.longreprtext)
        result = self.results.setdefault(report.nodeid, CheckResult(report.nodeid, []))
        result.duration += report.duration
        if report.failed:
            if result.outcome != "failed":
                result.note = _note(report) if report.when == "call" else f"{report.when} failed: {_note(report)}"
            result.outcome = "failed"
            result.failure += f"--- {report.when} ---\n{report.longreprtext}\n"
        elif report.skipped and result.outcome == "passed":
            result.outcome = "not run"
            result.note = _note(report)

    def _target(self) -> Target | None:
        from smoke_tests.fixtures.target import TARGET_KEY

        return self.config.stash.get(TARGET_KEY, None)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        target = self._target()
        failures = {r.nodeid: r.failure for r in self.results.values() if r.outcome == "failed"}
        bundle = None
        if failures:
            from smoke_tests.diagnostics import write_bundle

            bundle = write_bundle(self.settings.diagnostics_dir, target, failures)
        self.path = self.settings.smoke_report
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.markdown(target, bundle), encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.path is not None:
            terminalreporter.write_line(f"kubeflow-stacks smoke report: {self.path}")
        if any(r.outcome == "failed" for r in self.results.values()):
            terminalreporter.write_line(f"diagnostics bundle: {self.settings.diagnostics_dir}")

    def markdown(self, target: Target | None, bundle: Path | None) -> str:
        from smoke_tests.redact import Redactor

        redact = Redactor(target.secrets if target else ())
        counts = {k: sum(r.outcome == k for r in self.results.values()) for k in ("passed", "failed", "not run")}
        started = dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(timespec="seconds")
        lines = ["# Kubeflow smoke test report", ""]
        info = target.summary() if target else {"target": f"not started ({self.settings.target_kind})"}
        info["started (UTC)"] = started
        info["duration"] = f"{time.time() - self.started:.1f} s"
        lines += ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in info.items()), ""]
        lines += [f"**{counts['passed']} passed, {counts['failed']} failed, {counts['not run']} not run**", ""]
        lines += ["| check | capability | result | duration | note |", "|---|---|---|---|---|"]
        for r in self.results.values():
            shown = "**FAILED**" if r.outcome == "failed" else ("NOT RUN" if r.outcome == "not run" else "passed")
            note = r.note.removeprefix(f"{NOT_RUN}: ")
            lines.append(f"| `{r.nodeid}` | {', '.join(r.markers) or '-'} | {shown} | {r.duration:.1f} s "
                         f"| {_cell(note)} |")
        not_run = [r for r in self.results.values() if r.outcome == "not run"]
        if not_run:
            lines += ["", "## Not run, and why", ""]
            lines += [f"- `{r.nodeid}`: {r.note.removeprefix(f'{NOT_RUN}: ')}" for r in not_run]
        if bundle is not None:
            lines += ["", "## Diagnostics", "", f"Bundle (secrets redacted): `{bundle}`"]
        return redact("\n".join(lines) + "\n")
