"""A pytest plugin that records, for each test of a session, its tier, outcome and time.

`./scripts/test` runs the project's tests as one pytest session (collection and session fixtures
are paid once) yet prints a row per tier: `pytest -p infra.ci.tiers --tier-record FILE` writes
FILE at the end of the session, and `infra.ci.budget` reads it. A test's tier comes from its
markers (`fresh` before `live` before `sim` or `standin` before `render`; none is unit), never from its
keywords: a parametrize id such as `sim` is a keyword too. Its outcome is the smoke report's rule
(`CheckResult.settle`): a pass needs clean set-up, call and tear-down; a skip, a deselected test
or one the session never reached is NOT RUN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypedDict

import pytest

from smoke_tests.report import ERROR, FAILED, PASSED, CheckResult

Tier = Literal["unit", "render", "sim", "live", "fresh"]
# The marker that names each tier, most specific first: the fresh-machine test is also `live`. A
# `standin` test runs one of our stand-ins against the real library or server it wraps: tier T2.
MARKED_TIERS: tuple[tuple[str, Tier], ...] = (("fresh", "fresh"), ("live", "live"), ("sim", "sim"),
                                              ("standin", "sim"), ("render", "render"))
Outcome = Literal["passed", "failed", "not run"]


class CaseRecord(TypedDict):
    nodeid: str
    tier: Tier
    outcome: Outcome
    seconds: float


class SessionRecord(TypedDict):
    tests: list[CaseRecord]
    collection_errors: int


def tier_of(item: pytest.Item) -> Tier:
    for marker, tier in MARKED_TIERS:
        if item.get_closest_marker(marker) is not None:
            return tier
    return "unit"


def outcome_of(result: CheckResult) -> Outcome:
    """The smoke report's four outcomes in the table's three columns (an error is a failure)."""
    if result.outcome in (FAILED, ERROR):
        return "failed"
    return "passed" if result.outcome == PASSED else "not run"


class TierRecorder:
    """Registered by `pytest_configure` when `--tier-record` is given."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tiers: dict[str, Tier] = {}
        self.results: dict[str, CheckResult] = {}
        self.collection_errors = 0

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors += 1

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:  # never run, so never passed: NOT RUN in their tier's row
            self.tiers[item.nodeid] = tier_of(item)
            self.results[item.nodeid] = CheckResult(item.nodeid, [])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            self.tiers[item.nodeid] = tier_of(item)
            self.results[item.nodeid] = CheckResult(item.nodeid, [])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.results.setdefault(report.nodeid, CheckResult(report.nodeid, []))
        result.duration += report.duration
        result.phases[report.when] = report.outcome
        result.settle()

    def record(self) -> SessionRecord:
        tests = [CaseRecord(nodeid=nodeid, tier=self.tiers.get(nodeid, "unit"), outcome=outcome_of(result),
                            seconds=round(result.duration, 3))
                 for nodeid, result in self.results.items()]
        return SessionRecord(tests=tests, collection_errors=self.collection_errors)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.record(), indent=1), encoding="utf-8")
        tmp.replace(self.path)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("tier record").addoption(
        "--tier-record", metavar="FILE", type=Path, default=None,
        help="write each test's tier (unit, render, sim, live, fresh), outcome and seconds to FILE (JSON)")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--tier-record")
    if path is not None:
        config.pluginmanager.register(TierRecorder(path), "tier-recorder")


def read_record(path: Path) -> SessionRecord | None:
    """The record a session wrote; None when it wrote none (it crashed, or never started)."""
    try:
        data: SessionRecord = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data
