"""The JSON Schema of a stack file (stacks/Pulumi.<stack>.yaml), made from the settings models, so
an editor checks keys, choices and value shapes as the stack file is written (`kfstack config
schema`). It checks each value's form; what needs the whole stack (users and secrets of a non-dev
stack, component and claim names of the release) is checked when the config is parsed."""

from __future__ import annotations

from typing import Any

from infra.config import PROJECT, StackSettings

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def stack_file_schema() -> dict[str, Any]:
    settings = StackSettings.model_json_schema(by_alias=True, mode="validation")
    config = {
        "type": "object",
        "description": f"The stack's config: the project's keys ({PROJECT}:<key>) and other providers' own.",
        "properties": {f"{PROJECT}:{key}": value for key, value in settings["properties"].items()},
        # Other namespaces (kubernetes:context, aws:region, ...) belong to their providers.
        "patternProperties": {f"^(?!{PROJECT}:)[^:]+:": {}},
        "additionalProperties": False,
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"{PROJECT} stack file (Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {"config": config},
        "$defs": settings.get("$defs", {}),
    }
