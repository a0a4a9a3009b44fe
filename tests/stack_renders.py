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

from infra.manifests.render import render
from tests.helpers import REPO, stack_file_config

RECORD = REPO / "tests" / "data" / "stack-renders.json"
STACK_FILES = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))


def summary(path: Path, tree: Path) -> dict[str, Any]:
    """One stack file's render: its object count, the digest of the whole YAML, a digest per kind."""
    rendered = render(stack_file_config(path), tree)
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
