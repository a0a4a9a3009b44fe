"""Pulumi Automation API helpers shared by the T2 tests, `kfstack bench` and the smoke plugin.

A workspace here is a throwaway directory whose Pulumi.yaml points `main` at this repository
and whose backend is a local directory, so tests and benchmarks never touch the user's stacks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from infra.config import PROJECT
from infra.names import unique_name
from infra.paths import REPO_ROOT

# Pulumi's default is 8 operations at once; creates mostly wait on the API server, and 64 took a
# full deploy from 86 s to 64 s here (256 gained nothing more). See docs/benchmarks.md.
UP_PARALLEL = 64

LOGS_PLACEHOLDER = """Not a directory on purpose: kubeflow-stacks keeps Pulumi from writing its automatic
debug log here. Pulumi 3.259 logs every resource's properties, gzip-compressed, on every run; for
Kubeflow's ~650 objects that was 45% of the engine's CPU and 0.5 GB per run (a no-op preview took
58 s with it, 18 s without). See docs/benchmarks.md.
"""


def project_pulumi_home() -> Path:
    """The Pulumi home the project's own runs use (tests, benchmarks): in the user cache, with the
    pinned Kubernetes plugin registered and the automatic debug log switched off."""
    import shutil

    from infra.paths import cache_root
    from infra.toolchain import tool_path, tools_env
    from infra.versions import load_versions
    from smoke_tests.run import run

    home = cache_root() / "pulumi-home"
    home.mkdir(parents=True, exist_ok=True)
    logs = home / "logs"
    if logs.is_dir() and not logs.is_symlink():
        shutil.rmtree(logs)
    if not logs.exists():
        logs.write_text(LOGS_PLACEHOLDER)
    version = load_versions().python["pulumi-kubernetes"]
    plugin = home / "plugins" / f"resource-kubernetes-v{version}" / "pulumi-resource-kubernetes"
    if not plugin.exists():
        run([tool_path("pulumi"), "plugin", "install", "resource", "kubernetes", version,
             "--file", tool_path("pulumi-resource-kubernetes"), "--reinstall"],
            timeout=300, env={**tools_env(), "PULUMI_HOME": str(home)})
    return home


def pulumi_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for every Pulumi command the project runs: pinned tools first, no downloads."""
    from infra.toolchain import tools_env

    env = {**tools_env(), "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_HOME": str(project_pulumi_home()),
           "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
           # The file backend rewrites the whole state (tens of MB: CRD schemas) after every step;
           # skipping intermediate checkpoints cut a full deploy from >15 min to 2 min here. A crash
           # then loses only the interrupted update's records: creates are upserts (server-side
           # apply) and cluster creates adopt a cluster that is already there, so a re-run converges.
           "PULUMI_SKIP_CHECKPOINTS": "true"}
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", os.environ.get("PULUMI_CONFIG_PASSPHRASE", ""))
    if extra:
        env.update(extra)
    return env


@dataclass
class TempStack:
    """A stack in its own workspace and backend; `stack` is the Automation API handle."""

    name: str
    work_dir: Path
    stack: auto.Stack
    env: dict[str, str] = field(default_factory=dict)
    state_dir: Path | None = None
    project: str = PROJECT

    def state_file_text(self) -> str:
        """The stack's state exactly as the file backend stores it (secrets encrypted)."""
        assert self.state_dir is not None
        return (self.state_dir / ".pulumi" / "stacks" / self.project / f"{self.name}.json").read_text()

    def set_config(self, raw: Mapping[str, Any], secret_paths: Mapping[str, str] | None = None) -> None:
        """Replace the stack's config: objects go into the stack file as YAML (as `pulumi config set
        --path` would leave them), then each secret is set (encrypted) at its path."""
        import yaml

        settings_file = self.work_dir / f"Pulumi.{self.name}.yaml"
        settings = yaml.safe_load(settings_file.read_text()) if settings_file.exists() else {}
        settings = settings or {}
        settings["config"] = {f"{PROJECT}:{k}": v for k, v in raw.items()}
        settings_file.write_text(yaml.safe_dump(settings, sort_keys=False))
        for path, value in (secret_paths or {}).items():
            self.stack.set_config(f"{PROJECT}:{path}", auto.ConfigValue(value, secret=True), path=True)


def _workspace_parts(base_dir: Path, prefix: str, env: Mapping[str, str] | None) -> tuple[str, Path, Path, dict]:
    """A random stack name, its work dir, a file backend under `base_dir`, and the Pulumi env."""
    name = unique_name(prefix)
    work_dir = base_dir / name
    state = base_dir / "state"
    work_dir.mkdir(parents=True)
    state.mkdir(exist_ok=True)
    return name, work_dir, state, pulumi_env({"PULUMI_CONFIG_PASSPHRASE": "kfstack-test", **(env or {})})


def pulumi_command() -> auto.PulumiCommand:
    """The pinned Pulumi CLI for the Automation API.

    A binary that does not print a version (a broken or wrong download, a bad KFSTACK_BIN_PULUMI)
    is named with what it printed and the fix: the Automation API's own error calls it "probably
    an internal error" and shows neither.
    """
    from infra.toolchain import ToolchainError, tool_path
    from infra.toolchain.locate import override_variable
    from smoke_tests.run import run

    binary = tool_path("pulumi")
    try:
        return auto.PulumiCommand(root=str(binary.parent.parent))  # <root>/bin/pulumi
    except auto.InvalidVersionError:
        said = run([str(binary), "version"], timeout=60, check=False)
        printed = (said.stdout + said.stderr).strip()[:200]
        raise ToolchainError(
            f"{binary} is not a working Pulumi CLI: `pulumi version` printed {printed!r}, not a version. "
            f"Reinstall it with `kfstack tools install pulumi --force`, or point {override_variable('pulumi')} "
            "at a Pulumi CLI") from None


def temp_stack(base_dir: Path, *, prefix: str = "t", env: Mapping[str, str] | None = None) -> TempStack:
    """A new stack with a random name, a file backend under `base_dir`, and the repo's program."""
    name, work_dir, state, full_env = _workspace_parts(base_dir, prefix, env)
    settings = auto.ProjectSettings(
        name=PROJECT, main=str(REPO_ROOT),
        runtime=auto.ProjectRuntimeInfo(name="python", options={
            "toolchain": "pip", "virtualenv": str(REPO_ROOT / ".venv")}),
        backend=auto.ProjectBackend(url=f"file://{state}"))
    workspace = auto.LocalWorkspace(work_dir=str(work_dir), project_settings=settings, env_vars=full_env,
                                    pulumi_command=pulumi_command())
    stack = auto.Stack.create(name, workspace)
    return TempStack(name, work_dir, stack, full_env, state, settings.name)


def inline_stack(base_dir: Path, program: Callable[[], None], *, prefix: str = "i",
                 env: Mapping[str, str] | None = None) -> TempStack:
    """A throwaway stack whose program is a Python function run in this process (for tests that
    exercise one Pulumi behaviour against a real API server without the whole project)."""
    import sys

    # The engine starts the program's dynamic providers with `python3` from PATH unless told:
    # they must run in this interpreter's environment, where pulumi and the project are installed.
    name, work_dir, state, full_env = _workspace_parts(base_dir, prefix,
                                                       {"PULUMI_PYTHON_CMD": sys.executable, **(env or {})})
    settings = auto.ProjectSettings(name=f"{PROJECT}-inline", runtime="python",
                                    backend=auto.ProjectBackend(url=f"file://{state}"))
    stack = auto.create_stack(name, project_name=settings.name, program=program, opts=auto.LocalWorkspaceOptions(
        work_dir=str(work_dir), project_settings=settings, env_vars=full_env, pulumi_command=pulumi_command()))
    return TempStack(name, work_dir, stack, full_env, state, settings.name)
