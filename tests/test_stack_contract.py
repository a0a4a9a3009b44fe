"""T0: the stack-outputs contract between the Pulumi program and the smoke suite.

The schema lives in the suite (`smoke_tests.contract`); the program's outputs for every stack file
satisfy it, the suite's own small checker agrees with `jsonschema` on it, and a mismatch is refused
before any check with the field named. (The sim tier holds a real stack's outputs to it too:
`tests/test_sim_stack.py::test_outputs_are_correct_and_secret_where_they_should_be`.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra.manifests.objects import Rendered
from infra.outputs import stack_outputs
from smoke_tests.contract import CONTRACT_VERSION, SCHEMA, ContractError, check, problems
from smoke_tests.stack_outputs import StackOutputs, load_stack_outputs
from tests.helpers import REPO, stack_file_config

STACK_FILES = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))
GOOD: dict[str, Any] = {"contractVersion": CONTRACT_VERSION,
                        "ingress": {"namespace": "istio-system", "service": "istio-ingressgateway", "port": 80},
                        "users": [{"email": "user@example.com", "profile": None}]}


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def _outputs_of(path: Path) -> dict[str, Any]:
    cfg = stack_file_config(path)
    rendered = Rendered(objects=[{"kind": "Namespace"}], release=cfg.kubeflow.release,
                        components=["dex", "pipelines", "kserve"], tree=Path("."), adjustments=["an adjustment"])
    return stack_outputs(cfg, rendered)


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_every_stack_files_outputs_satisfy_the_contract(path: Path) -> None:
    outputs = {**_outputs_of(path), "kubeconfig": "apiVersion: v1\n"}
    assert outputs["contractVersion"] == CONTRACT_VERSION
    assert problems(outputs) == []
    jsonschema.validate(outputs, SCHEMA)
    parsed = StackOutputs.parse(json.loads(json.dumps(outputs)))
    assert parsed.pipeline_packages == tuple(outputs["pipelinePackages"]) != ()


BAD: list[tuple[Any, list[str]]] = [
    ({**GOOD, "contractVersion": 2}, ["contractVersion: is 2, must be 1"]),
    ({k: v for k, v in GOOD.items() if k != "users"}, ["users: missing (required)"]),
    ({**GOOD, "ingress": {"namespace": "istio-system", "service": "", "port": "80"}},
     ["ingress.service: must not be empty", "ingress.port: is str '80', must be integer"]),
    ({**GOOD, "ingress": {"namespace": "n", "service": "s", "port": 0}}, ["ingress.port: 0 is below 1"]),
    ({**GOOD, "users": [{"email": "a@b.c"}, {"profile": "p"}]}, ["users[1].email: missing (required)"]),
    ({**GOOD, "components": ["dex", 3]}, ["components[1]: is int 3, must be string"]),
    ({**GOOD, "objectCount": True}, ["objectCount: is bool True, must be ['integer', 'null']"]),
    ({**GOOD, "pipelinePackages": "numpy<2"}, ["pipelinePackages: is str 'numpy<2', must be array"]),
    ([GOOD], ["(the document): is list [" + repr(GOOD)[1:-1].join("{}") + "], must be object"]),
]


@pytest.mark.parametrize(("document", "expected"), BAD, ids=[e[0] for _, e in BAD])
def test_a_mismatch_names_each_field_and_jsonschema_agrees(document: Any, expected: list[str]) -> None:
    assert problems(document) == expected
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(document)


def test_optional_fields_may_be_absent_or_null_and_unknown_ones_pass() -> None:
    document = {**GOOD, "kubeflowVersion": None, "pipelineImage": None, "aFieldOfALaterMinor": {"x": 1}}
    assert problems(document) == []
    assert jsonschema.Draft202012Validator(SCHEMA).is_valid(document)


def test_outputs_from_before_the_contract_are_refused_with_the_fix() -> None:
    with pytest.raises(ContractError) as info:
        check({k: v for k, v in GOOD.items() if k != "contractVersion"}, "stack dev's outputs")
    assert str(info.value) == (
        "stack dev's outputs does not satisfy the stack-outputs contract v1: contractVersion: missing (required); "
        "outputs without contractVersion come from a stack last updated before the contract (run `pulumi up` "
        "again), or from a deployer that does not write version 1")


def test_a_saved_file_is_checked_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({**GOOD, "ingress": {**GOOD["ingress"], "port": "eighty"}}), encoding="utf-8")
    with pytest.raises(ContractError, match=r"ingress\.port: is str 'eighty', must be integer"):
        load_stack_outputs(path)


def test_the_plugin_refuses_a_file_that_misses_the_contract_before_any_test(pytester: pytest.Pytester) -> None:
    path = pytester.path / "outputs.json"
    path.write_text(json.dumps({**GOOD, "users": "user@example.com"}), encoding="utf-8")
    pytester.makepyfile("def test_never():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest("--stack-outputs", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--stack-outputs {path} does not satisfy the stack-outputs contract v1: users: is str " \
           "'user@example.com', must be array" in result.stderr.str()


def test_the_schema_prints_as_json() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "smoke_tests.contract"], capture_output=True, text=True,
                         check=True, timeout=60, cwd=REPO).stdout
    assert json.loads(out) == SCHEMA
