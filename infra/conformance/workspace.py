"""The run's workspace: the project's settings and the stack's config file, copied.

The run works on a copy of the stack's config file in the report directory, so the stack file in
the repository is never rewritten (the upgrade points the copy at the previous release first).
The runner and the upgrade step both use these; neither imports the other for them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from infra.automation import pulumi_command
from infra.config import PROJECT
from infra.errors import UsageError


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


def file_backend_dir(project_dir: Path, env: Mapping[str, str]) -> Path | None:
    """The state directory of a file backend, from `PULUMI_BACKEND_URL` (the run's environment,
    then the user's) or else the project's `backend.url`; None for any other backend."""
    backend = env.get("PULUMI_BACKEND_URL") or os.environ.get("PULUMI_BACKEND_URL") or \
        str((project_settings(project_dir).get("backend") or {}).get("url", ""))
    if not backend.startswith("file://"):
        return None
    path = Path(backend[len("file://"):]).expanduser()
    return path if path.is_absolute() else project_dir.resolve() / path


def open_stack(project_dir: Path, stack: str, workdir: Path, env: dict[str, str]) -> auto.Stack:
    """Select the stack (creating it in the project, as `pulumi stack select --create` would, so
    its encryption salt lands in the user's stack file), then open it from the run's workspace."""
    state_dir = file_backend_dir(project_dir, env)
    if state_dir is not None:
        # A fresh machine has no state directory yet; the file backend will not create it.
        state_dir.mkdir(parents=True, exist_ok=True)
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
