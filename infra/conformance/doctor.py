"""The run's first step: the tools' versions for the record, then `kfstack doctor`'s checks.

A required check that fails stops the run before anything is created (`infra/doctor.py` has the
checks and their fixes; the report keeps every line in logs/doctor.txt).
"""

from __future__ import annotations

import sys

from infra.conformance.session import Run


def tool_versions() -> dict[str, str]:
    from infra.toolchain import tool_status
    from infra.versions import load_versions

    versions = {s.name: s.installed or f"missing (wants {s.wanted})" for s in tool_status() if s.default}
    versions.update({f"python:{k}": v for k, v in load_versions().python.items()})
    versions["python"] = sys.version.split()[0]
    return versions


def check_machine(run: Run) -> None:
    """The doctor's checks in logs/doctor.txt; a failed required one raises, naming each with its fix."""
    from infra.doctor import run_checks

    results = run_checks()
    lines = [f"{'ok' if c.ok else ('FAIL' if c.required else 'warn'):<4} {c.name}: {c.detail}"
             + ("" if c.ok else f" (fix: {c.fix})") for c in results]
    run.logs.mkdir(parents=True, exist_ok=True)
    (run.logs / "doctor.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    failed = [c for c in results if c.required and not c.ok]
    if failed:
        raise RuntimeError("doctor: " + "; ".join(f"{c.name}: {c.detail} (fix: {c.fix})" for c in failed))


def step(run: Run) -> None:
    run.record.tools = tool_versions()
    with run.step("doctor"):
        check_machine(run)
