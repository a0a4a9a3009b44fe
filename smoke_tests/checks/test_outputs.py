"""The stack's outputs, the contract between the Pulumi program and this suite: their shape is
checked when they are read (`smoke_tests.contract`); these checks are what a schema cannot say:
complete, and agreeing with each other (every user has a profile the stack made). Runs on any
stack, simulated or not."""

from __future__ import annotations

import re

import pytest

from smoke_tests.target import STACK_OUTPUTS, Target

pytestmark = pytest.mark.outputs


def test_every_user_owns_a_listed_profile(kf_target: Target) -> None:
    kf_target.require(STACK_OUTPUTS)
    outputs = kf_target.outputs
    assert outputs.users, "the stack lists no users: nobody can log in"
    unlisted = [u for u in outputs.users if u.get("profile") not in outputs.profiles]
    assert unlisted == [], f"users without a profile in the stack's profiles {list(outputs.profiles)}"


def test_outputs_name_the_release_components_and_objects(kf_target: Target) -> None:
    kf_target.require(STACK_OUTPUTS)
    outputs = kf_target.outputs
    assert re.fullmatch(r"v\d+\.\d+\.\d+", outputs.kubeflow_version or ""), outputs.kubeflow_version
    assert outputs.components, "the stack lists no components"
    assert (outputs.object_count or 0) > 0, f"objectCount {outputs.object_count}"
