"""The smoke suite as a step of the run: `pytest smoke_tests --stack NAME` (or the suite as a Job in
the cluster), its JUnit read back into the record's checks.

The step fails when a check fails, and also when the suite ran no check at all: a run that
checked nothing has not passed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from infra.conformance.record import Check, read_junit
from infra.conformance.session import Run, tail
from infra.errors import UsageError
from infra.paths import REPO_ROOT


def last_failed_checks(history: Path | None, stack: str) -> list[Check]:
    """The checks that failed in the stack's last recorded run (what --rerun-failed runs again)."""
    from infra.conformance.history import History

    with History.open(history) as hist:
        last = hist.latest(stack)
    if last is None:
        raise UsageError(f"--rerun-failed: the history has no run of stack {stack} (run without it first)")
    return [c for c in last.checks if c.failed and c.path]


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


def step(run: Run, rerun: list[Check]) -> None:
    """Run the suite (only `rerun`'s checks when given); its checks join the record."""
    from smoke_tests.run import run as run_command

    with run.step("smoke") as smoke:
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
            smoke.detail = f"{len(failed)} check(s) failed: " + ", ".join(failed)
            raise RuntimeError(smoke.detail + f" (pytest exit {proc.returncode}; diagnostics: "
                               f"{run.diagnostics / 'smoke'})")
