"""The GitHub workflows: valid by actionlint, pinned and least-privilege, and every command they run
exists with the flags they pass (a renamed flag fails here, not at 3 a.m. on a runner)."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import build_parser
from smoke_tests.run import run
from tests.helpers import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); the workflows' other keys are plain strings.
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, job, step


def matrix_variants(job: dict[str, Any]) -> list[dict[str, str]]:
    """Every combination of the job's matrix values (include entries as they are)."""
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    if isinstance(matrix, str):
        return [{}]
    if "include" in matrix:
        return [{k: str(v) for k, v in entry.items()} for entry in matrix["include"]]
    axes = {k: v for k, v in matrix.items() if isinstance(v, list)}
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())] or [{}]


def expand(script: str, variant: dict[str, str]) -> str:
    """`${{ matrix.x }}` from the variant; any other expression becomes a placeholder word."""
    def sub(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr.startswith("matrix.") and expr[7:] in variant:
            return variant[expr[7:]]
        return "EXPR"

    return EXPRESSION.sub(sub, script)


def commands(script: str) -> Iterator[list[str]]:
    """Simple commands of a shell script: lines joined at backslashes, split at ; && || |."""
    for line in script.replace("\\\n", " ").splitlines():
        for part in re.split(r"\s*(?:;|&&|\|\||\|)\s*", line.strip()):
            if part and not part.startswith("#"):
                with_env = shlex.split(part, comments=True)
                while with_env and re.match(r"^[A-Z_][A-Z0-9_]*=", with_env[0]):
                    with_env = with_env[1:]  # VAR=value before the command
                if with_env:
                    yield with_env


def all_commands() -> list[tuple[str, str, list[str]]]:
    """(workflow, job, argv) for every command of every `run:` step, per matrix variant."""
    found = []
    for path in WORKFLOWS:
        for job_name, job, step in steps(load(path)):
            if "run" not in step:
                continue
            for variant in matrix_variants(job):
                found += [(path.name, job_name, argv) for argv in commands(expand(step["run"], variant))]
    return found


def test_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"checks.yml", "nightly.yml"}


def test_actionlint_finds_nothing():
    from infra.toolchain import ToolMissingError, tool_path

    try:
        actionlint = tool_path("actionlint")
    except ToolMissingError as exc:
        pytest.skip(f"NOT RUN: actionlint is not installed ({exc}); ./scripts/setup installs it")
    result = run([actionlint, "-no-color", *map(str, WORKFLOWS)], timeout=120, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actions_pinned_by_commit_and_permissions_least_privilege():
    for path in WORKFLOWS:
        workflow = load(path)
        assert workflow.get("permissions") == {"contents": "read"}, path.name
        for job_name, job in workflow["jobs"].items():
            assert "write" not in str(job.get("permissions", "")), f"{path.name}:{job_name}"
        for job_name, _, step in steps(workflow):
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), f"{path.name}:{job_name}: {step['uses']} is not pinned by commit"


def test_no_step_hides_a_failure():
    for path in WORKFLOWS:
        text = path.read_text(encoding="utf-8")
        assert "|| true" not in text and "continue-on-error" not in text, path.name
        for job_name, _, step in steps(load(path)):
            assert "set +e" not in step.get("run", ""), f"{path.name}:{job_name}"


def test_every_command_exists_with_the_flags_it_passes():
    parser = build_parser()
    venv_bin = Path(sys.prefix) / "bin"
    checked = []
    for workflow, job, argv in all_commands():
        where = f"{workflow}:{job}: {shlex.join(argv)}"
        prog = argv[0]
        if prog.startswith("./"):
            script = REPO / prog
            assert script.is_file() and os.access(script, os.X_OK), f"{where}: no executable {prog}"
            checked.append(prog)
        elif prog.startswith(".venv/bin/"):
            name = prog.removeprefix(".venv/bin/")
            assert (venv_bin / name).exists(), f"{where}: the venv has no {name}"
            if name == "kfstack":
                try:
                    parser.parse_args(argv[1:])
                except SystemExit as exc:
                    pytest.fail(f"{where}: kfstack rejects these arguments (exit {exc.code})")
                checked.append(shlex.join(argv[:3]))
    # What the workflows are meant to run, each seen and checked at least once.
    assert {"./scripts/setup", "./scripts/test"} <= set(checked)
    assert ".venv/bin/kfstack conformance --stack" in checked
    assert ".venv/bin/kfstack report --histories-in" in checked


def test_nightly_runs_the_command_and_keeps_reports_and_history():
    nightly = load(REPO / ".github" / "workflows" / "nightly.yml")
    runs = [argv for wf, _, argv in all_commands() if wf == "nightly.yml" and argv[:2] == [".venv/bin/kfstack",
                                                                                            "conformance"]]
    stacks = {argv[argv.index("--stack") + 1] for argv in runs}
    assert {"sim", "dev"} <= stacks  # sim (with the upgrade) and kind; cloud stacks come from the plan
    assert any("--upgrade-from" in argv for argv in runs)
    for argv in runs:
        assert "--history" in argv and "--report-dir" in argv
    for job_name in ("conformance", "cloud"):
        job = nightly["jobs"][job_name]
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert uploads and uploads[0]["if"] == "always()", job_name
        assert "history/" in uploads[0]["with"]["path"] and "reports/conformance/" in uploads[0]["with"]["path"]
        saves = [s for s in job["steps"] if s.get("uses", "").startswith("actions/cache/save@")]
        assert saves and saves[0]["if"] == "always()", job_name
        # Where --from-manifests points, the job checks the tree out.
        paths = {s.get("with", {}).get("path") for s in job["steps"]
                 if s.get("uses", "").startswith("actions/checkout@")}
        for variant in matrix_variants(job):
            args = shlex.split(variant.get("args", ""))
            if "--from-manifests" in args:
                assert args[args.index("--from-manifests") + 1] in paths
    assert nightly["jobs"]["report"]["if"] == "always()"
    assert nightly["jobs"]["cloud"]["if"] == "needs.plan.outputs.cloud != '[]'"


def test_every_toolchain_cache_keeps_the_lock_with_the_tools(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Tools restored without the lock that pinned them would be re-verified against nothing (a
    release with no checksums trusted again on first use)."""
    from infra.paths import tools_dir
    from infra.toolchain.lock import lock_path

    monkeypatch.setenv("KFSTACK_CACHE", str(Path.home() / ".cache" / "kubeflow-stacks"))  # the runner's default
    home = str(Path.home())
    tools, lock_file = (str(p).replace(home, "~", 1) for p in (tools_dir(), lock_path()))
    caching_tools = 0
    for path in WORKFLOWS:
        for job_name, _job, step in steps(load(path)):
            if step.get("uses", "").startswith("actions/cache@"):
                cached = step["with"]["path"].split()
                if tools in cached:
                    caching_tools += 1
                    assert lock_file in cached, f"{path.name} {job_name}: caches {tools} but not {lock_file}"
    assert caching_tools == 2  # checks and nightly's conformance job
