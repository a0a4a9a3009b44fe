"""The table `./scripts/test` ends with, and the budget it is held to.

One row per stage: ruff, mypy, each tier of the project tests (from the session's tier record,
see `infra.ci.tiers`), the fresh-machine test, the rest of that session's time (collection and
what runs outside any test), the smoke suite on the local target; then the total. Each row counts
passed, failed and NOT RUN, so a stage that did not run can never pass for one that did. A stage
that failed still gets its row: the script runs every stage, then this prints the table and exits
non-zero if any stage failed.

CI must finish within 90 minutes and the test command is held to 40 (issue 20); past that, a
warning names the three slowest stages, so a change sees the drift before CI's hard limit does.

    python -m infra.ci.budget --stages reports/stages.tsv --project reports/project-tiers.json \\
        --smoke reports/smoke-tiers.json [--started EPOCH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.ci.tiers import CaseRecord, SessionRecord, Tier, read_record

BUDGET_S = 40 * 60.0
# The tiers' rows in the project session, in the order of the verification ladder.
TIER_ROWS: tuple[tuple[Tier, str], ...] = (
    ("unit", "unit (T0)"), ("render", "render (T1)"), ("sim", "sim (T2)"), ("live", "live (T3)"),
    ("fresh", "fresh machine"))
SESSION_ROW = "project tests: collection, other"
# The script's stages: the key it records, and the row of a stage that is not split into tiers.
LINT_STAGES = (("ruff", "ruff"), ("mypy", "mypy"))
PROJECT_STAGE = "tests"
SMOKE_STAGE, SMOKE_ROW = "smoke", "smoke (local target)"
# The fresh-machine test's container runs beside the other tests; its row is the time the session
# waited for it at its turn, and this file (in reports/) gives the container's own run time.
FRESH_REPORT = "fresh-machine.json"


@dataclass(frozen=True)
class Stage:
    """One stage as the script ran it: its exit code and wall time."""

    key: str
    code: int
    seconds: float


@dataclass(frozen=True)
class Row:
    name: str
    passed: int = 0
    failed: int = 0
    not_run: int = 0
    seconds: float = 0.0


def read_stages(path: Path) -> dict[str, Stage]:
    """The script's lines `key<TAB>exit code<TAB>start<TAB>end` (epoch seconds); a missing file is no stage."""
    stages: dict[str, Stage] = {}
    if not path.is_file():
        return stages
    for line in path.read_text(encoding="utf-8").splitlines():
        key, code, start, end = line.replace(",", ".").split("\t")  # bash writes the locale's decimal point
        stages[key] = Stage(key, int(code), max(0.0, float(end) - float(start)))
    return stages


def _lint_row(name: str, stage: Stage | None) -> Row:
    if stage is None:
        return Row(name, not_run=1)
    return Row(name, passed=int(stage.code == 0), failed=int(stage.code != 0), seconds=stage.seconds)


def _count(name: str, tests: Sequence[CaseRecord], seconds: float) -> Row:
    return Row(name, passed=sum(t["outcome"] == "passed" for t in tests),
               failed=sum(t["outcome"] == "failed" for t in tests),
               not_run=sum(t["outcome"] == "not run" for t in tests), seconds=seconds)


def _beyond_tests(stage: Stage | None, record: SessionRecord | None, failed: int) -> tuple[int, int]:
    """(failed, NOT RUN) of a pytest session beyond its tests: its collection errors, plus one for
    an exit code that no failed test explains (a crash, an interruption, nothing collected) or a
    record that is missing (its counts unknown); one NOT RUN when the session never ran."""
    if stage is None:
        return 0, 1
    errors = record["collection_errors"] if record else 0
    return errors + int(record is None or (stage.code != 0 and failed == 0 and errors == 0)), 0


def build_rows(stages: dict[str, Stage], project: SessionRecord | None, smoke: SessionRecord | None) -> list[Row]:
    rows = [_lint_row(name, stages.get(key)) for key, name in LINT_STAGES]
    tests = project["tests"] if project else []
    tiers = [_count(name, mine := [t for t in tests if t["tier"] == tier], sum(t["seconds"] for t in mine))
             for tier, name in TIER_ROWS]
    session = stages.get(PROJECT_STAGE)
    failed, not_run = _beyond_tests(session, project, sum(r.failed for r in tiers))
    rest = (session.seconds if session else 0.0) - sum(r.seconds for r in tiers)
    rows += [*tiers, Row(SESSION_ROW, failed=failed, not_run=not_run, seconds=max(0.0, rest))]
    stage = stages.get(SMOKE_STAGE)
    counted = _count(SMOKE_ROW, smoke["tests"] if smoke else [], stage.seconds if stage else 0.0)
    failed, not_run = _beyond_tests(stage, smoke, counted.failed)
    rows.append(Row(SMOKE_ROW, counted.passed, counted.failed + failed, counted.not_run + not_run, counted.seconds))
    return rows


def total_row(rows: Sequence[Row], seconds: float) -> Row:
    return Row("total", passed=sum(r.passed for r in rows), failed=sum(r.failed for r in rows),
               not_run=sum(r.not_run for r in rows), seconds=seconds)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def table(rows: Sequence[Row], total: Row) -> str:
    width = max(len(r.name) for r in [*rows, total])
    header = f"{'stage':<{width}}  {'passed':>6}  {'failed':>6}  {'NOT RUN':>7}  {'time':>8}"
    lines = [header, "-" * len(header)]
    for row in [*rows, total]:
        if row is total:
            lines.append("-" * len(header))
        lines.append(f"{row.name:<{width}}  {row.passed:>6}  {row.failed:>6}  {row.not_run:>7}  "
                     f"{duration(row.seconds):>8}")
    return "\n".join(lines)


def budget_warning(rows: Sequence[Row], total: Row, budget: float = BUDGET_S) -> str | None:
    """Past the budget, the warning that names the three slowest stages; else None."""
    if total.seconds <= budget:
        return None
    slowest = sorted(rows, key=lambda r: r.seconds, reverse=True)[:3]
    return (f"WARNING: the test command took {duration(total.seconds)}, over its {duration(budget)} budget; "
            "slowest stages: " + ", ".join(f"{r.name} {duration(r.seconds)}" for r in slowest))


def fresh_note(path: Path) -> str | None:
    """The line under the table when the fresh-machine container ran beside the other tests."""
    try:
        seconds = float(json.loads(path.read_text(encoding="utf-8"))["container_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (f"fresh machine: its container ran {duration(seconds)} beside the other tests; "
            "its row is the time the session then waited for it")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.ci.budget",
                                     description="the table ./scripts/test ends with, and its budget")
    parser.add_argument("--stages", type=Path, required=True, help="the script's record of its stages")
    parser.add_argument("--project", type=Path, required=True, help="the project session's tier record")
    parser.add_argument("--smoke", type=Path, required=True, help="the smoke session's tier record")
    parser.add_argument("--started", type=float, default=None,
                        help="when the test command started (epoch seconds); else the stages' sum")
    args = parser.parse_args(argv)
    stages = read_stages(args.stages)
    rows = build_rows(stages, read_record(args.project), read_record(args.smoke))
    seconds = time.time() - args.started if args.started is not None else sum(s.seconds for s in stages.values())
    total = total_row(rows, seconds)
    print("\n" + table(rows, total))
    beside = fresh_note(args.stages.parent / FRESH_REPORT)
    if beside:
        print(beside)
    warning = budget_warning(rows, total)
    if warning:
        print(warning)
    missing = ({key for key, _ in LINT_STAGES} | {PROJECT_STAGE, SMOKE_STAGE}) - set(stages)
    return 1 if total.failed or missing or any(s.code != 0 for s in stages.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
