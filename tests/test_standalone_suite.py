"""The smoke suite installed alone (T2 local target): `pip install` of `smoke_tests/` into an empty
virtual environment gives the pytest plugin, without the Pulumi program, Pulumi or pydantic; its
checks collect there, and one of them (login) passes against the local conformance target.

The suite's dependencies come from PyPI once (pinned by constraints.txt) into a wheel directory in
the user cache, keyed by what decides them; later runs install from it with `--no-index`, offline.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from infra.local_target.target import LocalTarget
from infra.paths import cache_root
from infra.toolchain import ToolMissingError, find_binary
from smoke_tests.run import CommandError, run
from tests.helpers import REPO

SUITE = REPO / "smoke_tests"
CONSTRAINTS = REPO / "constraints.txt"


def suite_dependencies() -> list[str]:
    return list(tomllib.loads((SUITE / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"])


def wheel_dir() -> Path:
    """Wheels of the suite's dependencies (built from sdists where PyPI has no wheel), made once."""
    key = hashlib.sha256("\n".join([*suite_dependencies(), CONSTRAINTS.read_text(encoding="utf-8"),
                                    sys.version]).encode()).hexdigest()[:16]
    wheels = cache_root() / "smoke-suite-wheels" / key
    if not (wheels / ".complete").exists():
        try:
            run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", wheels, "-c", CONSTRAINTS,
                 *suite_dependencies()], timeout=1800)
        except CommandError as exc:
            pytest.skip(f"NOT RUN: the suite's dependencies could not be fetched from PyPI:\n{exc}")
        (wheels / ".complete").write_text("", encoding="utf-8")
    return wheels


def suite_wheel(tmp_path: Path) -> Path:
    """The suite's own wheel, built from a copy (the build leaves build/ and egg-info behind)."""
    source = tmp_path / "source"
    shutil.copytree(SUITE, source, ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
         tmp_path / "dist", source], timeout=300)
    (wheel,) = (tmp_path / "dist").glob("kubeflow_smoke_tests-*.whl")
    return wheel


def venv_python(venv: Path) -> list[str | Path]:
    """The venv's Python in isolated mode: no PYTHONPATH (ours points at the repository), no user site
    directory, and no current directory on sys.path, so only what pip installed there is importable."""
    return [venv / "bin" / "python", "-I"]


@pytest.fixture(scope="module")
def suite_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("standalone")
    wheels, wheel = wheel_dir(), suite_wheel(tmp)
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", venv], timeout=300)
    run([*venv_python(venv), "-m", "pip", "install", "--quiet", "--no-index", "--find-links", wheels, wheel],
        timeout=900, cwd=tmp)
    return venv


def _venv_run(venv: Path, *args: str | Path, cwd: Path, timeout: float = 600) -> str:
    result = run([*venv_python(venv), *args], timeout=timeout, cwd=cwd, check=False)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


pytestmark = [pytest.mark.standin, pytest.mark.slow]


def test_the_venv_holds_the_suite_and_not_the_program(suite_venv: Path, tmp_path: Path) -> None:
    found = _venv_run(suite_venv, "-c", "import importlib.util as u, smoke_tests; print(smoke_tests.__file__); "
                      "print(*[n for n in ('infra', 'pulumi', 'pulumi_kubernetes', 'pydantic') if u.find_spec(n)])",
                      cwd=tmp_path).splitlines()
    assert found[0].startswith(str(suite_venv)), found  # the installed copy, not the repository's
    assert found[1:] == [""], f"installed with the suite: {found[1:]}"


def test_its_checks_collect_and_one_passes_against_the_local_target(suite_venv: Path, tmp_path: Path) -> None:
    for name in ("dex", "oauth2-proxy", "nginx"):
        try:
            find_binary(name)
        except ToolMissingError as exc:
            pytest.skip(f"NOT RUN: the local target needs {name} ({exc})")
    workdir = tmp_path / "target"
    target = LocalTarget(workdir, timeout=120)
    try:
        target.up(detach=True)
        options = ["-p", "no:cacheprovider", "--local-target", "--local-target-dir", str(workdir),
                   "--smoke-report", str(tmp_path / "smoke.md"), "--diagnostics-dir", str(tmp_path / "diag")]
        common = ["-m", "pytest", "--pyargs", "smoke_tests.checks", *options]
        collected = _venv_run(suite_venv, *common, "--collect-only", "-q", cwd=tmp_path)
        ids = [line for line in collected.splitlines() if "::" in line]
        # The same checks as the repository's copy collects, from the repository, whose conftest files do
        # not apply to the suite (pytest then held the report's plugin object in a set: it must hash).
        here = run([sys.executable, *common, "--collect-only", "-q"], timeout=300, cwd=REPO).stdout
        assert len(ids) == len([line for line in here.splitlines() if "::" in line]) > 20, collected
        assert any(i.endswith("test_login.py::test_login_gives_a_session_the_dashboard_accepts") for i in ids), ids
        passed = _venv_run(suite_venv, *common, "-k", "test_login_gives_a_session_the_dashboard_accepts", "-rA",
                           cwd=tmp_path)
        assert "PASSED" in passed and " 1 passed" in passed, passed
        assert f"local conformance target ({workdir.resolve()})" in (tmp_path / "smoke.md").read_text()
    finally:
        target.down()
