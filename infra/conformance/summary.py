"""The Markdown summary of a run: what a reader of a nightly run wants first, failures at the top."""

from __future__ import annotations

from pathlib import Path

from infra.conformance.record import EXIT_CODES, RunRecord


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


def summary_markdown(record: RunRecord, report_dir: Path) -> str:
    failed = [c for c in record.checks if c.failed]
    head = "PASSED" if record.status == "passed" else f"FAILED at step {record.failed_step}"
    lines = [f"# Conformance run {record.run_id}: {head}", "",
             "| | |", "|---|---|",
             f"| stack | {record.stack} |",
             f"| Kubeflow release | {record.release or 'unknown'} |"]
    if record.upgrade_from:
        lines.append(f"| upgraded from | {record.upgrade_from} |")
    lines += [f"| started / finished (UTC) | {record.started} / {record.finished} |",
              f"| exit status | {record.exit_code} |",
              f"| machine | {_cell(record.host)} |",
              f"| tools | {_cell(', '.join(f'{k} {v}' for k, v in record.tools.items()))} |", ""]
    if failed:
        lines += ["## Failed checks", ""]
        lines += [f"- `{c.id}`: {_cell(c.message) or 'see JUnit'}" for c in failed]
        lines += ["", f"Diagnostics: `{report_dir / 'diagnostics'}`", ""]
    if record.teardown_left:
        lines += ["## Left behind by the teardown", ""] + [f"- {x}" for x in record.teardown_left] + [""]
    lines += ["## Steps", "", "| step | result | seconds | detail |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {'**FAILED**' if s.status == 'failed' else s.status} | {s.seconds:.1f} | "
              f"{_cell(s.detail)} |" for s in record.steps]
    for label, phases in record.phases.items():
        if phases:
            lines += ["", f"## `pulumi up` ({label}) by phase, from the engine's events", "",
                      "| part | seconds |", "|---|---|"]
            lines += [f"| {k} | {v:.1f} |" for k, v in phases.items()]
    lines += ["", "## Checks", "", f"{sum(not c.failed and c.outcome == 'passed' for c in record.checks)} passed, "
              f"{len(failed)} failed, {sum(c.outcome == 'skipped' for c in record.checks)} not run", "",
              "| check | result | seconds | note |", "|---|---|---|---|"]
    lines += [f"| `{c.id}` | {'**' + c.outcome.upper() + '**' if c.failed else c.outcome} | {c.seconds:.1f} | "
              f"{_cell(c.message)} |" for c in record.checks]
    lines += ["", "## Files", "", "- `record.json`: this run, machine-readable", "- `junit/`: JUnit XML",
              "- `smoke.md`: the smoke suite's own report", "- `logs/`: every step's output",
              "- `diagnostics/`: written when a step or check fails", "",
              "Exit statuses: " + ", ".join(f"{v} {k}" for k, v in EXIT_CODES.items()) + ", 2 usage."]
    if record.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in record.notes]
    return "\n".join(lines) + "\n"


def write_summary(record: RunRecord, report_dir: Path) -> Path:
    path = report_dir / "summary.md"
    path.write_text(summary_markdown(record, report_dir), encoding="utf-8")
    return path
