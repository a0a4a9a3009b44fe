"""`kfstack config schema`: the JSON Schema of a stack file, for editors that validate YAML."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", help="the JSON Schema of a stack file (stacks/Pulumi.<stack>.yaml)",
                       description="Print the JSON Schema of a stack file's config, made from the same "
                                   "models that validate it, so an editor can check Pulumi.<stack>.yaml "
                                   "as it is written (for example with a `# yaml-language-server: $schema=` "
                                   "line). Checks that need the whole stack run when it is parsed.")
    p.add_argument("action", choices=("schema",), help="schema: print the JSON Schema")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from infra.settings.schema import stack_file_schema

    text = json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote the stack file schema to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
