"""One conformance run: doctor, up (or upgrade), smoke suite, teardown and its verification.

The runner only sequences the steps; each is a module of its own (`doctor`, `up`, `upgrade`,
`smoke`, `teardown`) whose `step(run, ...)` records itself in the run's record (status, seconds,
what went wrong). The first failed step decides the exit status (`record.EXIT_CODES`), and the
steps after a failure still run where they make sense: whatever happened, the stack is torn down
unless `--keep` was asked for, and a teardown that fails or leaves something behind fails the run.

The run works on a copy of the project's settings and the stack's config file in the report
directory (`workspace`), and its steps share one `session.Run`. The stack itself, its state and its
secrets are the user's.
"""

from __future__ import annotations

import shutil

from pulumi import automation as auto

from infra.conformance import doctor, smoke, teardown, up, upgrade
from infra.conformance.record import EXIT_USAGE, Check, RunRecord, new_run_id, now_iso
from infra.conformance.session import ConformanceOptions, Run, headline
from infra.conformance.workspace import open_stack, stack_config, stack_file
from infra.errors import UsageError


def run_conformance(opts: ConformanceOptions) -> RunRecord:
    """The whole run; returns its record (also written to the report directory and the history)."""
    from infra.conformance.history import History
    from infra.conformance.summary import write_summary
    from infra.doctor import machine

    rerun: list[Check] = smoke.last_failed_checks(opts.history, opts.stack) if opts.rerun_failed else []
    if opts.rerun_failed and not rerun:
        raise UsageError(f"--rerun-failed: the last run of stack {opts.stack} had no failed check to run again")
    if opts.rerun_failed and (opts.twice or opts.upgrade_from):
        raise UsageError("--rerun-failed runs checks against the kept stack: not with --twice or --upgrade-from")
    stack_file(opts.project_dir, opts.stack)  # fails early, naming the stack files there are
    record = RunRecord(stack=opts.stack, release="", run_id=new_run_id(opts.stack), started=now_iso(),
                       upgrade_from=opts.upgrade_from, host=machine())
    report_dir = (opts.report_root / record.run_id).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    run = Run(opts, record, report_dir)
    run.progress(f"conformance run {record.run_id}: report directory {report_dir}")
    try:
        _run_steps(run, rerun)
    except UsageError as exc:
        record.status, record.exit_code, record.failed_step = "failed", EXIT_USAGE, "usage"
        record.notes.append(str(exc))
        raise
    finally:
        record.finish()
        (report_dir / "record.json").write_text(record.to_json(), encoding="utf-8")
        write_summary(record, report_dir)
        with History.open(opts.history) as hist:
            hist.add(record)
            run.progress(f"history: {hist.path}")
        run.progress(f"result: {record.status} (exit status {record.exit_code}"
                     f"{', first failed step: ' + record.failed_step if record.failed_step else ''})")
        run.progress(f"summary: {report_dir / 'summary.md'}")
        run.progress.close()
        shutil.rmtree(run.workdir, ignore_errors=True)  # holds a copy of the stack file only
    return record


def _run_steps(run: Run, rerun: list[Check]) -> None:
    opts, record = run.opts, run.record
    doctor.step(run)
    if record.failed_step:
        return  # nothing was created: no teardown to do
    _open_stack(run)
    if rerun:
        if not run.resources():
            raise UsageError(f"--rerun-failed: stack {opts.stack} has no resources (keep it with --keep)")
        run.skip("up", "--rerun-failed runs against the kept stack")
    elif opts.upgrade_from:
        upgrade.step(run)
    else:
        up.step(run, "up")
    if record.failed_step in ("up", "upgrade"):
        run.skip("smoke", f"the {record.failed_step} step failed")
    else:
        smoke.step(run, rerun)
    if opts.twice:
        # The first stack is always torn down: the second up must work on what that leaves.
        teardown.step(run, "teardown")
        if not record.teardown_left and record.failed_step not in ("teardown", "teardown-verification"):
            up.step(run, "second-up")
        last = "second-teardown"
    else:
        last = "teardown"
    if opts.keep:
        run.skip(last, "--keep: the stack stays up")
        return
    if not opts.twice or record.step("second-up"):
        teardown.step(run, last)


def _open_stack(run: Run) -> None:
    """The stack, from the run's workspace, with its config and the release it names."""
    from infra.automation import pulumi_env
    from infra.versions import load_versions

    run.env = pulumi_env()
    try:
        run.stack = open_stack(run.opts.project_dir, run.opts.stack, run.workdir, run.env)
        run.config = stack_config(run.stack)
    except auto.CommandError as exc:  # the backend, or the passphrase for the stack's secrets
        raise UsageError(f"stack {run.opts.stack}: Pulumi could not open it: {headline(str(exc))}") from None
    run.record.release = str((run.config.get("kubeflow") or {}).get("release") or load_versions().default_release)
