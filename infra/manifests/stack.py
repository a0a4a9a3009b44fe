"""A stack's objects from its stack file (`stacks/Pulumi.<stack>.yaml`), without Pulumi's engine:
what `kfstack render` and `kfstack images` print, and exactly what `pulumi up` would apply.

The file's values are read as they are or, when it holds secure values, through the Pulumi CLI,
which decrypts them with the stack's passphrase.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from infra.config import PROJECT, StackConfig, parse_stack_config
from infra.errors import UserError
from infra.paths import REPO_ROOT
from smoke_tests.run import CommandError, run

if TYPE_CHECKING:
    from infra.manifests.objects import Rendered


@dataclass(frozen=True)
class StackValues:
    """A stack file's values under the project's namespace, not yet validated; which are secrets."""

    stack: str
    raw: dict[str, Any]
    secret_keys: frozenset[str] = frozenset()


def read_stack_values(stack: str, stacks_dir: Path) -> StackValues:
    """The stack file's values (its secure ones need the Pulumi CLI and the stack's passphrase)."""
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.name.split(".")[1] for p in stacks_dir.glob("Pulumi.*.yaml")))
        raise UserError(f"no stack file {path}; stacks: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    config: dict[str, Any] = data.get("config") or {}
    if "secure:" in path.read_text():
        return _values_via_pulumi(stack)
    return StackValues(stack, {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{PROJECT}:")})


def _values_via_pulumi(stack: str) -> StackValues:
    from infra.toolchain import tool_path, tools_env

    try:
        out = run([tool_path("pulumi"), "config", "--show-secrets", "--json", "-s", stack],
                  timeout=120, cwd=REPO_ROOT, env=tools_env()).stdout
    except CommandError as exc:
        raise UserError(f"could not read stack {stack}'s secrets (is PULUMI_CONFIG_PASSPHRASE set?):\n{exc}") from exc
    values = json.loads(out)
    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for key, item in values.items():
        if not key.startswith(f"{PROJECT}:"):
            continue
        name = key.split(":", 1)[1]
        value = item.get("objectValue", item.get("value"))
        raw[name] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
        if item.get("secret"):
            secret_keys.add(name)
    return StackValues(stack, raw, frozenset(secret_keys))


def render_stack(values: StackValues, manifests: str | None,
                 adjust: Callable[[StackConfig], StackConfig] | None = None) -> Rendered:
    """Validate the values and render: the manifests tree is `manifests`, else the stack's, else
    $KFSTACK_MANIFESTS, else the pinned release fetched once."""
    from infra.manifests.render import render
    from infra.manifests.source import resolve_tree

    cfg = parse_stack_config(values.stack, values.raw, set(values.secret_keys))
    if adjust is not None:
        cfg = adjust(cfg)
    tree = resolve_tree(cfg.kubeflow.release, cfg.kubeflow.manifests_path, manifests)
    return render(cfg, tree)
