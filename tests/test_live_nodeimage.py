"""T3 here: the node image's cache on the real build. A second build builds nothing; a changed
input rebuilds only the steps that depend on it, and the image it supersedes is removed."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest

from infra.nodeimage.build import build_node_image, image_id
from infra.nodeimage.pins import load_pins
from infra.runtime import docker
from smoke_tests.run import run
from tests.helpers import require_toolchain
from tests.live_fixtures import container_runtime  # noqa: F401 - a fixture

pytestmark = [pytest.mark.live, pytest.mark.slow]


def _quiet(_line: str) -> None:
    return None


@pytest.fixture(scope="module")
def built(container_runtime: docker.RuntimeState) -> str:  # noqa: F811 - the shared fixture
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("NOT RUN: the source route needs root and debootstrap (apt-get install debootstrap)")
    require_toolchain("kind")
    return build_node_image(say=_quiet).tag


def test_second_build_builds_nothing(built: str) -> None:
    lines: list[str] = []
    result = build_node_image(say=lines.append)
    assert result.tag == built
    assert result.summary.startswith("0 built"), "\n".join(lines)


def test_changed_input_rebuilds_only_what_depends_on_it(built: str) -> None:
    pins = load_pins()
    before = image_id(built)
    changed = dataclasses.replace(pins, pod_range="10.244.7.0/24")  # only the node's CNI config uses it
    lines: list[str] = []
    result = build_node_image(say=lines.append, pins=changed)
    rebuilt = [line.split(":")[0].strip() for line in lines if line.strip().endswith("s") and ": built in" in line]
    assert rebuilt == ["node image"], "\n".join(lines)
    assert image_id(built) != before
    assert run(["docker", "image", "inspect", str(before)], timeout=60, check=False).returncode != 0  # removed
    restored = build_node_image(say=_quiet, pins=pins)  # back to the pinned input: one step again
    assert restored.summary.startswith("1 built") and result.key != restored.key
