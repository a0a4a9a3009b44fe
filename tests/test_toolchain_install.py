"""Installing, locating and reporting tools, in a temporary cache with local files and a fake `go`."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import paths
from infra.cli import main
from infra.toolchain import gobuild, install, store
from infra.toolchain.locate import (
    ToolMissingError,
    find_binary,
    override_variable,
    tool_path,
    tool_status,
    tools_env,
)
from infra.toolchain.model import Platform, Tool, Toolchain, ToolchainError, load_toolchain, parse_toolchain
from infra.versions import load_versions

LINUX = Platform("linux", "amd64")
REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("isolated_cache")  # tests/conftest.py


def local_release_tool(tmp_path: Path, content: bytes = b"#!/bin/sh\necho demo\n",
                       digest: str | None = None) -> tuple[Toolchain, Tool]:
    """A tool whose release asset is a local file (urllib reads file:// URLs), with its checksum."""
    asset = tmp_path / "assets" / "demo-linux-amd64"
    asset.parent.mkdir(parents=True, exist_ok=True)
    asset.write_bytes(content)
    table: dict[str, Any] = {
        "version": "v1.2.3", "binaries": ["demo"],
        "release": {"url": asset.parent.as_uri() + "/demo-{os}-{arch}",
                    "sha256": {"linux-amd64": digest or hashlib.sha256(content).hexdigest()}},
    }
    toolchain = parse_toolchain({"demo": table})
    return toolchain, toolchain.get("demo")


def fake_installed(tool: Tool, route: str = "module") -> Path:
    """Put `tool` in the cache as an install would, without building anything."""
    bins = store.bin_dir(tool)
    bins.mkdir(parents=True)
    for binary in tool.binaries:
        (bins / binary).write_text("#!/bin/sh\n")
        (bins / binary).chmod(0o755)
    store.write_marker(store.home(tool), store.Marker(tool.name, tool.version, route, 1.0, "2026-11-23T10:00:00",
                                                      tool.binaries))
    return bins


# --- install: idempotence and atomicity --------------------------------------------------------

def test_release_install_then_second_run_is_a_no_op(tmp_path: Path) -> None:
    toolchain, tool = local_release_tool(tmp_path)
    first = install.install_tool(tool, route="release", plat=LINUX, say=lambda line: None)
    assert first.status == "installed" and first.route == "release"
    binary = tool_path("demo", toolchain)
    assert binary == paths.tool_home("demo", "v1.2.3") / "bin" / "demo"
    assert os.access(binary, os.X_OK)
    marker = store.read_marker(paths.tool_home("demo", "v1.2.3"))
    assert marker is not None and (marker.version, marker.route) == ("v1.2.3", "release")

    (tmp_path / "assets" / "demo-linux-amd64").unlink()  # a second download would now fail
    lines: list[str] = []
    second = install.install_tool(tool, route="release", plat=LINUX, say=lines.append)
    assert second.status == "present"
    assert lines == [f"demo v1.2.3: present (release route, took {marker.seconds:.0f}s on {marker.installed_at[:10]})"]


def test_checksum_mismatch_installs_nothing(tmp_path: Path) -> None:
    toolchain, tool = local_release_tool(tmp_path, digest="0" * 64)
    with pytest.raises(ToolchainError, match="SHA-256 mismatch"):
        install.install_tool(tool, route="release", plat=LINUX, say=lambda line: None)
    assert not paths.tool_home("demo", "v1.2.3").exists()
    assert [p.name for p in (paths.tools_dir() / "demo").iterdir()] == [".lock"]  # no staging left behind
    with pytest.raises(ToolMissingError):
        tool_path("demo", toolchain)


def test_install_without_marker_is_not_installed(tmp_path: Path) -> None:
    toolchain, tool = local_release_tool(tmp_path)
    (store.bin_dir(tool)).mkdir(parents=True)
    (store.bin_dir(tool) / "demo").write_text("left by an interrupted run")
    with pytest.raises(ToolMissingError):
        tool_path("demo", toolchain)
    assert install.install_tool(tool, route="release", plat=LINUX, say=lambda line: None).status == "installed"
    assert (store.bin_dir(tool) / "demo").read_bytes().startswith(b"#!/bin/sh")


def test_a_build_from_another_go_than_the_pinned_one_is_not_installed() -> None:
    """Dex built before its Go pin (or with another Go) is rebuilt; a release download is not."""
    toolchain = parse_toolchain({"demo": {"version": "v1.0.0", "binaries": ["demo"], "go_toolchain": "1.25.0",
                                          "source": {"dir": "demo", "packages": {"demo": "."}}}})
    tool = toolchain.get("demo")
    fake_installed(tool, route="source")  # a marker without go_toolchain: built with whatever Go was found
    assert store.installed_marker(tool) is None
    marker = store.read_marker(store.home(tool))
    assert marker is not None
    store.write_marker(store.home(tool), dataclasses.replace(marker, go_toolchain="1.25.0"))
    assert store.installed_marker(tool) is not None
    store.write_marker(store.home(tool), dataclasses.replace(marker, route="release"))
    assert store.installed_marker(tool) is not None


def test_install_killed_between_the_two_renames_is_undone(tmp_path: Path) -> None:
    _, tool = local_release_tool(tmp_path)
    fake_installed(tool)
    store.home(tool).rename(store.home(tool).with_name(f".old-{tool.version}-4242"))  # where publish stopped
    assert store.installed_marker(tool) is None
    outcome = install.install_tool(tool, route="release", plat=LINUX, say=lambda line: None)
    assert (outcome.status, outcome.route) == ("present", "module")  # the previous install, put back
    assert [p.name for p in store.home(tool).parent.iterdir() if p.name.startswith(".old-")] == []


def test_force_reinstalls(tmp_path: Path) -> None:
    _, tool = local_release_tool(tmp_path)
    fake_installed(tool, route="module")
    outcome = install.install_tool(tool, route="release", force=True, plat=LINUX, say=lambda line: None)
    assert outcome.status == "installed"
    marker = store.installed_marker(tool)
    assert marker is not None and marker.route == "release"


# --- the source route with a fake go ------------------------------------------------------------

FAKE_GO = """#!{python}
import json, os, sys
with open(os.environ["FAKE_GO_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "goflags": os.environ.get("GOFLAGS"),
                          "version": os.environ.get("VERSION"), "cgo": os.environ.get("CGO_ENABLED")}}) + "\\n")
if sys.argv[1:] == ["env", "GOVERSION"]:
    print("go1.26.0")
if sys.argv[1:3] == ["list", "-m"]:  # where the module cache holds a required module
    print(os.environ["FAKE_GO_MODDIR"])
if sys.argv[1] == "build" and os.environ.get("FAKE_GO_TREE"):  # what the wrapper holds at build time
    with open(os.environ["FAKE_GO_TREE"], "w") as tree:
        tree.write("\\n".join(sorted(os.path.relpath(os.path.join(d, f)) for d, _, fs in os.walk(".") for f in fs)))
if sys.argv[1] == "build":
    out = sys.argv[sys.argv.index("-o") + 1]
    with open(out, "w") as f:
        f.write("built")
    os.chmod(out, 0o755)
if sys.argv[1] == "run" and os.environ.get("FAKE_GO_FAIL"):
    print("generator exploded")
    sys.exit(3)
"""


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `go` on PATH that records its calls and writes `-o` outputs: the route's logic, no compiler."""
    bindir = tmp_path / "fake-go"
    bindir.mkdir()
    (bindir / "go").write_text(FAKE_GO.format(python=sys.executable))
    (bindir / "go").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GO_LOG", str(tmp_path / "go-calls.jsonl"))
    return tmp_path / "go-calls.jsonl"


def source_tool(tmp_path: Path) -> tuple[Tool, Path]:
    sources = tmp_path / "sources"
    tree = sources / "demo-v1.2.3" / "provider"
    (tree / "cmd" / "gen").mkdir(parents=True)
    (tree / "go.mod").write_text("module demo\n")
    (tree / "demo-exec").write_text("#!/bin/sh\n")
    toolchain = parse_toolchain({"demo": {
        "version": "v1.2.3", "binaries": ["demo", "demo-exec"], "link_vars": ["main.version={version}"],
        "source": {"dir": "demo-{version}", "module_dir": "provider", "packages": {"demo": "./cmd/demo"},
                   "replace": ["a/b=a/b@{version}"], "scripts": ["demo-exec"],
                   "generate": {"dir": "cmd/gen", "args": ["run", "gen.go"], "env": {"VERSION": "{number}"}}},
    }})
    return toolchain.get("demo"), sources


def test_source_route_builds_in_a_copy(tmp_path: Path, fake_go: Path) -> None:
    import json

    tool, sources = source_tool(tmp_path)
    before = sorted(p.relative_to(sources) for p in sources.rglob("*"))
    outcome = install.install_tool(tool, route="source", sources=sources, plat=LINUX, say=lambda line: None)
    assert outcome.status == "installed"
    assert sorted(p.relative_to(sources) for p in sources.rglob("*")) == before  # sources untouched
    calls = [json.loads(line) for line in fake_go.read_text().splitlines()]
    assert [c["argv"][:2] for c in calls] == [["mod", "edit"], ["run", "gen.go"], ["build", "-v"]]
    assert calls[0]["argv"][2:] == ["-replace=a/b=a/b@v1.2.3"]
    assert calls[1]["version"] == "1.2.3" and calls[1]["cwd"].endswith("provider/cmd/gen")
    assert calls[2]["argv"][3] == "-s -w -X main.version=v1.2.3"
    assert all(c["goflags"].startswith("-mod=mod") for c in calls)
    assert all(str(paths.cache_root()) in c["cwd"] for c in calls)
    assert sorted(p.name for p in store.bin_dir(tool).iterdir()) == ["demo", "demo-exec"]


@pytest.mark.parametrize(("switch", "cgo"), [({"cgo": True}, "1"), ({"static": True}, "0"), ({}, None)])
def test_source_route_sets_cgo_and_tags_as_declared(tmp_path: Path, fake_go: Path, monkeypatch: pytest.MonkeyPatch,
                                                    switch: dict[str, bool], cgo: str | None) -> None:
    """cgo (KFP's API server needs it), static (CGO off for minimal images) or the go command's default;
    tags reach `go build`."""
    import json

    monkeypatch.delenv("CGO_ENABLED", raising=False)
    sources = tmp_path / "sources"
    (sources / "demo-1.2.3").mkdir(parents=True)
    (sources / "demo-1.2.3" / "go.mod").write_text("module demo\n")
    tool = parse_toolchain({"demo": {"version": "v1.2.3", "binaries": ["demo"], "source": {
        "dir": "demo-{number}", "packages": {"demo": "./cmd/demo"}, "tags": ["netgo"], **switch}}}).get("demo")
    install.install_tool(tool, route="source", sources=sources, plat=LINUX, say=lambda line: None)
    [call] = [json.loads(line) for line in fake_go.read_text().splitlines()]
    assert call["argv"][:4] == ["build", "-v", "-tags", "netgo"]
    assert call["cgo"] == cgo


def _copied_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **route: Any) -> tuple[Tool, Path]:
    """A module in a fake (read-only) module cache, and a tool whose wrapper builds against a copy."""
    cached = tmp_path / "modcache" / "demo@v1.2.3"
    (cached / "sig").mkdir(parents=True)
    (cached / "sig" / "signal_darwin.go").write_text("package sig\n")
    (cached / "sig").chmod(0o555)
    monkeypatch.setenv("FAKE_GO_MODDIR", str(cached))
    monkeypatch.setenv("FAKE_GO_TREE", str(tmp_path / "tree.txt"))
    tool = parse_toolchain({"demo": {"version": "v1.2.3", "binaries": ["demo"], "module": {
        "require": ["example.com/demo {version}"], "packages": {"demo": "example.com/demo/cmd/demo"},
        **route}}}).get("demo")
    return tool, cached


def test_a_modules_symlinks_are_restored_in_a_copy_it_is_built_from(tmp_path: Path, fake_go: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Module zips leave symlinks out (Argo's signal_linux.go): the wrapper builds against a copy of
    the module with each one back, and the module cache stays as it was."""
    import json

    tool, cached = _copied_demo(tmp_path, monkeypatch, symlinks={"sig/signal_linux.go": "sig/signal_darwin.go"})
    install.install_tool(tool, route="module", plat=LINUX, say=lambda line: None)
    calls = [json.loads(line)["argv"] for line in fake_go.read_text().splitlines()]
    assert ["mod", "edit", "-replace=example.com/demo=./module-with-links"] in calls
    tree = (tmp_path / "tree.txt").read_text().splitlines()
    assert {"module-with-links/sig/signal_linux.go", "module-with-links/sig/signal_darwin.go"} <= set(tree)
    assert sorted(p.name for p in (cached / "sig").iterdir()) == ["signal_darwin.go"]


PATCH = """The project's change to demo, and why.

--- a/sig/signal_darwin.go
+++ b/sig/signal_darwin.go
@@ -1 +1,2 @@
 package sig
+// patched
--- a/sig/patched.go
+++ b/sig/patched.go
@@ -0,0 +1 @@
+package sig
"""


def _patched_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patch: str) -> tuple[Tool, Path]:
    (tmp_path / "demo.patch").write_text(patch)
    return _copied_demo(tmp_path, monkeypatch, patches=[str(tmp_path / "demo.patch")])


def test_a_modules_patches_are_applied_to_a_copy_and_a_changed_patch_rebuilds(
        tmp_path: Path, fake_go: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kube-network-policies' kernel patch: the wrapper builds against a patched copy of the module (the
    module cache untouched), and an install made with other patches (or none) is not taken as present."""
    import json

    tool, cached = _patched_demo(tmp_path, monkeypatch, PATCH)
    install.install_tool(tool, route="module", plat=LINUX, say=lambda line: None)
    calls = [json.loads(line)["argv"] for line in fake_go.read_text().splitlines()]
    assert ["mod", "edit", "-replace=example.com/demo=./module-with-links"] in calls
    assert "module-with-links/sig/patched.go" in (tmp_path / "tree.txt").read_text().splitlines()
    assert sorted(p.name for p in (cached / "sig").iterdir()) == ["signal_darwin.go"]
    assert store.installed_marker(tool) is not None
    (tmp_path / "demo.patch").write_text(PATCH.replace("// patched", "// patched again"))
    assert store.installed_marker(tool) is None


def test_a_patch_that_does_not_apply_names_itself(tmp_path: Path, fake_go: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tool, _ = _patched_demo(tmp_path, monkeypatch, PATCH.replace(" package sig\n+// patched", " package other\n+//"))
    with pytest.raises(ToolchainError, match=r"demo\.patch does not apply"):
        install.install_tool(tool, route="module", plat=LINUX, say=lambda line: None)
    assert not store.home(tool).exists()


def test_build_failure_names_command_exit_code_log_tail_and_log(tmp_path: Path, fake_go: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    tool, sources = source_tool(tmp_path)
    with pytest.raises(gobuild.BuildError) as caught:
        install.install_tool(tool, route="source", sources=sources, plat=LINUX, say=lambda line: None)
    message = str(caught.value)
    assert re.search(r"go run gen.go \(exit code 3, in .*provider/cmd/gen\)", message)
    assert "generator exploded" in message
    log = Path(message.rsplit("full log: ", 1)[1].strip())
    assert log.is_file() and "generator exploded" in log.read_text()
    assert not store.home(tool).exists()


def test_source_route_without_sources_says_how_to_provide_them(tmp_path: Path) -> None:
    tool, _ = source_tool(tmp_path)
    with pytest.raises(ToolchainError) as caught:
        install.install_tool(tool, route="source", sources=None, plat=LINUX, say=lambda line: None)
    message = str(caught.value)
    assert "pass --sources DIR or set KFSTACK_TOOLCHAIN_SOURCES=DIR, where DIR holds demo-v1.2.3/" in message
    assert "shared" not in message and "/work" not in message  # no folder of any particular machine


def test_sources_flag_wins_over_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KFSTACK_TOOLCHAIN_SOURCES", str(tmp_path / "from-env"))
    assert install.sources_dir(None) == (tmp_path / "from-env").resolve()
    assert install.sources_dir(str(tmp_path / "flag")) == (tmp_path / "flag").resolve()


# --- locating tools -----------------------------------------------------------------------------

def test_env_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "my-apiserver"
    mine.write_text("#!/bin/sh\n")
    mine.chmod(0o755)
    assert override_variable("kube-apiserver") == "KFSTACK_BIN_KUBE_APISERVER"
    monkeypatch.setenv("KFSTACK_BIN_KUBE_APISERVER", str(mine))
    assert tool_path("kube-apiserver") == mine
    mine.chmod(0o644)
    with pytest.raises(ToolchainError, match=r"KFSTACK_BIN_KUBE_APISERVER=.* is not an executable"):
        tool_path("kube-apiserver")


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_binary_takes_the_override_then_the_pin_then_path(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path / "empty-cache"))  # nothing pinned is installed
    on_path = _executable(tmp_path / "path" / "kubectl")
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.delenv("KFSTACK_BIN_KUBECTL", raising=False)
    # A pinned tool that is not installed: a copy on PATH does the job where any copy will do...
    assert find_binary("kubectl") == on_path
    # ...but never where the pinned version must run.
    with pytest.raises(ToolMissingError, match="kfstack tools install"):
        tool_path("kubectl")
    mine = _executable(tmp_path / "mine" / "kubectl")
    monkeypatch.setenv("KFSTACK_BIN_KUBECTL", str(mine))
    assert find_binary("kubectl") == mine


def test_find_binary_names_everything_it_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as info:
        find_binary("kubectl")
    text = str(info.value)
    assert "kfstack tools install" in text and "not on PATH" in text and "KFSTACK_BIN_KUBECTL" in text
    with pytest.raises(ToolMissingError, match="no pinned tool provides no-such-tool"):
        find_binary("no-such-tool")


def test_missing_tool_says_how_to_install_it() -> None:
    with pytest.raises(ToolMissingError, match=r"run `kfstack tools install kubernetes`"):
        tool_path("kube-scheduler")


def test_other_cached_version_is_reported_but_not_used() -> None:
    tool = load_toolchain().get("kind")
    old = Tool(name="kind", version="v0.29.0", binaries=("kind",), module=tool.module)
    fake_installed(old)
    with pytest.raises(ToolMissingError, match=r"found v0\.29\.0, which is not the pinned version"):
        tool_path("kind")
    (status,) = [s for s in tool_status() if s.name == "kind"]
    assert (status.installed, status.ok, status.path) == ("v0.29.0", False, None)


def test_tools_env_puts_installed_bins_first() -> None:
    bins = fake_installed(load_toolchain().get("kind"))
    env = tools_env()
    assert env["PATH"].split(os.pathsep)[0] == str(bins)
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["PULUMI_SKIP_UPDATE_CHECK"] == "true"


def test_tool_status_reports_route_and_path() -> None:
    bins = fake_installed(load_toolchain().get("etcd"), route="module")
    by_name = {s.name: s for s in tool_status()}
    assert (by_name["etcd"].installed, by_name["etcd"].route, by_name["etcd"].path) == ("v3.6.5", "module", bins)
    assert by_name["dex"].installed is None and not by_name["dex"].ok
    assert not by_name["minikube"].default


def test_plugin_registration_is_checked_in_pulumi_home(tmp_path: Path) -> None:
    tool = load_toolchain().get("pulumi-resource-kubernetes")
    plugin_dir = install.pulumi_plugin_dir(tool)
    assert plugin_dir == tmp_path / "pulumi-home" / "plugins" / "resource-kubernetes-v4.30.0"
    assert not install.plugin_registered(tool)
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "pulumi-resource-kubernetes").write_text("")
    (plugin_dir / "pulumi-resource-kubernetes").chmod(0o755)
    assert install.plugin_registered(tool)
    plugin_dir.with_name(plugin_dir.name + ".partial").write_text("")
    assert not install.plugin_registered(tool)


# --- the command line ---------------------------------------------------------------------------

def test_tools_env_command_prints_exports(capsys: pytest.CaptureFixture[str]) -> None:
    bins = fake_installed(load_toolchain().get("kustomize"))
    assert main(["tools", "env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    exports = dict(shlex.split(line)[1].split("=", 1) for line in lines)
    assert all(line.startswith("export ") for line in lines)
    assert exports["PATH"].split(os.pathsep)[0] == str(bins)
    assert exports["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"


def test_tools_path_and_list_commands(capsys: pytest.CaptureFixture[str]) -> None:
    bins = fake_installed(load_toolchain().get("kwok"))
    assert main(["tools", "path", "kwokctl"]) == 0
    assert capsys.readouterr().out.strip() == str(bins / "kwokctl")
    assert main(["tools", "path", "kubectl"]) == 1
    assert "kfstack tools install kubernetes" in capsys.readouterr().err
    assert main(["tools", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert re.match(r"kwok\s+v0\.7\.0\s+yes\s+module\s+" + re.escape(str(bins)), rows["kwok"])
    assert "no, optional" in rows["minikube"]


def test_install_command_skips_present_tools_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    fake_installed(load_toolchain().get("kustomize"))
    assert main(["tools", "install", "kustomize"]) == 0
    out = capsys.readouterr().out
    assert "kustomize v5.7.1: present (module route" in out
    assert "0 installed, 1 already present, 0 failed" in out


def test_install_command_fails_cleanly_for_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "install", "helm"]) == 2
    assert "unknown tool or binary 'helm'" in capsys.readouterr().err


# --- pins agree with the Python lock and the Kubeflow release -----------------------------------

def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def test_python_pins_match_the_lock_and_the_cli() -> None:
    versions = load_versions()
    lock = _constraints()
    for name, version in versions.python.items():
        assert lock[re.sub(r"[-_.]+", "-", name).lower()] == version, name
    tools = load_toolchain()
    assert versions.python["pulumi"] == tools.get("pulumi").number
    assert versions.python["pulumi"] == tools.get("pulumi-language-python").number
    assert versions.python["pulumi-kubernetes"] == tools.get("pulumi-resource-kubernetes").number


def test_tool_versions_match_what_the_kubeflow_release_pins() -> None:
    versions = load_versions()
    pinned = versions.release(versions.default_release)
    tools = load_toolchain()
    assert tools.get("kustomize").version == pinned.kustomize
    assert tools.get("dex").version == pinned.dex
    assert tools.get("oauth2-proxy").version == pinned.oauth2_proxy
    assert tools.get("kubernetes").version == pinned.kubernetes
