"""One conformance run: doctor, up (or upgrade), smoke suite, diagnostics, teardown, verification.

Every step is recorded (status, seconds, what went wrong) in the run's record; the first failed
step decides the exit status (`record.EXIT_CODES`), and the steps after a failure still run where
they make sense: whatever happened, the stack is torn down unless `--keep` was asked for, and a
teardown that fails or leaves something behind fails the run.

The run works on a copy of the project's settings and the stack's config file in the report
directory, so the stack file in the repository is never rewritten (the upgrade points the copy at
the previous release first). The stack itself, its state and its secrets are the user's.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml
from pulumi import automation as auto

from infra.automation import pulumi_command
from infra.config import PROJECT
from infra.conformance.record import EXIT_USAGE, Check, RunRecord, Step, new_run_id, now_iso, read_junit
from infra.paths import REPO_ROOT

UP_PARALLEL = 64  # see infra/bench/command.py
SMOKE_TIMEOUT_S = 3 * 3600
LOG_TAIL = 4000


class UsageError(Exception):
    """Bad input to the command: reported in one line, exit status 2, nothing created."""


@dataclass
class ConformanceOptions:
    stack: str
    project_dir: Path = REPO_ROOT
    report_root: Path = Path("reports/conformance")
    history: Path | None = None
    twice: bool = False
    keep: bool = False
    rerun_failed: bool = False
    upgrade_from: str | None = None
    from_manifests: Path | None = None
    allow_replace: bool = False
    checks: list[str] = field(default_factory=list)
    marker: str | None = None
    smoke_timeout: float = SMOKE_TIMEOUT_S
    parallel: int = UP_PARALLEL
    in_cluster: bool = False  # the smoke suite as a Job inside the cluster (kfstack smoke-job)


class Progress:
    """Progress lines on stderr, and the same lines in the run's log."""

    def __init__(self, log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log: TextIO = log.open("a", encoding="utf-8")

    def __call__(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, file=sys.stderr, flush=True)
        self._log.write(line + "\n")
        self._log.flush()

    def close(self) -> None:
        self._log.close()


def _line_logger(path: Path) -> Callable[[str], None]:
    """An Automation API `on_output` callback appending Pulumi's output to a log file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8")

    def write(line: str) -> None:
        handle.write(line if line.endswith("\n") else line + "\n")
        handle.flush()

    return write


def _headline(detail: str) -> str:
    """The line of an error that says what happened (Pulumi's `error:` line when there is one)."""
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    chosen = next((line for line in lines if line.startswith("error:")), lines[0] if lines else "")
    return chosen[:300]


def _tail(text: str, limit: int = LOG_TAIL) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


# ------------------------------------------------------------------------------------------------
# The run's workspace: the project's settings and the stack's config file, copied


def project_settings(project_dir: Path) -> dict[str, Any]:
    path = project_dir / "Pulumi.yaml"
    if not path.exists():
        raise UsageError(f"--project-dir {project_dir}: no Pulumi.yaml there")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def stack_file(project_dir: Path, stack: str) -> Path:
    settings = project_settings(project_dir)
    config_dir = project_dir / settings.get("stackConfigDir", ".")
    path = config_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.name.split(".")[1] for p in config_dir.glob("Pulumi.*.yaml")))
        raise UsageError(f"--stack {stack}: no stack file {path} (stacks: {known or 'none'})")
    return path


def make_workspace(project_dir: Path, stack: str, workdir: Path) -> Path:
    """A directory whose Pulumi.yaml runs the project's program (by absolute path) and which holds
    a copy of the stack's config file."""
    project_dir = project_dir.resolve()
    settings = project_settings(project_dir)
    settings["main"] = str((project_dir / settings.get("main", ".")).resolve())
    runtime = settings.get("runtime")
    if isinstance(runtime, dict):
        options = runtime.get("options") or {}
        if options.get("virtualenv"):
            options["virtualenv"] = str((project_dir / options["virtualenv"]).resolve())
    backend = (settings.get("backend") or {}).get("url", "")
    if backend.startswith("file://") and not backend.startswith(("file:///", "file://~")):
        settings["backend"]["url"] = "file://" + str((project_dir / backend[len("file://"):]).resolve())
    settings.pop("stackConfigDir", None)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Pulumi.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    shutil.copyfile(stack_file(project_dir, stack), workdir / f"Pulumi.{stack}.yaml")
    return workdir


def open_stack(project_dir: Path, stack: str, workdir: Path, env: dict[str, str]) -> auto.Stack:
    """Select the stack (creating it in the project, as `pulumi stack select --create` would, so
    its encryption salt lands in the user's stack file), then open it from the run's workspace."""
    backend = str((project_settings(project_dir).get("backend") or {}).get("url", ""))
    if backend.startswith("file://"):
        # A fresh machine has no state directory yet; the file backend will not create it.
        Path(backend[len("file://"):]).expanduser().mkdir(parents=True, exist_ok=True)
    opts = auto.LocalWorkspaceOptions(env_vars=env, pulumi_command=pulumi_command())
    auto.create_or_select_stack(stack, work_dir=str(project_dir.resolve()), opts=opts)
    make_workspace(project_dir, stack, workdir)
    return auto.select_stack(stack, work_dir=str(workdir), opts=opts)


def stack_config(stack: auto.Stack) -> dict[str, Any]:
    """The stack's config under the project's namespace, values decoded from JSON where they are."""
    raw: dict[str, Any] = {}
    for key, value in stack.get_all_config().items():
        if not key.startswith(f"{PROJECT}:"):
            continue
        try:
            raw[key.split(":", 1)[1]] = json.loads(value.value)
        except (TypeError, json.JSONDecodeError):
            raw[key.split(":", 1)[1]] = value.value
    return raw


def set_release(workdir: Path, stack: str, release: str, manifests: Path) -> None:
    """Point the run's copy of the stack file at another release and tree (the upgrade's start)."""
    path = workdir / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = data.setdefault("config", {}) or {}
    key = f"{PROJECT}:kubeflow"
    kubeflow = dict(config.get(key) or {})
    kubeflow.update({"release": release, "manifests": str(manifests)})
    config[key] = kubeflow
    data["config"] = config
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# The run


class Run:
    """State shared by the steps of one run."""

    def __init__(self, opts: ConformanceOptions, record: RunRecord, report_dir: Path) -> None:
        self.opts = opts
        self.record = record
        self.dir = report_dir
        self.logs = report_dir / "logs"
        self.diagnostics = report_dir / "diagnostics"
        self.progress = Progress(self.logs / "conformance.log")
        self.stack: auto.Stack | None = None
        self.workdir = report_dir / "workspace"
        self.env: dict[str, str] = {}
        self.config: dict[str, Any] = {}

    @contextlib.contextmanager
    def step(self, name: str, record_as: str | None = None) -> Iterator[Step]:
        """Time a step; an exception marks it failed (with its message) and the run with it."""
        step = Step(name)
        self.record.steps.append(step)
        self.progress(f"--> {name}")
        t0 = time.monotonic()
        try:
            yield step
        except Exception as exc:
            step.status = "failed"
            step.detail = _tail(f"{type(exc).__name__}: {exc}")
            self._diagnose(name, exc)
        finally:
            step.seconds = round(time.monotonic() - t0, 1)
        if step.status == "failed":
            self.record.fail(record_as or name)
            self.progress(f"    {name}: FAILED after {step.seconds:.1f}s: {_headline(step.detail)}")
        else:
            self.progress(f"    {name}: {step.status} in {step.seconds:.1f}s")

    def skip(self, name: str, why: str) -> None:
        self.record.steps.append(Step(name, "skipped", 0.0, why))
        self.progress(f"--- {name}: skipped ({why})")

    def _diagnose(self, step: str, exc: BaseException) -> None:
        """A failed step's error in the diagnostics bundle (the smoke suite writes its own)."""
        self.diagnostics.mkdir(parents=True, exist_ok=True)
        text = f"step {step} failed\n\n{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc))
        (self.diagnostics / f"{step}.txt").write_text(text, encoding="utf-8")

    # -- Pulumi ----------------------------------------------------------------------------------

    def up(self, label: str) -> auto.UpResult:
        from infra.bench.timeline import Timeline
        from infra.conformance.timeline import phase_seconds, timeline_rows

        assert self.stack is not None
        timeline = Timeline()
        timeline.start()
        try:
            return self.stack.up(parallel=self.opts.parallel, on_event=timeline, color="never", show_secrets=False,
                                 on_output=_line_logger(self.logs / f"{label}.log"))
        finally:
            self.record.phases[label] = phase_seconds(timeline)
            self.record.timelines[label] = timeline_rows(timeline)

    def resources(self) -> list[dict[str, Any]]:
        assert self.stack is not None
        return (self.stack.export_stack().deployment or {}).get("resources") or []

    def outputs(self) -> dict[str, Any]:
        assert self.stack is not None
        return {k: v.value for k, v in self.stack.outputs().items()}


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
    from infra.bench.command import machine
    from infra.conformance.history import History
    from infra.conformance.summary import write_summary

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
    from infra.commands.doctor import run_checks

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
                               f"{_tail(proc.stdout + proc.stderr, 2000)}")
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
                          on_output=_line_logger(run.logs / f"{label}.log"))
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
