"""The stack-outputs contract: what a deployment tells the suite, as a versioned JSON Schema.

The kubeflow-stacks Pulumi program exports these outputs (`pulumi stack output --json`); any other
deployer can write the same document and run the suite with `--stack-outputs FILE`. The schema is
defined here, in the suite, and the program imports it (its outputs carry `contractVersion` and a
test holds them to the schema), so the two cannot drift apart. Print it with
`python -m smoke_tests.contract`.

`contractVersion` changes when a field changes meaning or a required one is added; a new optional
field does not change it. The suite validates with the small checker below (the subset of JSON
Schema this document uses), so it needs no schema library; the project's tests check the document
with `jsonschema` too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

CONTRACT_VERSION = 1

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
_TEXTS: dict[str, Any] = {"type": "array", "items": _TEXT}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://kubeflow-stacks.dev/schemas/stack-outputs/v1.json",
    "title": "kubeflow-stacks stack outputs",
    "description": "How to reach a Kubeflow deployment and who can log in; no passwords (the suite reads "
                   "those from KFSTACK_PASSWORD_<n> or KFSTACK_USER_PASSWORD).",
    "type": "object",
    "required": ["contractVersion", "ingress", "users"],
    "properties": {
        "contractVersion": {"const": CONTRACT_VERSION,
                            "description": "this schema's version; the suite refuses another"},
        "kubeconfig": {"type": "string",
                       "description": "a kubeconfig for the cluster (a secret output); absent from a "
                                      "saved file, where --kubeconfig gives it"},
        "ingress": {
            "type": "object", "required": ["namespace", "service", "port"],
            "description": "the gateway Service the suite port-forwards to",
            "properties": {"namespace": _TEXT, "service": _TEXT,
                           "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                           "kind": {"type": "string", "description": "istio, or `standin: ...` where "
                                                                     "another server stands in for it"}},
        },
        "users": {"type": "array", "description": "who can log in (Dex), and the profile each owns",
                  "items": {"type": "object", "required": ["email"],
                            "properties": {"email": _TEXT, "profile": {"type": ["string", "null"]}}}},
        "profiles": _TEXTS,
        "kubeflowVersion": {"type": ["string", "null"], "description": "release tag, e.g. v1.11.0"},
        "components": {**_TEXTS, "description": "the Kubeflow components deployed (pipelines, kserve, ...)"},
        "clusterProvider": {"type": ["string", "null"], "description": "kind, minikube, sim, existing, eks, ..."},
        "clusterName": {"type": ["string", "null"]},
        "dexIssuer": {"type": ["string", "null"]},
        "objectCount": {"type": ["integer", "null"], "minimum": 0},
        "adjustments": {"type": "array", "items": {"type": "string"}},
        "connect": {"type": "string"},
        "pipelineImage": {"type": ["string", "null"],
                          "description": "an image for pipeline steps that already holds kfp and their "
                                         "packages; null: kfp's default image, packages installed at run time"},
        "pipelinePackages": {**_TEXTS, "description": "pip requirements of the sample pipelines' steps: what "
                                                      "the release's KServe sklearn server loads models with"},
    },
}


class ContractError(ValueError):
    """The outputs do not satisfy the schema; the message names every field that does not."""


_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "object": (dict,), "array": (list,),
                                       "null": (type(None),), "boolean": (bool,), "number": (int, float)}


def _type_ok(value: Any, names: str | list[str]) -> bool:
    for name in [names] if isinstance(names, str) else names:
        if isinstance(value, _TYPES[name]) and not (name in ("integer", "number") and isinstance(value, bool)):
            return True
    return False


def problems(value: Any, schema: Mapping[str, Any] = SCHEMA, at: str = "") -> list[str]:
    """Every way `value` misses `schema`, each as `<field>: <what is wrong>` (the subset of JSON
    Schema used above: type, const, required, properties, items, minLength, minimum, maximum)."""
    where = at or "(the document)"
    if "const" in schema and value != schema["const"]:
        return [f"{where}: is {value!r}, must be {schema['const']!r}"]
    if "type" in schema and not _type_ok(value, schema["type"]):
        return [f"{where}: is {type(value).__name__} {value!r}, must be {schema['type']}"]
    found: list[str] = []
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        found.append(f"{where}: must not be empty")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{where}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{where}: {value} is above {schema['maximum']}")
    if isinstance(value, dict):
        prefix = f"{at}." if at else ""
        found += [f"{prefix}{key}: missing (required)" for key in schema.get("required", []) if key not in value]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                found += problems(value[key], sub, f"{prefix}{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += problems(item, schema["items"], f"{at}[{index}]")
    return found


def check(outputs: Any, source: str) -> None:
    """Raise `ContractError` naming each field of `outputs` (read from `source`) that misses the schema."""
    found = problems(outputs)
    if found:
        hint = ""
        if isinstance(outputs, dict) and "contractVersion" not in outputs:
            hint = (f"; outputs without contractVersion come from a stack last updated before the contract "
                    f"(run `pulumi up` again), or from a deployer that does not write version {CONTRACT_VERSION}")
        raise ContractError(f"{source} does not satisfy the stack-outputs contract v{CONTRACT_VERSION}: "
                            + "; ".join(found) + hint)


if __name__ == "__main__":
    print(json.dumps(SCHEMA, indent=2))
