"""The objects every stack file renders, summarised as digests per kind: the record that
tests/test_stack_renders.py holds each change to (behaviour does not change by accident).

A change that means to change what a stack applies updates the record in the same commit:

    PYTHONPATH=. .venv/bin/python -m tests.stack_renders --manifests "$KFSTACK_MANIFESTS"

The stacks' user secrets are the tests' fixed ones (a stack file holds none in plain text), so the
render is a function of the stack file, the code and the manifests tree alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from infra.config import parse_stack_config
from infra.manifests.render import render
from tests.helpers import ALICE, REPO

RECORD = REPO / "tests" / "data" / "stack-renders.json"
STACK_FILES = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))


def summary(path: Path, tree: Path) -> dict[str, Any]:
    """One stack file's render: its object count, the digest of the whole YAML, a digest per kind."""
    raw = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(path.read_text())["config"].items()}
    secret_keys: set[str] = set()
    if not raw.get("devStack"):  # a user sets these as Pulumi secrets
        raw["auth"] = {**raw.get("auth", {}), "users": [ALICE], "oidcClient": {"secret": "s" * 24}}
        secret_keys = {"auth"}
    rendered = render(parse_stack_config(path.name.split(".")[1], raw, secret_keys), tree)
    kinds: dict[str, Any] = defaultdict(hashlib.sha256)
    for obj in rendered.objects:
        kinds[obj["kind"]].update(json.dumps(obj, sort_keys=True).encode())
    return {"objects": len(rendered.objects),
            "yaml": hashlib.sha256(rendered.to_yaml().encode()).hexdigest(),
            "kinds": {kind: digest.hexdigest()[:16] for kind, digest in sorted(kinds.items())}}


def summaries(tree: Path) -> dict[str, dict[str, Any]]:
    return {path.name: summary(path, tree) for path in STACK_FILES}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.stack_renders", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifests", type=Path, required=True, help="the upstream v1.11.0 manifests tree")
    args = parser.parse_args()
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(summaries(args.manifests), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORD}")


if __name__ == "__main__":
    main()
