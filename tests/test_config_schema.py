"""T0: `kfstack config schema` prints the JSON Schema of a stack file, made from the settings
models: every shipped stack file validates against it, and the mistakes an editor should flag
(a misspelt key, a choice that does not exist, a value of the wrong shape) do not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from infra.cli import main as cli
from infra.settings.schema import stack_file_schema
from tests.helpers import REPO

STACK_FILES = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = stack_file_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _errors(validator: Draft202012Validator, document: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_cli_prints_the_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli(["config", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == stack_file_schema()
    assert cli(["config", "schema", "-o", str(tmp_path / "schema.json")]) == 0
    assert json.loads((tmp_path / "schema.json").read_text()) == stack_file_schema()


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_every_shipped_stack_file_validates(path: Path, validator: Draft202012Validator) -> None:
    assert _errors(validator, yaml.safe_load(path.read_text())) == []


def test_secrets_set_with_pulumi_validate(validator: Draft202012Validator) -> None:
    """`pulumi config set --secret --path` leaves {secure: ...} where the value was."""
    document = {"config": {"kubeflow-stacks:auth": {
        "users": [{"email": "a@example.org", "password": {"secure": "v1:abc"}}],
        "oidcClient": {"secret": {"secure": "v1:def"}}}, "kubernetes:context": "kind-x"}}
    assert _errors(validator, document) == []


MISTAKES = [
    ("a misspelt top-level key", ("config", "kubeflow-stacks:clsuter"), {}),
    ("a misspelt setting", ("config", "kubeflow-stacks:storage", "defaultclass"), "standard"),
    ("an unknown provider", ("config", "kubeflow-stacks:cluster", "provider"), "openstack"),
    ("another provider's section", ("config", "kubeflow-stacks:cluster", "minikube"), {}),
    ("a count as a word", ("config", "kubeflow-stacks:cluster", "kind", "workers"), "two"),
    ("a relative path", ("config", "kubeflow-stacks:storage", "staticHostPath"), "vols"),
    ("an unknown storage mode", ("config", "kubeflow-stacks:storage", "mode"), "ceph"),
    ("a quantity as a word", ("config", "kubeflow-stacks:storage", "claims"), {"katib-mysql": {"size": "lots"}}),
]


@pytest.mark.parametrize(("where", "value"), [(w, v) for _, w, v in MISTAKES], ids=[n for n, _, _ in MISTAKES])
def test_the_schema_flags_each_mistake(where: tuple[str, ...], value: Any, validator: Draft202012Validator) -> None:
    document = copy.deepcopy(yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text()))
    target = document
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    assert _errors(validator, document) != []
