"""One run's session: its options, its progress lines and logs, and the state its steps share.

`Run.step` times a step and records it (status, seconds, what went wrong) in the run's record;
`line_logger` gives Pulumi's output a log file of its own. The runner and each step module
(doctor, up, smoke, teardown, upgrade) take a `Run`; none of them needs another to get at it.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pulumi import automation as auto

from infra.automation import UP_PARALLEL
from infra.conformance.record import RunRecord, Step
from infra.paths import REPO_ROOT

SMOKE_TIMEOUT_S = 3 * 3600
LOG_TAIL = 4000


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


def line_logger(path: Path) -> Callable[[str], None]:
    """An Automation API `on_output` callback appending Pulumi's output to a log file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8")

    def write(line: str) -> None:
        handle.write(line if line.endswith("\n") else line + "\n")
        handle.flush()

    return write


def headline(detail: str) -> str:
    """The line of an error that says what happened (Pulumi's `error:` line when there is one, also
    as an Automation API `CommandError` shows it, after "stderr:")."""
    lines = [line.strip().removeprefix("stderr:").strip() for line in detail.splitlines() if line.strip()]
    chosen = next((line for line in lines if line.startswith("error:")), lines[0] if lines else "")
    return chosen[:300]


def tail(text: str, limit: int = LOG_TAIL) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


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
            step.detail = tail(f"{type(exc).__name__}: {exc}")
            self._diagnose(name, exc)
        finally:
            step.seconds = round(time.monotonic() - t0, 1)
        if step.status == "failed":
            self.record.fail(record_as or name)
            self.progress(f"    {name}: FAILED after {step.seconds:.1f}s: {headline(step.detail)}")
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

    # -- the stack's state and outputs ---------------------------------------------------------

    def resources(self) -> list[dict[str, Any]]:
        assert self.stack is not None
        return (self.stack.export_stack().deployment or {}).get("resources") or []

    def outputs(self) -> dict[str, Any]:
        assert self.stack is not None
        return {k: v.value for k, v in self.stack.outputs().items()}
