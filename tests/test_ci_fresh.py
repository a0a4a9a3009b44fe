"""When the fresh-machine test runs again (infra/ci/fresh.py): the digest of the README set-up's
inputs, taken on a temporary tree. A changed input re-runs the test; a changed smoke check, doc or
bytecode does not; the digest is of contents, so clones and copies agree. A recorded pass with an
unchanged digest is NOT RUN naming that pass; KFSTACK_FRESH_CONTAINER_TEST=1 forces a run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from infra.ci.fresh import ENV, INPUTS, inputs_digest, last_pass, not_run_reason, record_pass, record_path
from tests.helpers import REPO


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _sample(path: str) -> Path:
    """A file that a change to the input `path` touches (a folder's own file, or the file itself)."""
    return Path(path) / "module.py" if "." not in Path(path).name else Path(path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A checkout's shape: every input, and what is not one (a smoke check, docs, the README)."""
    root = tmp_path / "checkout"
    for path, _why in INPUTS:
        _write(root / _sample(path), f"# {path}\n")
    _write(root / "scripts" / "setup", "#!/bin/sh\necho set-up\n")
    (root / "scripts" / "setup").chmod(0o755)
    _write(root / "smoke_tests" / "checks" / "test_login.py", "def test_login(): pass\n")
    _write(root / "docs" / "toolchain.md", "# toolchain\n")
    _write(root / "README.md", "# readme\n")
    _write(root / "infra" / "config.py", "X = 1\n")
    return root


@pytest.mark.parametrize("path", [p for p, _ in INPUTS])
def test_a_changed_input_changes_the_digest(tree: Path, path: str) -> None:
    before = inputs_digest(tree)
    with (tree / _sample(path)).open("a") as handle:
        handle.write("# changed\n")
    assert inputs_digest(tree) != before


def test_a_new_file_in_an_input_folder_changes_the_digest(tree: Path) -> None:
    before = inputs_digest(tree)
    _write(tree / "infra" / "toolchain" / "new_route.py", "")
    assert inputs_digest(tree) != before


def test_a_script_that_loses_its_executable_bit_changes_the_digest(tree: Path) -> None:
    before = inputs_digest(tree)
    (tree / "scripts" / "setup").chmod(0o644)
    assert inputs_digest(tree) != before


@pytest.mark.parametrize("path", ["smoke_tests/checks/test_login.py", "docs/toolchain.md", "README.md",
                                  "infra/config.py"])
def test_a_changed_smoke_check_doc_or_other_module_leaves_it(tree: Path, path: str) -> None:
    before = inputs_digest(tree)
    with (tree / path).open("a") as handle:
        handle.write("# changed\n")
    assert inputs_digest(tree) == before


def test_bytecode_mtimes_and_the_checkout_s_place_leave_it(tree: Path, tmp_path: Path) -> None:
    before = inputs_digest(tree)
    _write(tree / "infra" / "toolchain" / "__pycache__" / "module.cpython-311.pyc", "bytecode")
    _write(tree / "tests" / "fresh_container.cpython-311.pyc", "bytecode")
    for path in tree.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    assert inputs_digest(tree) == before
    elsewhere = tmp_path / "another" / "clone"
    shutil.copytree(tree, elsewhere)
    assert inputs_digest(elsewhere) == before


def test_a_missing_input_counts(tree: Path) -> None:
    before = inputs_digest(tree)
    (tree / "constraints.txt").unlink()
    missing = inputs_digest(tree)
    assert missing != before
    _write(tree / "constraints.txt", "")
    assert inputs_digest(tree) not in (before, missing)


def test_every_input_exists_in_this_checkout() -> None:
    """A renamed input would otherwise drop out of the digest unnoticed."""
    assert [p for p, _ in INPUTS if not (REPO / p).exists()] == []
    assert all(why.strip() for _, why in INPUTS)


def test_unchanged_inputs_since_a_pass_are_not_run_naming_that_pass(tree: Path, isolated_cache: Path) -> None:
    ci = {"CI": "true"}
    assert not_run_reason(ci, tree) is None  # no pass recorded yet: it runs
    done = record_pass(inputs_digest(tree), "0123456789abcdef0123", 1922.4, setup_seconds=373, test_seconds=1374)
    assert record_path() == isolated_cache / "fresh-machine-pass.json"
    assert last_pass() == done
    reason = not_run_reason(ci, tree)
    assert reason == (f"NOT RUN: passed at {done.digest[:12]} on {done.date[:10]} {done.date[11:16]} UTC "
                      "for commit 0123456789ab; set-up inputs unchanged")
    assert not_run_reason({**ci, ENV: "1"}, tree) is None  # forced
    assert not_run_reason({**ci, ENV: "0"}, tree) == f"NOT RUN: {ENV}=0 leaves it out"
    with (tree / "scripts" / "setup").open("a") as handle:
        handle.write("echo changed\n")
    assert not_run_reason(ci, tree) is None  # an input changed: it runs again


def test_outside_ci_it_runs_only_when_asked(tree: Path, isolated_cache: Path) -> None:
    reason = not_run_reason({}, tree)
    assert reason is not None and reason.startswith("NOT RUN: ")
    assert not_run_reason({ENV: "1"}, tree) is None


def test_an_unreadable_record_runs_it(tree: Path, isolated_cache: Path) -> None:
    _write(record_path(), "{not json")
    assert last_pass() is None
    assert not_run_reason({"CI": "true"}, tree) is None
