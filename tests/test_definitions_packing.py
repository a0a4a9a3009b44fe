"""T0: the CRD resource keeps its definitions' bodies packed in the state (they were half of a full
release's state, which every `pulumi up` reads and writes), and a stack whose state holds them
unpacked, as older versions stored them, moves over with no change to apply."""

from __future__ import annotations

import json
from typing import Any

from infra.definitions import DefinitionsProvider, bodies_of, definition_bodies, packed_definitions, unpack

KUBECONFIG = "apiVersion: v1\nkind: Config\n"


def crd(plural: str, description: str = "a widget") -> dict[str, Any]:
    schema = {"type": "object", "description": description,
              "properties": {f"field{i}": {"type": "string", "description": description * 4} for i in range(60)}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.example.org"},
            "spec": {"group": "example.org", "names": {"plural": plural, "kind": plural.title()[:-1]},
                     "scope": "Namespaced",
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def inputs(definitions: dict[str, str]) -> dict[str, Any]:
    return {"definitions": definitions, "kubeconfig": KUBECONFIG, "context": None}


def test_packed_bodies_unpack_to_the_same_json_and_take_far_less_room() -> None:
    objects = [crd("widgets"), crd("gadgets")]
    packed = packed_definitions(objects)
    plain = definition_bodies(objects)
    assert bodies_of(inputs(packed)) == plain
    assert json.loads(unpack(packed["widgets.example.org"])) == objects[0]
    assert sum(map(len, packed.values())) * 4 < sum(map(len, plain.values()))


def test_a_body_stored_unpacked_reads_as_it_is() -> None:
    plain = definition_bodies([crd("widgets")])
    assert bodies_of(inputs(plain)) == plain


def test_a_state_of_unpacked_bodies_moves_to_packed_ones_with_no_change() -> None:
    """The outputs keep digests of the JSON, so an old state's outputs diff clean against packed
    inputs of the same definitions, and a changed definition is still seen."""
    provider = DefinitionsProvider()
    objects = [crd("widgets"), crd("gadgets")]
    old_outputs = provider._outs(inputs(definition_bodies(objects)))  # as an older version stored them
    assert not provider.diff("customresourcedefinitions", old_outputs, inputs(packed_definitions(objects))).changes
    changed = [crd("widgets", "a bigger widget"), crd("gadgets")]
    assert provider.diff("customresourcedefinitions", old_outputs, inputs(packed_definitions(changed))).changes
    assert provider._outs(inputs(packed_definitions(objects))) == old_outputs
