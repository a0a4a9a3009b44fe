"""`kfstack render`: the exact objects a stack applies, as multi-document YAML."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from infra.config import PROJECT, StackConfig, parse_stack_config
from infra.paths import REPO_ROOT
from infra.run import CommandError, run

if TYPE_CHECKING:
    from infra.manifests.objects import Rendered


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="print the objects a stack applies (multi-document YAML)",
                       description="Render the stack's Kubeflow objects exactly as `pulumi up` applies "
                                   "them. Secrets appear as Secret objects holding bcrypt hashes, never "
                                   "plain passwords.")
    p.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--manifests", metavar="PATH", help="local Kubeflow manifests tree (default: the "
                   "stack's kubeflow.manifests, $KFSTACK_MANIFESTS, or the pinned release fetched once)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--stacks-dir", default=str(REPO_ROOT / "stacks"), help=argparse.SUPPRESS)
    p.set_defaults(func=main)


def stack_config_from_file(stack: str, stacks_dir: Path) -> StackConfig:
    """Parse a stack file. Secure values need the Pulumi CLI (and the stack's passphrase) to decrypt."""
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.name.split(".")[1] for p in stacks_dir.glob("Pulumi.*.yaml")))
        raise SystemExit(f"no stack file {path}; stacks: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    config: dict[str, Any] = data.get("config") or {}
    if "secure:" in path.read_text():
        return _config_via_pulumi(stack)
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{PROJECT}:")}
    return parse_stack_config(stack, raw, set())


def _config_via_pulumi(stack: str) -> StackConfig:
    from infra.toolchain import tool_path, tools_env

    try:
        out = run([tool_path("pulumi"), "config", "--show-secrets", "--json", "-s", stack],
                  timeout=120, cwd=REPO_ROOT, env=tools_env()).stdout
    except CommandError as exc:
        raise SystemExit(f"could not read stack {stack}'s secrets (is PULUMI_CONFIG_PASSPHRASE set?):\n{exc}") from exc
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
    return parse_stack_config(stack, raw, secret_keys)


def render_stack(stack: str, stacks_dir: Path, manifests: str | None,
                 adjust: Callable[[StackConfig], StackConfig] | None = None) -> Rendered:
    """Render a stack from its file: config, manifests tree (flag, stack, env or fetch), objects."""
    from infra.manifests.render import render
    from infra.manifests.source import resolve_tree

    cfg = stack_config_from_file(stack, stacks_dir)
    if adjust is not None:
        cfg = adjust(cfg)
    tree = resolve_tree(cfg.kubeflow.release, cfg.kubeflow.manifests_path, manifests)
    return render(cfg, tree)


def main(args: argparse.Namespace) -> int:
    from infra.errors import UserError
    from infra.toolchain.model import ToolchainError

    try:
        rendered = render_stack(args.stack, Path(args.stacks_dir), args.manifests)
    except (UserError, ToolchainError) as exc:
        print(exc, file=sys.stderr)
        return 2
    text = rendered.to_yaml()
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {len(rendered.objects)} objects of Kubeflow {rendered.release} to {args.output} "
              f"(adjustments: {', '.join(rendered.adjustments)})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
