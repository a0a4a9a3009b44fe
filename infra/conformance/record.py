"""The machine-readable record of one conformance run, and the JUnit it is partly read from.

The record is what the history stores and the HTML report draws; the JSON file in the report
directory is the same record, so a CI that keeps only the report directory keeps everything.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.errors import UsageError

SCHEMA = 1

# One exit status per step that can fail: the first failed step decides it (the summary lists all).
EXIT_CODES: dict[str, int] = {
    "doctor": 3,
    "up": 4,
    "upgrade": 5,
    "smoke": 6,
    "teardown": 7,
    "teardown-verification": 8,
    "second-up": 9,
}
EXIT_USAGE = UsageError.exit_code


@dataclass
class Step:
    """One step of a run: its outcome, how long it took, and what went wrong."""

    name: str
    status: str = "passed"  # passed | failed | skipped
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Check:
    """One check (a smoke test, or an upgrade assertion): pytest's node id, outcome and duration."""

    id: str
    outcome: str  # passed | failed | error | skipped
    seconds: float
    message: str = ""
    path: str = ""  # absolute path of the test file, for --rerun-failed

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "error")


@dataclass
class RunRecord:
    stack: str
    release: str
    run_id: str
    started: str
    upgrade_from: str | None = None
    finished: str = ""
    status: str = "running"
    exit_code: int = 0
    failed_step: str | None = None
    tools: dict[str, str] = field(default_factory=dict)
    host: str = ""
    steps: list[Step] = field(default_factory=list)
    # Per `pulumi up` of the run ("up", "upgrade", "second-up"): (part, seconds) from engine events.
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per `pulumi up`: every resource's [start, finish] seconds and its phase.
    timelines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    teardown_left: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    schema: int = SCHEMA

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def fail(self, step: str) -> None:
        """Record a failed step; the first one decides the exit status."""
        self.status = "failed"
        if self.failed_step is None:
            self.failed_step = step
            self.exit_code = EXIT_CODES[step]

    def finish(self) -> None:
        self.finished = now_iso()
        if self.status == "running":
            self.status = "passed"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        data = dict(data)
        data["steps"] = [Step(**s) for s in data.get("steps", [])]
        data["checks"] = [Check(**c) for c in data.get("checks", [])]
        return cls(**data)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_id(stack: str) -> str:
    """Sortable and unique per stack and second: 20261201T190000Z-sim."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{stack}"


def read_junit(path: Path, rootdir: Path) -> list[Check]:
    """The checks of a pytest JUnit file written with junit_family=xunit1 (which names each test's
    file, so a failed check can be run again by its node id)."""
    if not path.exists():
        return []
    checks = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        file = case.get("file", "")
        parts = case.get("classname", "").split(".")
        stem = Path(file).stem
        classes = parts[len(parts) - parts[::-1].index(stem):] if stem in parts else []
        node = "::".join([file, *classes, name]) if file else ".".join([*parts, name])
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = _message(child.get("message") or "", child.text or "")
                break
        checks.append(Check(node, outcome, round(float(case.get("time") or 0), 2), message,
                            str((rootdir / file).resolve()) if file else ""))
    return checks


def _message(attribute: str, text: str) -> str:
    """The failure in a line or two: pytest's `E` lines (the assertion and its message) when the
    text has them, else the message attribute."""
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if errors:
        return " ".join(e for e in errors if e)[:2000]
    return (attribute or text.strip())[:2000]


def write_junit(path: Path, suite: str, checks: list[Check]) -> None:
    """JUnit for checks the conformance command makes itself (upgrade, teardown)."""
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(checks)),
                       failures=str(sum(c.outcome == "failed" for c in checks)),
                       errors=str(sum(c.outcome == "error" for c in checks)),
                       skipped=str(sum(c.outcome == "skipped" for c in checks)))
    for c in checks:
        case = ET.SubElement(ts, "testcase", classname=suite, name=c.id.split("::")[-1], time=f"{c.seconds:.2f}")
        if c.outcome in ("failed", "error", "skipped"):
            tag = {"failed": "failure", "error": "error", "skipped": "skipped"}[c.outcome]
            ET.SubElement(case, tag, message=c.message[:500]).text = c.message
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
