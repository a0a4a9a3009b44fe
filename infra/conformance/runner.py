"""One conformance run: doctor, up (or upgrade), smoke suite, diagnostics, teardown, verification.

Every step is recorded (status, seconds, what went wrong) in the run's record; the first failed
step decides the exit status (`record.EXIT_CODES`), and the steps after a failure still run where
they make sense: whatever happened, the stack is torn down unless `--keep` was asked for, and a
teardown that fails or leaves something behind fails the run.

The run works on a copy of the project's settings and the stack's config file in the report
directory (`workspace`), and its steps share one `session.Run`. The stack itself, its state and its
secrets are the user's.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from infra.conformance.record import EXIT_USAGE, Check, RunRecord, new_run_id, now_iso, read_junit
from infra.conformance.session import ConformanceOptions, Run, line_logger, tail
from infra.conformance.workspace import UsageError, open_stack, stack_config, stack_file
from infra.paths import REPO_ROOT


def tool_versions() -> dict[str, str]:
    from infra.toolchain import tool_status
    from infra.versions import load_versions

    versions = {s.name: s.installed or f"missing (wants {s.wanted})" for s in tool_status() if s.default}
    versions.update({f"python:{k}": v for k, v in load_versions().python.items()})
    versions["python"] = sys.version.split()[0]
    return versions


def last_failed_checks(history: Path | None, stack: str) -> list[Check]:
    from infra.conformance.history import History

    with History.open(history) as hist:
        last = hist.latest(stack)
    if last is None:
        raise UsageError(f"--rerun-failed: the history has no run of stack {stack} (run without it first)")
    return [c for c in last.checks if c.failed and c.path]


def run_conformance(opts: ConformanceOptions) -> RunRecord:
    """The whole run; returns its record (also written to the report directory and the history)."""
    from infra.conformance.history import History
    from infra.conformance.summary import write_summary
    from infra.doctor import machine

    rerun: list[Check] = last_failed_checks(opts.history, opts.stack) if opts.rerun_failed else []
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
    from infra.automation import pulumi_env

    opts, record = run.opts, run.record
    record.tools = tool_versions()
    with run.step("doctor"):
        _doctor(run)
    if record.failed_step:
        return  # nothing was created: no teardown to do
    run.env = pulumi_env()
    run.stack = open_stack(opts.project_dir, opts.stack, run.workdir, run.env)
    run.config = stack_config(run.stack)
    record.release = str((run.config.get("kubeflow") or {}).get("release") or _default_release())
    if rerun:
        if not run.resources():
            raise UsageError(f"--rerun-failed: stack {opts.stack} has no resources (keep it with --keep)")
        run.skip("up", "--rerun-failed runs against the kept stack")
    elif opts.upgrade_from:
        from infra.conformance.upgrade import upgrade_steps

        upgrade_steps(run)
    else:
        with run.step("up"):
            run.up("up")
    if record.failed_step in ("up", "upgrade"):
        run.skip("smoke", f"the {record.failed_step} step failed")
    else:
        _smoke(run, rerun)
    if opts.twice:
        # The first stack is always torn down: the second up must work on what that leaves.
        _teardown(run, "teardown")
        if not record.teardown_left and record.failed_step not in ("teardown", "teardown-verification"):
            with run.step("second-up"):
                run.up("second-up")
        last = "second-teardown"
    else:
        last = "teardown"
    if opts.keep:
        run.skip(last, "--keep: the stack stays up")
        return
    if not opts.twice or record.step("second-up"):
        _teardown(run, last)


def _default_release() -> str:
    from infra.versions import load_versions

    return load_versions().default_release


def _doctor(run: Run) -> None:
    from infra.doctor import run_checks

    results = run_checks()
    lines = [f"{'ok' if c.ok else ('FAIL' if c.required else 'warn'):<4} {c.name}: {c.detail}"
             + ("" if c.ok else f" (fix: {c.fix})") for c in results]
    run.logs.mkdir(parents=True, exist_ok=True)
    (run.logs / "doctor.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    failed = [c for c in results if c.required and not c.ok]
    if failed:
        raise RuntimeError("doctor: " + "; ".join(f"{c.name}: {c.detail} (fix: {c.fix})" for c in failed))


def smoke_command(run: Run, rerun: list[Check]) -> list[str]:
    """`pytest smoke_tests --stack NAME` with the report's JUnit, Markdown and diagnostics paths; with
    in_cluster, `kfstack smoke-job`, whose results are then moved to the same paths."""
    opts = run.opts
    if opts.in_cluster:
        cmd = [sys.executable, "-m", "infra.cli", "smoke-job", "--stack", opts.stack,
               "--report-dir", str(run.dir / "smoke-job"), "--timeout", str(opts.smoke_timeout), "--",
               "-o", "junit_family=xunit1", "-rs"]
        return cmd + (["-m", opts.marker] if opts.marker else [])
    targets = [c.path + c.id[c.id.index("::"):] for c in rerun] if rerun else (
        opts.checks or [str(REPO_ROOT / "smoke_tests")])
    cmd = [sys.executable, "-m", "pytest", *targets, "--stack", opts.stack,
           "--rootdir", str(REPO_ROOT), "-c", str(REPO_ROOT / "pyproject.toml"),
           "-o", "junit_family=xunit1", "-p", "no:cacheprovider", "-rs",
           "--junitxml", str(run.dir / "junit" / "smoke.xml"),
           "--smoke-report", str(run.dir / "smoke.md"),
           "--diagnostics-dir", str(run.diagnostics / "smoke")]
    if opts.marker and not rerun:
        cmd += ["-m", opts.marker]
    return cmd


def _smoke(run: Run, rerun: list[Check]) -> None:
    from infra.run import run as run_command

    with run.step("smoke") as step:
        cmd = smoke_command(run, rerun)
        (run.dir / "junit").mkdir(parents=True, exist_ok=True)
        proc = run_command(cmd, timeout=run.opts.smoke_timeout + 900, cwd=run.workdir, env=run.env, check=False)
        (run.logs / "smoke.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
        if run.opts.in_cluster:
            for name, dest in (("junit.xml", run.dir / "junit" / "smoke.xml"), ("smoke.md", run.dir / "smoke.md")):
                if (run.dir / "smoke-job" / name).exists():
                    shutil.copyfile(run.dir / "smoke-job" / name, dest)
        checks = read_junit(run.dir / "junit" / "smoke.xml", REPO_ROOT)
        run.record.checks += checks
        failed = [c.id for c in checks if c.failed]
        if proc.returncode == 5 or not checks:
            raise RuntimeError(f"the smoke suite ran no check (pytest exit {proc.returncode}):\n"
                               f"{tail(proc.stdout + proc.stderr, 2000)}")
        if failed or proc.returncode != 0:
            step.detail = f"{len(failed)} check(s) failed: " + ", ".join(failed)
            raise RuntimeError(step.detail + f" (pytest exit {proc.returncode}; diagnostics: "
                               f"{run.diagnostics / 'smoke'})")


def _teardown(run: Run, label: str) -> None:
    from infra.conformance.teardown import plan_from_state, verify_teardown

    assert run.stack is not None
    plan = None
    with run.step(label, record_as="teardown"):
        plan = plan_from_state(dict(run.stack.export_stack().deployment or {}), run.config, run.outputs())
        run.stack.destroy(parallel=run.opts.parallel, color="never", show_secrets=False,
                          on_output=line_logger(run.logs / f"{label}.log"))
    with run.step(f"{label}-verification", record_as="teardown-verification") as step:
        if plan is None:
            raise RuntimeError("nothing to verify: the state could not be read before the destroy")
        left = verify_teardown(plan)
        state_left = [r.get("urn", "") for r in run.resources() if r.get("type") != "pulumi:pulumi:Stack"]
        left += [f"in the state: {u}" for u in state_left]
        run.record.teardown_left += left
        step.detail = f"checked {len(plan.objects)} object(s) and the {plan.provider} cluster {plan.cluster_name}"
        if left:
            raise RuntimeError(f"the teardown left {len(left)} thing(s) behind: " + "; ".join(left[:50]))
