"""The table `./scripts/test` ends with (infra/ci/budget.py) and the tier record it is built from
(infra/ci/tiers.py): a row per stage and per tier with passed / failed / NOT RUN and wall time,
a failing stage still printed, a crash never shown as a pass, and the warning past 40 minutes.
The script itself is run against stub tools, so its stages and exit code are tested too."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from infra.ci.budget import (
    BUDGET_S,
    FRESH_REPORT,
    SESSION_ROW,
    SMOKE_ROW,
    Row,
    Stage,
    budget_warning,
    build_rows,
    duration,
    fresh_note,
    main,
    table,
    total_row,
)
from infra.ci.tiers import CaseRecord, SessionRecord, read_record
from tests.helpers import REPO


def case(nodeid: str, tier: str, outcome: str, seconds: float) -> CaseRecord:
    return json.loads(json.dumps({"nodeid": nodeid, "tier": tier, "outcome": outcome, "seconds": seconds}))


PROJECT: SessionRecord = {"tests": [
    case("tests/test_a.py::test_unit", "unit", "passed", 1.5),
    case("tests/test_a.py::test_unit_skip", "unit", "not run", 0.0),
    case("tests/test_r.py::test_render", "render", "passed", 30.0),
    case("tests/test_s.py::test_up", "sim", "passed", 100.0),
    case("tests/test_s.py::test_down", "sim", "failed", 20.0),
    case("tests/test_l.py::test_kind", "live", "not run", 0.5),
    case("tests/test_f.py::test_fresh", "fresh", "not run", 0.1),
], "collection_errors": 0}
SMOKE: SessionRecord = {"tests": [case("smoke_tests/x.py::test_login", "unit", "passed", 3.0),
                                  case("smoke_tests/x.py::test_pipeline", "unit", "not run", 0.0)],
                        "collection_errors": 0}
STAGES = {"ruff": Stage("ruff", 0, 2.0), "mypy": Stage("mypy", 0, 10.0), "tests": Stage("tests", 1, 160.0),
          "smoke": Stage("smoke", 0, 40.0)}


def by_name(rows: list[Row]) -> dict[str, Row]:
    return {r.name: r for r in rows}


def counts(output: str) -> dict[str, tuple[int, int, int]]:
    """(passed, failed, NOT RUN) of each row of a printed table."""
    rows = re.findall(r"^(\S.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d\S*(?: \d\S*)?$", output, re.MULTILINE)
    return {name: (int(p), int(f), int(n)) for name, p, f, n in rows}


def test_a_row_per_stage_and_per_tier_with_counts_and_times() -> None:
    rows = by_name(build_rows(STAGES, PROJECT, SMOKE))
    assert list(rows) == ["ruff", "mypy", "unit (T0)", "render (T1)", "sim (T2)", "live (T3)", "fresh machine",
                          SESSION_ROW, SMOKE_ROW]
    assert rows["ruff"] == Row("ruff", passed=1, seconds=2.0)
    assert rows["unit (T0)"] == Row("unit (T0)", passed=1, not_run=1, seconds=1.5)
    assert rows["sim (T2)"] == Row("sim (T2)", passed=1, failed=1, seconds=120.0)
    assert rows["live (T3)"].not_run == 1 and rows["fresh machine"].not_run == 1
    # The session's wall time not spent in any test (collection, the rest) is a row of its own, so the
    # times add up to the stage's; the session's failure is the failed test's, not counted twice.
    assert rows[SESSION_ROW].seconds == pytest.approx(160.0 - 152.1)
    assert rows[SESSION_ROW] == Row(SESSION_ROW, seconds=rows[SESSION_ROW].seconds)
    assert rows[SMOKE_ROW] == Row(SMOKE_ROW, passed=1, not_run=1, seconds=40.0)


def test_the_total_counts_every_row_and_takes_the_command_s_wall_time() -> None:
    rows = build_rows(STAGES, PROJECT, SMOKE)
    total = total_row(rows, 215.0)
    assert total == Row("total", passed=6, failed=1, not_run=4, seconds=215.0)
    text = table(rows, total)
    lines = text.splitlines()
    assert lines[0].split() == ["stage", "passed", "failed", "NOT", "RUN", "time"]
    assert lines[-1].split() == ["total", "6", "1", "4", "3m", "35s"]
    assert counts(text)["sim (T2)"] == (1, 1, 0)
    assert next(line for line in lines if line.startswith("sim (T2) ")).endswith(" 2m 00s")


def test_a_crashed_session_is_a_failure_not_an_empty_pass() -> None:
    """A session that exits non-zero with no failed test and no record (killed, interrupted,
    nothing collected) fails its session row; a stage that never ran is NOT RUN."""
    stages = {**STAGES, "tests": Stage("tests", 2, 5.0)}
    rows = by_name(build_rows(stages, None, None))
    assert rows[SESSION_ROW].failed == 1
    assert all(rows[name] == Row(name) for name in ("unit (T0)", "render (T1)", "sim (T2)"))
    assert rows[SMOKE_ROW].failed == 1  # exit 0 but no record: its counts are unknown, not zero
    missing = by_name(build_rows({}, None, None))
    assert missing["ruff"].not_run == 1 and missing[SESSION_ROW].not_run == 1 and missing[SMOKE_ROW].not_run == 1


def test_collection_errors_are_failures_of_the_session() -> None:
    record: SessionRecord = {"tests": [], "collection_errors": 2}
    rows = by_name(build_rows({**STAGES, "tests": Stage("tests", 2, 5.0)}, record, SMOKE))
    assert rows[SESSION_ROW].failed == 2


def test_past_forty_minutes_the_warning_names_the_three_slowest_stages() -> None:
    rows = [Row("ruff", seconds=3), Row("live (T3)", seconds=900), Row("sim (T2)", seconds=700),
            Row("smoke (local target)", seconds=300), Row("unit (T0)", seconds=400)]
    assert budget_warning(rows, Row("total", seconds=BUDGET_S)) is None
    warning = budget_warning(rows, Row("total", seconds=BUDGET_S + 61))
    assert warning == ("WARNING: the test command took 41m 01s, over its 40m 00s budget; slowest stages: "
                       "live (T3) 15m 00s, sim (T2) 11m 40s, unit (T0) 6m 40s")


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (0.04, 59.94, 60, 754.4, 3600, 5000)] == [
        "0.0s", "59.9s", "1m 00s", "12m 34s", "1h 00m", "1h 23m"]


def test_the_fresh_container_s_own_time_is_printed_when_it_ran_beside(tmp_path: Path) -> None:
    assert fresh_note(tmp_path / FRESH_REPORT) is None  # it did not run: no line
    (tmp_path / FRESH_REPORT).write_text("not json")
    assert fresh_note(tmp_path / FRESH_REPORT) is None
    (tmp_path / FRESH_REPORT).write_text(json.dumps({"container_seconds": 1265.4}))
    note = fresh_note(tmp_path / FRESH_REPORT)
    assert note is not None and "21m 05s beside the other tests" in note


def _write_stages(path: Path, stages: dict[str, tuple[int, float]]) -> None:
    path.write_text("".join(f"{k}\t{code}\t1000,5\t{1000.5 + s}\n" for k, (code, s) in stages.items()))


def test_main_prints_the_table_and_exits_non_zero_when_a_stage_failed(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "project.json").write_text(json.dumps(PROJECT))
    (tmp_path / "smoke.json").write_text(json.dumps(SMOKE))
    args = ["--stages", str(tmp_path / "stages.tsv"), "--project", str(tmp_path / "project.json"),
            "--smoke", str(tmp_path / "smoke.json")]
    _write_stages(tmp_path / "stages.tsv", {"ruff": (1, 2), "mypy": (0, 10), "tests": (0, 160), "smoke": (0, 40)})
    assert main(args) == 1
    out = capsys.readouterr().out
    assert counts(out)["ruff"] == (0, 1, 0)
    assert "WARNING" not in out
    _write_stages(tmp_path / "stages.tsv", {"ruff": (0, 2), "mypy": (0, 10), "tests": (0, 2500), "smoke": (0, 40)})
    (tmp_path / "project.json").write_text(json.dumps({"tests": PROJECT["tests"][:4], "collection_errors": 0}))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert counts(out)["total"] == (6, 0, 2)
    assert out.splitlines()[-1].startswith("WARNING: the test command took 42m 32s")
    (tmp_path / "stages.tsv").unlink()
    assert main(args) == 1  # no stage ran: nothing passed


# ---------------------------------------------------------------------------------------------
# The tier record, written by the plugin from one real pytest session (in-process)

TIERED_TESTS = '''
import pytest

def test_unit():
    pass

@pytest.mark.render
def test_render():
    pass

@pytest.mark.sim
def test_sim_fails():
    assert False

@pytest.mark.live
def test_live_skips():
    pytest.skip("NOT RUN: no container runtime")

@pytest.mark.live
@pytest.mark.fresh
def test_fresh():
    pass

@pytest.mark.parametrize("kind", ["sim", "live"])
def test_param_ids_are_not_markers(kind):
    pass

@pytest.fixture
def broken():
    raise RuntimeError("set-up failed")

def test_setup_error(broken):
    pass

@pytest.mark.sim
def test_deselected():
    pass
'''


def test_the_plugin_records_each_test_s_tier_and_outcome_from_its_markers(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n  render\n  sim\n  live\n  fresh\n")
    pytester.makepyfile(test_tiers=TIERED_TESTS)
    record_path = pytester.path / "out" / "tiers.json"
    result = pytester.runpytest("-p", "infra.ci.tiers", "--tier-record", str(record_path), "-k", "not deselected")
    result.assert_outcomes(passed=5, failed=1, skipped=1, errors=1, deselected=1)
    record = read_record(record_path)
    assert record is not None and record["collection_errors"] == 0
    got = {t["nodeid"].split("::")[1]: (t["tier"], t["outcome"]) for t in record["tests"]}
    assert got == {
        "test_unit": ("unit", "passed"), "test_render": ("render", "passed"), "test_sim_fails": ("sim", "failed"),
        "test_live_skips": ("live", "not run"), "test_fresh": ("fresh", "passed"),
        "test_param_ids_are_not_markers[sim]": ("unit", "passed"),
        "test_param_ids_are_not_markers[live]": ("unit", "passed"),
        "test_setup_error": ("unit", "failed"), "test_deselected": ("sim", "not run")}
    assert all(t["seconds"] >= 0 for t in record["tests"])


def test_without_the_option_the_plugin_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    pytester.runpytest("-p", "infra.ci.tiers").assert_outcomes(passed=1)
    assert not list(pytester.path.rglob("*.json"))


def test_a_module_that_cannot_be_collected_is_counted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="import no_such_module_here\n", test_ok="def test_ok():\n    pass\n")
    path = pytester.path / "tiers.json"
    pytester.runpytest("-p", "infra.ci.tiers", "--tier-record", str(path), "--continue-on-collection-errors")
    record = read_record(path)
    assert record is not None and record["collection_errors"] == 1


# ---------------------------------------------------------------------------------------------
# scripts/test itself, with stub tools: every stage runs, the table prints, the exit code tells

STUB_PYTEST = '''#!{python}
import json, sys
from pathlib import Path
args = sys.argv[1:]
path = Path(args[args.index("--tier-record") + 1])
smoke = args[0] == "smoke_tests"
tests = ([{{"nodeid": "s::t", "tier": "unit", "outcome": "passed", "seconds": 0.2}}] if smoke else
         [{{"nodeid": "t::u", "tier": "unit", "outcome": "passed", "seconds": 0.1}},
          {{"nodeid": "t::r", "tier": "render", "outcome": "passed", "seconds": 0.3}},
          {{"nodeid": "t::l", "tier": "live", "outcome": "not run", "seconds": 0.0}}])
path.write_text(json.dumps({{"tests": tests, "collection_errors": 0}}))
print("stub pytest", " ".join(args))
'''


def _stub(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_scripts_test_runs_every_stage_after_a_failure_then_prints_the_table(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("test", "siblings.sh"):
        shutil.copy2(REPO / "scripts" / name, checkout / "scripts" / name)
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    _stub(bin_dir / "ruff", "#!/bin/sh\necho 'E999 stub lint failure'\nexit 1\n")
    _stub(bin_dir / "mypy", "#!/bin/sh\necho 'Success: stub'\n")
    _stub(bin_dir / "kfstack", "#!/bin/sh\nexit 1\n")
    _stub(bin_dir / "pytest", STUB_PYTEST.format(python=sys.executable))
    _stub(bin_dir / "python", f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" "$@"\n')
    env = {**os.environ, "KFSTACK_MANIFESTS": str(tmp_path), "KFSTACK_MANIFESTS_PREVIOUS": str(tmp_path)}
    proc = subprocess.run(["bash", str(checkout / "scripts" / "test"), "-k", "stub"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("stub pytest tests ") and line.endswith(" -k stub") for line in lines), proc.stdout
    assert any(line.startswith("stub pytest smoke_tests ") for line in lines), proc.stdout
    rows = counts(proc.stdout)
    assert rows["ruff"] == (0, 1, 0)
    assert rows["mypy"] == (1, 0, 0)
    assert rows["render (T1)"] == (1, 0, 0) and rows["live (T3)"] == (0, 0, 1)
    assert rows[SMOKE_ROW] == (1, 0, 0)
    assert rows["total"] == (4, 1, 1)
