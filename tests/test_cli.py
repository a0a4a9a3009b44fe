"""kfstack's render and doctor commands, run as a user runs them; every sub-command's help, and the
one handler that reports a `UserError` from any of them."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra.auth.passwords import verify
from infra.cli import COMMAND_MODULES, build_parser, main
from infra.config import UPSTREAM_DEFAULT_PASSWORD
from infra.errors import UserError
from tests.helpers import REPO


def kfstack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=600, check=False)


@pytest.mark.render
def test_render_writes_the_stacks_objects(tmp_path: Path, manifests_tree: Path):
    out = tmp_path / "sim.yaml"
    result = kfstack("render", "--stack", "sim", "--manifests", str(manifests_tree), "-o", str(out))
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(out.read_text()) if o]
    assert f"wrote {len(objects)} objects of Kubeflow v1.11.0" in result.stderr
    assert not [o for o in objects if o["kind"].endswith("WebhookConfiguration")]  # sim adjustments
    text = out.read_text()
    assert UPSTREAM_DEFAULT_PASSWORD not in text
    [secret] = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "dex-passwords"]
    assert verify(UPSTREAM_DEFAULT_PASSWORD, secret["stringData"]["DEX_USER_PASSWORD"])


def test_render_of_a_stack_missing_secrets_names_the_keys(manifests_tree: Path):
    result = kfstack("render", "--stack", "minikube", "--manifests", str(manifests_tree))
    assert result.returncode == 2
    assert "kubeflow-stacks:auth.users = None: list at least one user" in result.stderr
    assert "kubeflow-stacks:auth.oidcClient.secret = None: set one with" in result.stderr


def test_render_of_an_unknown_stack_lists_the_stacks():
    result = kfstack("render", "--stack", "nope")
    assert result.returncode != 0
    assert "stacks: aks, dev, eks, existing, gke, kind-local, minikube, minikube-local, sim" in result.stderr


def test_doctor_reports_each_check_with_a_fix():
    result = kfstack("doctor")
    lines = result.stdout.splitlines()
    assert any(line.split()[1:2] == ["memory"] for line in lines if line[:4] in ("ok  ", "warn", "FAIL"))
    assert any("fs.inotify.max_user_watches" in line for line in lines)
    for i, line in enumerate(lines):
        if line.startswith(("warn", "FAIL")):
            assert lines[i + 1].strip().startswith("fix: "), line
    failed = [line for line in lines if line.startswith("FAIL")]
    assert result.returncode == (1 if failed else 0)


# --- one convention, one error handler ----------------------------------------------------------

def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every runnable sub-command, as its words (`("tools", "install")`)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs and path:
        yield path
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*path, name))


# The fewest arguments each sub-command parses with (what it then does is replaced by the test).
MINIMAL_ARGS: dict[tuple[str, ...], list[str]] = {
    ("render",): ["--stack", "sim"], ("doctor",): [], ("images",): ["--stack", "sim"],
    ("tools", "install"): [], ("tools", "list"): [], ("tools", "path"): ["kubectl"], ("tools", "env"): [],
    ("local",): ["status"], ("bench", "deploy"): [], ("conformance",): ["--stack", "sim"], ("report",): [],
    ("runtime", "start"): [], ("runtime", "stop"): [], ("runtime", "status"): [], ("runtime", "shim"): [],
    ("runtime", "release-routes"): ["kind:x"], ("nodeimage", "build"): [], ("nodeimage", "components"): [],
    ("nodeimage", "kicbase"): [],
    ("nodeimage", "show"): [], ("smoke-job",): ["--stack", "sim"], ("manifests",): ["path"],
    ("config",): ["schema"], ("migrate",): ["--stack", "sim"],
}
LEAVES = sorted(_leaves(build_parser()))


def test_every_sub_command_is_a_module_of_infra_commands():
    modules = {f"infra.commands.{p.stem}" for p in (REPO / "infra" / "commands").glob("*.py")
               if p.stem not in ("__init__", "base")}
    assert modules == set(COMMAND_MODULES)
    assert sorted(str(p.relative_to(REPO)) for p in (REPO / "infra").rglob("command.py")) == []
    assert sorted(MINIMAL_ARGS) == LEAVES, "a new sub-command: add its arguments to MINIMAL_ARGS"


@pytest.mark.parametrize("words", [(), *LEAVES], ids=lambda w: " ".join(w) or "kfstack")
def test_help_of_kfstack_and_of_every_sub_command(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert out.startswith(f"usage: kfstack {' '.join(words)}".rstrip())
    if not words:  # each sub-command listed with what it does
        for name in sorted({w[0] for w in LEAVES}):
            assert re.search(rf"^    {re.escape(name)}( {{2,}}|\n {{6,}})\S", out, re.MULTILINE), name


@pytest.mark.parametrize("words", LEAVES, ids=" ".join)
def test_a_user_error_in_any_sub_command_is_one_error_line_and_exit_1(
        words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    argv = [*words, *MINIMAL_ARGS[words]]
    func = build_parser().parse_args(argv).func

    def planted(args: argparse.Namespace) -> int:
        raise UserError(f"planted in {' '.join(words)}: the fix is here")

    monkeypatch.setattr(sys.modules[func.__module__], func.__name__, planted)
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: planted in {' '.join(words)}: the fix is here\n"
    assert captured.out == ""


def test_any_other_exception_is_a_bug_and_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch):
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr("infra.commands.doctor.main", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["doctor"])


@pytest.mark.parametrize(("argv", "line", "status"), [
    (["render", "--stack", "nope"], "error: no stack file ", 1),
    (["report", "--last", "0"], "error: --last must be at least 1", 2),
    (["bench", "deploy", "--manifests", "/nonexistent"], "error: need a manifests tree: --manifests PATH or "
                                                         "KFSTACK_MANIFESTS", 2),
    (["tools", "path", "no-such-tool"], "error: ", 1),
])
def test_a_commands_own_errors_keep_their_exit_status(argv: list[str], line: str, status: int,
                                                      capsys: pytest.CaptureFixture[str]):
    assert main(argv) == status
    [err] = capsys.readouterr().err.splitlines()
    assert err.startswith(line)
