"""The history and the HTML report, from a history of several runs (no cluster needed).

The page is read back and checked for what it says: each check's result per run, the phases over
runs, the latest run's timeline grouped by phase, and the regression flag on the phase that was
made slower (and on no other).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from infra.conformance.history import History
from infra.conformance.record import Check, RunRecord, Step
from infra.conformance.report import regressions, threshold_for, write_report

pytest.importorskip("matplotlib", reason="NOT RUN: the report's charts need matplotlib (a dev dependency)")

BASE_PHASES = {"cluster": 12.0, "base": 2.0, "foundation": 9.0, "cert-manager": 6.0, "applications": 30.0,
               "resources": 4.0}
CHECKS = ("smoke_tests/checks/test_readiness.py::test_every_workload_ready",
          "smoke_tests/checks/test_login.py::test_login_right_password",
          "smoke_tests/checks/test_isolation.py::test_foreign_token_forbidden")


def make_run(i: int, *, applications: float, failing: str | None = None, stack: str = "sim") -> RunRecord:
    phases = dict(BASE_PHASES, applications=applications, foundation=BASE_PHASES["foundation"] + (i % 3) * 0.4)
    checks = [Check(c, "failed" if c == failing else "passed", 1.0 + i,
                    "AssertionError: planted" if c == failing else "") for c in CHECKS]
    timeline = [{"name": f"kubeflow/obj-{n}", "type": "kubernetes:apps/v1:Deployment", "phase": phase,
                 "start": float(n), "end": float(n) + 2.5}
                for n, phase in enumerate(["cluster", "base", "foundation", "applications", "applications"])]
    return RunRecord(stack=stack, release="v1.11.0", run_id=f"2026120{i}T030000Z-{stack}",
                     started=f"2026-12-0{i}T03:00:00+00:00", finished=f"2026-12-0{i}T03:20:00+00:00",
                     status="failed" if failing else "passed", exit_code=6 if failing else 0,
                     failed_step="smoke" if failing else None, tools={"pulumi": "v3.259.0"},
                     steps=[Step("up", "passed", sum(phases.values()))], phases={"up": phases},
                     timelines={"up": timeline}, checks=checks)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Five nights of the sim stack: the last one slower in `applications`, one login failure."""
    path = tmp_path / "history.sqlite"
    runs = [make_run(1, applications=30.0), make_run(2, applications=31.5), make_run(3, applications=29.0,
            failing=CHECKS[1]), make_run(4, applications=30.5), make_run(5, applications=52.0)]
    with History.open(path) as hist:
        for run in runs:
            hist.add(run)
    return path


def test_history_keeps_runs_in_order_and_as_rows(history: Path):
    with History.open(history) as hist:
        runs = hist.runs("sim")
        assert [r.run_id for r in runs] == [f"2026120{i}T030000Z-sim" for i in range(1, 6)]
        latest = hist.latest("sim")
        assert latest is not None and latest.phases["up"]["applications"] == 52.0
        assert hist.runs("sim", limit=2)[0].run_id == "20261204T030000Z-sim"
        assert hist.latest("other") is None
    conn = sqlite3.connect(history)
    failed = conn.execute("SELECT run_id, check_id FROM checks WHERE outcome = 'failed'").fetchall()
    assert failed == [("20261203T030000Z-sim", CHECKS[1])]
    assert conn.execute("SELECT seconds FROM phases WHERE run_id LIKE '20261205%' AND phase = 'applications'"
                        ).fetchone() == (52.0,)


def test_a_run_recorded_twice_replaces_its_rows(tmp_path: Path):
    path = tmp_path / "h.sqlite"
    run = make_run(1, applications=30.0, failing=CHECKS[0])
    with History.open(path) as hist:
        hist.add(run)
        run.checks[0].outcome = "passed"
        hist.add(run)
        latest = hist.latest("sim")
        assert latest is not None and [c.outcome for c in latest.checks] == ["passed"] * 3


def test_regression_flags_only_the_slower_phase(history: Path):
    with History.open(history) as hist:
        found = regressions(hist.runs())
    flagged = {(r.up, r.phase) for r in found if r.flagged}
    assert flagged == {("up", "applications")}
    apps = next(r for r in found if r.phase == "applications")
    assert (apps.median, apps.baseline) == (30.25, 4)


def test_margin_has_a_relative_and_an_absolute_floor():
    # No spread at all: a quarter of the median, or 5 s for short phases.
    assert threshold_for([100.0, 100.0, 100.0]) == (100.0, 125.0)
    assert threshold_for([4.0, 4.0, 4.0]) == (4.0, 9.0)
    # A noisy baseline widens the margin to three robust standard deviations.
    median, threshold = threshold_for([100.0, 80.0, 120.0, 100.0, 60.0])
    assert median == 100.0 and threshold == pytest.approx(100.0 + 3 * 1.4826 * 20.0)


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_report_page_says_what_happened(history: Path, tmp_path: Path):
    out = write_report([history], tmp_path / "report.html")
    page = out.read_text()
    text = _text(page)
    # Self-contained and offline: no scripts, styles or images fetched from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "<script" not in page
    # Latest run and its regression.
    assert "REGRESSION: 1 phase(s) slower than their baseline" in text
    flagged = re.search(r"<tr class=\"flag\">(.*?)</tr>", page.split("<h2>Regressions</h2>")[1], re.S)
    assert flagged is not None
    row = flagged.group(1)
    assert "applications" in row and "52.0" in row and "30.2" in row
    # Each check's result per run: the login check failed in the third run only.
    checks_table = page.split("<h2>Checks over runs</h2>")[1].split("<h2>")[0]
    login_row = next(r for r in checks_table.split("<tr>") if CHECKS[1] in r)
    cells = re.findall(r"<td>(.*?)</td>", login_row)[1:]
    assert ["failed" in c for c in cells] == [False, False, True, False, False]
    assert all("passed" in c for i, c in enumerate(cells) if i != 2)
    # Pictures: inline SVG with their labels as text.
    assert page.count("<svg") == 3
    assert "pulumi up (up) by phase over runs" in page
    timeline = page.split("Timeline of the latest pulumi up (run 20261205T030000Z-sim, up)")[1]
    for label in ("cluster (1)", "base (1)", "foundation (1)", "applications (2)"):
        assert label in timeline
    # Phases over runs, as numbers too.
    phases_table = page.split("<h2>pulumi up (up) by phase over runs</h2>")[1].split("<h2>")[0]
    assert "52.0" in phases_table and "20261201T030000Z-sim" in phases_table


def test_report_of_an_empty_history_says_so(tmp_path: Path):
    page = write_report([tmp_path / "empty.sqlite"], tmp_path / "r.html").read_text()
    assert "No runs recorded yet." in page


def test_too_little_history_flags_nothing(tmp_path: Path):
    path = tmp_path / "h.sqlite"
    with History.open(path) as hist:
        hist.add(make_run(1, applications=30.0))
        hist.add(make_run(2, applications=90.0))
    page = write_report([path], tmp_path / "r.html").read_text()
    assert "Not enough history" in page and "REGRESSION" not in page


def test_each_kind_of_up_is_compared_with_its_own_history(history: Path):
    """An upgrade run last (its ups are "up-from" and "upgrade") does not hide the "up" regression."""
    upgrade = make_run(6, applications=30.0)
    upgrade.phases = {"up-from": dict(BASE_PHASES), "upgrade": dict(BASE_PHASES)}
    with History.open(history) as hist:
        hist.add(upgrade)
        found = regressions(hist.runs())
    assert {(r.up, r.phase) for r in found if r.flagged} == {("up", "applications")}
    assert {r.up for r in found} == {"up"}  # no earlier upgrades to compare with
