"""Each install route against local stand-ins of the network a user reaches (no network needed).

The release route runs the real URL templates of infra/versions.toml against a local server laid
out like the upstream hosts (KFSTACK_RELEASE_MIRROR), with stand-in binaries packed as each
upstream packs them and checksums files in each upstream's format. The module route builds a small
module from a local Go module proxy (GOPROXY=file://...) with the real go command; the source
route builds a small tree. Each test has its own cache (KFSTACK_CACHE) and Pulumi home.
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.cli import main
from infra.toolchain import gobuild, install, lock, release, store
from infra.toolchain.locate import ToolMissingError, tool_path
from infra.toolchain.model import Platform, Tool, ToolchainError, load_toolchain, parse_tool
from infra.versions import load_versions
from smoke_tests.process import spawn, stop_process
from smoke_tests.run import run
from smoke_tests.wait import wait_until
from tests.toolchain_standins import GoProxy, ReleaseSite, publish_releases, serve, stand_in

REPO = Path(__file__).resolve().parent.parent
HOST = Platform.host()
QUIET: Any = lambda line: None  # noqa: E731 - a `say` that prints nothing
DEX_GO = "1.25.0"


pytestmark = pytest.mark.usefixtures("isolated_cache")  # tests/conftest.py


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReleaseSite]:
    """The stand-in release pages, with every download of the installer pointed at them."""
    with serve(ReleaseSite(tmp_path / "site")) as served:
        monkeypatch.setenv(release.MIRROR_ENV, served.base_url)
        yield served


def real_tool(name: str, *, drop_recorded: bool = True, **release_overrides: Any) -> Tool:
    """The tool as versions.toml declares it; recorded digests dropped (they are of the real binaries)."""
    table = copy.deepcopy(load_versions().tools[name])
    if drop_recorded and "release" in table:
        table["release"]["sha256"] = {}
    if release_overrides:
        table["release"].update(release_overrides)
    return parse_tool(name, table)


def installed_bytes(tool: Tool) -> dict[str, bytes]:
    return {b: (store.bin_dir(tool) / b).read_bytes() for b in tool.binaries}


def pinned(url: str) -> lock.Pin:
    pin = lock.get("assets", url)
    assert pin is not None, f"no pin for {url}"
    return pin


# --- the release route, per tool ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pulumi", "pulumi-language-python", "pulumi-resource-kubernetes", "kind",
                                  "kubernetes", "etcd", "kustomize", "oauth2-proxy", "minikube",
                                  "actionlint"])
def test_release_route_installs_each_tool_as_upstream_publishes_it(name: str, site: ReleaseSite) -> None:
    tool = real_tool(name)
    published = site.publish(tool, HOST)
    if tool.requires:  # the provider registers itself with pulumi; a stand-in pulumi takes the call
        pulumi = real_tool("pulumi")
        site.publish(pulumi, HOST)
        install.install_tool(pulumi, route="release", say=QUIET)
    outcome = install.install_tool(tool, route="auto", say=QUIET)
    assert (outcome.status, outcome.route) == ("installed", "release")
    assert installed_bytes(tool) == published
    marker = store.installed_marker(tool)
    assert marker is not None and marker.route == "release"
    for asset in release.assets(tool, HOST):
        pin = pinned(asset.url)
        assert pin.verified_by == f"checksums file {asset.checksums}"
        assert pin.value == release.sha256_of(site.path_of(asset.url))
    if name == "pulumi-language-python":  # both scripts come out of the CLI tarball beside the host
        assert sorted(p.name for p in store.bin_dir(tool).iterdir()) == [
            "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python"]


def test_stand_in_pages_keep_every_real_binary_of_a_shared_tarball(site: ReleaseSite) -> None:
    """The fresh-container test serves the binaries built here. Pulumi's CLI and language host come
    in one tarball, published once per tool: the second publish must not put a stand-in CLI over
    the real one (it did, and the Automation API then could not parse `pulumi version`)."""
    cli, host = real_tool("pulumi"), real_tool("pulumi-language-python")
    real = {"pulumi": b"#!/bin/sh\necho v3.259.0\n"} | {b: f"real {b}".encode() for b in host.binaries}
    publish_releases(site, [cli, host], HOST, real)
    for tool in (cli, host):
        assert install.install_tool(tool, route="release", say=QUIET).route == "release"
        assert installed_bytes(tool) == {b: real[b] for b in tool.binaries}
    assert run([str(tool_path("pulumi")), "version"], timeout=30).stdout.strip() == "v3.259.0"


def test_a_release_without_checksums_is_trusted_once_then_pinned(site: ReleaseSite) -> None:
    tool = real_tool("kwok")
    assert tool.release is not None and not tool.release.publishes_checksums
    site.publish(tool, HOST, tag="first")
    lines: list[str] = []
    assert install.install_tool(tool, say=lines.append).route == "release"
    assert sum("WARNING: upstream publishes no checksum" in line for line in lines) == 2  # kwok and kwokctl
    assets = release.assets(tool, HOST)
    assert all(pinned(a.url).verified_by == "first use" for a in assets)

    site.publish(tool, HOST, tag="re-uploaded")  # upstream (or a mirror) now serves something else
    with pytest.raises(release.ChecksumMismatchError) as caught:
        install.install_tool(tool, force=True, say=QUIET)
    message = str(caught.value)
    assert f"the digest pinned in {lock.lock_path()}" in message and "(from first use)" in message
    assert "delete its entry" in message
    assert installed_bytes(tool)["kwok"] == stand_in("kwok", "first")  # the verified install stays


def test_recorded_digest_wins_over_the_checksums_file(site: ReleaseSite) -> None:
    """versions.toml records kind's official digest; a stand-in with a matching checksums file is refused."""
    tool = real_tool("kind", drop_recorded=False)
    assert tool.release is not None and tool.release.sha256
    site.publish(tool, HOST)
    with pytest.raises(release.ChecksumMismatchError, match=r"\(versions\.toml\)"):
        install.install_tool(tool, route="release", say=QUIET)
    assert not store.home(tool).exists()
    assert lock.get("assets", release.assets(tool, HOST)[0].url) is None


def test_corrupted_artifact_is_refused_and_nothing_is_installed(site: ReleaseSite) -> None:
    tool = real_tool("etcd")
    site.publish(tool, HOST)
    (asset,) = release.assets(tool, HOST)
    path = site.path_of(asset.url)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed after the checksums were published
    path.write_bytes(bytes(data))
    with pytest.raises(release.ChecksumMismatchError) as caught:
        install.install_tool(tool, route="release", say=QUIET)
    assert f"checksums file {asset.checksums}" in str(caught.value) and "Nothing was installed" in str(caught.value)
    assert not store.home(tool).exists()
    assert [p.name for p in (store.home(tool).parent).iterdir()] == [".lock"]
    assert lock.get("assets", asset.url) is None
    with pytest.raises(ToolMissingError):
        tool_path("etcd")


def test_missing_checksums_file_is_refused_unless_a_digest_is_recorded(site: ReleaseSite) -> None:
    tool = real_tool("oauth2-proxy")
    site.publish(tool, HOST)
    (asset,) = release.assets(tool, HOST)
    site.path_of(asset.checksums).unlink()
    with pytest.raises(release.ChecksumsUnavailableError) as caught:
        install.install_tool(tool, route="release", say=QUIET)
    message = str(caught.value)
    assert "could not be fetched (HTTP 404" in message
    assert f'[tools.oauth2-proxy.release.sha256] under "{asset.key}"' in message
    assert "--route source" in message
    assert not any(r.endswith(asset.filename) for r in site.requests)  # refused before downloading it
    assert not store.home(tool).exists()

    digest = release.sha256_of(site.path_of(asset.url))
    recorded = real_tool("oauth2-proxy", sha256={asset.key: digest})
    assert install.install_tool(recorded, route="release", say=QUIET).status == "installed"
    assert pinned(asset.url).verified_by == "versions.toml"


def test_checksums_file_without_the_asset_is_refused(site: ReleaseSite) -> None:
    tool = real_tool("kustomize")
    site.publish(tool, HOST)
    (asset,) = release.assets(tool, HOST)
    site.put(asset.checksums, f"{'1' * 64}  kustomize_v5.7.1_plan9_amd64.tar.gz\n".encode())
    with pytest.raises(release.ChecksumsUnavailableError, match=f"lists no SHA-256 for {asset.filename}"):
        install.install_tool(tool, route="release", say=QUIET)


def test_truncated_download_is_refused(site: ReleaseSite) -> None:
    tool = real_tool("minikube")
    site.publish(tool, HOST)
    (asset,) = release.assets(tool, HOST)
    site.truncate.add(asset.url)
    size = site.path_of(asset.url).stat().st_size
    with pytest.raises(release.TruncatedDownloadError, match=rf"truncated: got {size // 2} of {size} bytes"):
        install.install_tool(tool, route="release", say=QUIET)
    assert not store.home(tool).exists()


def test_second_run_installs_nothing(site: ReleaseSite, capsys: pytest.CaptureFixture[str]) -> None:
    site.publish(load_toolchain().get("kwok"), HOST)
    assert main(["tools", "install", "kwok"]) == 0
    first = capsys.readouterr().out
    assert "kwok v0.7.0: installing by the release route" in first
    assert "routes: kwok=release " in first.splitlines()[-1]
    downloads = len(site.requests)
    assert downloads == 4  # a probe and a download each for kwok and kwokctl

    assert main(["tools", "install", "kwok"]) == 0
    second = capsys.readouterr().out
    assert "kwok v0.7.0: present (release route" in second
    assert second.splitlines()[-1].endswith("routes: kwok=release (present)")
    assert len(site.requests) == downloads  # no request at all, not even a probe


def test_interrupted_install_leaves_the_previous_version_working(site: ReleaseSite) -> None:
    """A reinstall killed in the middle of a download: the installed kwok keeps working, untouched."""
    tool = load_toolchain().get("kwok")
    site.publish(tool, HOST, tag="old")
    install.install_tool(tool, say=QUIET)
    kwokctl = tool_path("kwokctl")
    before = run([str(kwokctl)], timeout=10).stdout

    site.stall.add(release.assets(tool, HOST)[1].url)  # kwokctl's download stops half-way
    proc = spawn([sys.executable, "-c", "from infra.cli import main; raise SystemExit(main())",
                  "tools", "install", "kwok", "--force"], cwd=REPO)
    try:
        wait_until(lambda: (site.stalled.is_set(), site.requests[-1:]), timeout=60, interval=0.1,
                   what="the reinstall to reach kwokctl's download")
        proc.kill()  # as a closed laptop or a cancelled CI job would
        proc.wait(timeout=30)
    finally:
        stop_process(proc)
    assert tool_path("kwokctl") == kwokctl
    assert run([str(kwokctl)], timeout=10).stdout == before == "kwokctl stand-in old\n"
    leftovers = [p.name for p in store.home(tool).parent.iterdir() if p.name.startswith(".staging-")]
    assert len(leftovers) == 1  # the killed install's staging directory, never taken for an install

    site.stall.clear()
    assert install.install_tool(tool, force=True, say=QUIET).status == "installed"
    assert not [p for p in store.home(tool).parent.iterdir() if p.name.startswith(".staging-")]


def test_probe_follows_a_redirect_with_head(site: ReleaseSite) -> None:
    """GitHub answers release downloads with a redirect; the probe must not download the file."""
    tool = real_tool("kwok")
    site.publish(tool, HOST)
    asset = release.assets(tool, HOST)[0]
    site.redirect[asset.url] = asset.url + ".real"
    site.put(asset.url + ".real", site.path_of(asset.url).read_bytes())
    assert release.probe(asset.url)
    assert site.requests == [f"HEAD /{asset.url.removeprefix('https://')}",
                             f"HEAD /{asset.url.removeprefix('https://')}.real"]
    assert install.install_tool(tool, say=QUIET).route == "release"  # the download follows it too
    assert f"/{asset.url.removeprefix('https://')}.real" in site.requests


def test_probe_failure_falls_back_to_the_next_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens on the mirror: auto goes on to the module route (the usual case on these machines)."""
    monkeypatch.setenv(release.MIRROR_ENV, "http://127.0.0.1:9")
    assert install.choose_route(load_toolchain().get("kind"), "auto", HOST) == "module"
    assert install.choose_route(load_toolchain().get("oauth2-proxy"), "auto", HOST) == "source"


# --- the module route, with the real go command and a local module proxy ------------------------

@pytest.fixture
def go_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoProxy]:
    """The go command pointed at a local proxy and a throw-away module cache (the build cache is reused)."""
    if shutil.which("go") is None:
        pytest.skip("NOT RUN: the module and source routes need Go on PATH (not installed here)")
    proxy = GoProxy(tmp_path / "goproxy")
    proxy.root.mkdir()
    found = gobuild.installed_go()
    if found is not None and gobuild.version_tuple(found) >= gobuild.version_tuple(DEX_GO):
        monkeypatch.setenv("GOPROXY", proxy.url)
        monkeypatch.setenv("GOTOOLCHAIN", "local")
        monkeypatch.setenv("GOSUMDB", "off")  # the stand-in modules are in no checksum database
    else:
        # An older Go (Debian's 1.23) fetches the toolchain Dex asks for from the proxy it was given,
        # and verifies it in the checksum database: only the stand-ins are left out of that.
        monkeypatch.setenv("GOPROXY", f"{proxy.url},{os.environ.get('GOPROXY') or 'https://proxy.golang.org'}")
        monkeypatch.setenv("GONOSUMDB", "github.com/dexidp/dex,example.test")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomodcache"))
    yield proxy
    if (tmp_path / "gomodcache").exists():  # the module cache is read-only by design
        subprocess.run(["chmod", "-R", "u+w", str(tmp_path / "gomodcache")], check=False, timeout=60)


def dex_repository(tmp_path: Path) -> tuple[Path, str]:
    """A git repository with an annotated tag v2.44.0, as dex tags its releases; its commit."""
    repo = tmp_path / "dex.git"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    run(["git", "init", "-q", str(repo)], timeout=30)
    (repo / "README.md").write_text("stand-in\n")
    run([*git, "add", "README.md"], timeout=30)
    run([*git, "commit", "-q", "-m", "release"], timeout=30)
    run([*git, "tag", "-a", "v2.44.0", "-m", "Release v2.44.0"], timeout=30)
    commit = run([*git, "rev-parse", "HEAD"], timeout=30).stdout.strip()
    return repo, commit


def test_module_route_builds_dex_from_a_module_proxy(tmp_path: Path, go_env: GoProxy,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Dex: tag -> commit (git ls-remote), then the module and api/v2 at that commit from the proxy."""
    repo, commit = dex_repository(tmp_path)
    pseudo = f"v0.0.0-20251020120000-{commit[:12]}"
    go_env.add("github.com/dexidp/dex", pseudo, commit=commit, files={
        # Like dex's own go.mod: api/v2 required at a tag and replaced by the local copy.
        "go.mod": "module github.com/dexidp/dex\n\ngo 1.25.0\n\nrequire github.com/dexidp/dex/api/v2 v2.3.0\n\n"
                  "replace github.com/dexidp/dex/api/v2 => ./api/v2\n",
        "cmd/dex/main.go": 'package main\n\nimport (\n\t"fmt"\n\n\tapi "github.com/dexidp/dex/api/v2"\n)\n\n'
                           'var version = "dev"\n\nfunc main() { fmt.Println("dex", version, api.Revision) }\n',
    })
    api_gomod = "module github.com/dexidp/dex/api/v2\n\ngo 1.24.0\n"
    go_env.add("github.com/dexidp/dex/api/v2", f"v2.3.1-0.20251020120000-{commit[:12]}", commit=commit,
               files={"go.mod": api_gomod, "api.go": 'package api\n\nconst Revision = "api-at-the-tag"\n'})
    go_env.add_mod_only("github.com/dexidp/dex/api/v2", "v2.3.0", api_gomod)

    # The stand-in proxy serves no Go release, so this build runs with the Go found (the pinned Go is
    # test_source_route_builds_with_the_pinned_go's subject).
    tool = dataclasses.replace(load_toolchain().get("dex"), go_toolchain="")
    assert tool.module is not None
    # The real tag_repo, sent to the stand-in by git's own configuration (as a user's mirror would be):
    # the route must ask git whether the tag is reachable, not probe the URL over HTTP.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{repo}.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", tool.module.tag_repo)
    lines: list[str] = []
    outcome = install.install_tool(tool, sources=None, say=lines.append)
    assert (outcome.status, outcome.route) == ("installed", "module")
    out = run([str(store.bin_dir(tool) / "dex")], timeout=10).stdout
    assert out == "dex v2.44.0 api-at-the-tag\n"  # the version from link_vars, api/v2 at the tag's commit
    pin = lock.get("commits", f"{tool.module.tag_repo} v2.44.0")
    assert pin is not None and pin.value == commit
    assert any(f"is commit {commit}" in line for line in lines)

    # A second install of the same version needs neither git nor the tag: the lock has the commit.
    shutil.rmtree(repo)
    assert install.choose_route(tool, "auto", HOST, probe=lambda url: False) == "module"
    assert install.install_tool(tool, force=True, say=QUIET).route == "module"


def test_module_route_refuses_a_go_too_old_before_running_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    tool = dataclasses.replace(load_toolchain().get("dex"), go_toolchain="")  # the module's minimum alone
    monkeypatch.setenv("GOTOOLCHAIN", "local")
    assert gobuild.go_requirement(tool, "1.24.3") == (
        False, "dex is built from its Go module: needs Go 1.25.0 or newer, found 1.24.3")
    assert gobuild.go_requirement(tool, None)[0] is False
    assert gobuild.go_requirement(tool, "1.26.0")[0] is True
    monkeypatch.setenv("GOTOOLCHAIN", "auto")
    ok, why = gobuild.go_requirement(tool, "1.24.3")
    assert ok and "fetches go1.25.0 from the module proxy" in why
    assert gobuild.go_requirement(tool, "1.20.1")[0] is False  # too old to fetch a toolchain


def test_a_pinned_go_is_fetched_whatever_go_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dex pins Go 1.25.0: a newer Go, or the user's GOTOOLCHAIN=local, must not change the binary."""
    tool = load_toolchain().get("dex")
    assert tool.go_toolchain == "1.25.0"
    monkeypatch.setenv("GOTOOLCHAIN", "local")
    assert gobuild.go_requirement(tool, "1.26.8") == (
        True, "dex is built with Go 1.25.0 exactly: found 1.26.8, which fetches go1.25.0 from the module proxy "
              "(GOTOOLCHAIN=go1.25.0)")
    assert gobuild.go_requirement(tool, "1.20.1")[0] is False
    assert gobuild.go_requirement(tool, None)[0] is False
    assert gobuild.go_env(toolchain=tool.go_toolchain)["GOTOOLCHAIN"] == "go1.25.0"
    assert "GOTOOLCHAIN" not in gobuild.go_env()


def test_doctor_reports_the_go_dex_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) in (0, 1)
    out = capsys.readouterr().out
    assert "go for dex" in out and "built with Go 1.25.0 exactly" in out


# --- the source route, with the real go command --------------------------------------------------

def test_source_route_builds_a_tree_with_the_real_go(tmp_path: Path, go_env: GoProxy) -> None:
    sources = tmp_path / "sources"
    tree = sources / "hello-v1.0.0"
    tree.mkdir(parents=True)
    (tree / "go.mod").write_text("module example.test/hello\n\ngo 1.21\n")
    (tree / "main.go").write_text('package main\n\nimport "fmt"\n\nvar version = "dev"\n\n'
                                  'func main() { fmt.Println("hello", version) }\n')
    tool = parse_tool("hello", {"version": "v1.0.0", "binaries": ["hello"], "link_vars": ["main.version={version}"],
                                "source": {"dir": "hello-{version}", "packages": {"hello": "."}}})
    assert install.install_tool(tool, sources=sources, say=QUIET).route == "source"
    assert run([str(store.bin_dir(tool) / "hello")], timeout=10).stdout == "hello v1.0.0\n"


def test_source_route_builds_with_the_pinned_go(tmp_path: Path) -> None:
    """A tool pinning go_toolchain is built by that Go release (fetched from the real module proxy
    once, then from the module cache), and its marker says so; the Go found here is newer."""
    if shutil.which("go") is None:
        pytest.skip("NOT RUN: the source route needs Go on PATH (not installed here)")
    fetch = run(["go", "version"], timeout=600, check=False, env={"GOTOOLCHAIN": f"go{DEX_GO}"})
    if fetch.returncode != 0 or f"go{DEX_GO}" not in fetch.stdout:
        pytest.skip(f"NOT RUN: the go command cannot fetch go{DEX_GO} from its module proxy: {fetch.stderr.strip()}")
    sources = tmp_path / "sources"
    tree = sources / "pinned-v1.0.0"
    tree.mkdir(parents=True)
    (tree / "go.mod").write_text("module example.test/pinned\n\ngo 1.21\n")
    (tree / "main.go").write_text('package main\n\nimport "runtime"\n\nfunc main() { println(runtime.Version()) }\n')
    tool = parse_tool("pinned", {"version": "v1.0.0", "binaries": ["pinned"], "go_toolchain": DEX_GO,
                                 "source": {"dir": "pinned-{version}", "packages": {"pinned": "."}}})
    assert install.install_tool(tool, sources=sources, say=QUIET).route == "source"
    assert run([str(store.bin_dir(tool) / "pinned")], timeout=10).stderr.strip() == f"go{DEX_GO}"
    marker = store.installed_marker(tool)
    assert marker is not None and marker.go_toolchain == DEX_GO
    assert install.install_tool(tool, sources=sources, say=QUIET).status == "present"


# --- progress on long steps ------------------------------------------------------------------------

def test_a_long_build_step_reports_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that prints a package and then waits: it goes on only once the progress line has named
    that package (the test opens its gate from the progress callback), so a build step that reports
    nothing while it runs times out here instead of passing on how long the step happened to take."""
    monkeypatch.setattr("infra.toolchain.progress.INTERVAL", 0.2)
    tool = parse_tool("demo", {"version": "v1.2.3", "binaries": ["demo"],
                               "source": {"dir": "demo", "packages": {"demo": "."}}})
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if "last: k8s.io/api/core/v1" in line:
            try:  # without blocking: if the build has not opened the gate yet, the next line tries again
                os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise

    log = gobuild.BuildLog(tool, tmp_path / "build.log", say=say)
    script = ("import sys\n"
              "print('k8s.io/api/core/v1', file=sys.stderr, flush=True)\n"
              f"open({str(gate)!r}).read()\n"
              "print('k8s.io/kubernetes/cmd', file=sys.stderr, flush=True)\n")
    log.run([sys.executable, "-c", script], cwd=tmp_path, env={}, label="go build kube-apiserver", timeout=60)
    progress = [line for line in lines if line.startswith("  go build kube-apiserver: ")]
    assert any(line.endswith("1 lines of output, last: k8s.io/api/core/v1") for line in progress), lines
    assert lines[-1].startswith("  go build kube-apiserver (")
    assert "k8s.io/kubernetes/cmd" in (tmp_path / "build.log").read_text()


def test_a_failed_step_quotes_its_output_and_log(tmp_path: Path) -> None:
    tool = parse_tool("demo", {"version": "v1.2.3", "binaries": ["demo"],
                               "source": {"dir": "demo", "packages": {"demo": "."}}})
    log = gobuild.BuildLog(tool, tmp_path / "build.log", say=QUIET)
    with pytest.raises(gobuild.BuildError, match=r"(?s)exit code 4.*undefined: frobnicate.*full log: ") as caught:
        log.run([sys.executable, "-c", "import sys; print('undefined: frobnicate'); sys.exit(4)"], cwd=tmp_path,
                env={}, label="go build demo")
    assert "undefined: frobnicate" in (tmp_path / "build.log").read_text()
    assert isinstance(caught.value, ToolchainError)


def test_lock_file_is_valid_json_with_upstream_keys(site: ReleaseSite) -> None:
    tool = real_tool("kustomize")
    site.publish(tool, HOST)
    install.install_tool(tool, route="release", say=QUIET)
    data = json.loads(lock.lock_path().read_text())
    assert data["version"] == 1
    assert list(data["assets"]) == [release.assets(tool, HOST)[0].url]  # upstream URL, not the mirror's


def test_every_release_route_has_a_stand_in() -> None:
    """The fresh-container test serves every release-route tool; one added without its packing
    (actionlint was) stops that test before the container starts."""
    from tests.toolchain_standins import PACKING

    assert {t.name for t in load_toolchain().tools.values() if t.release is not None} <= set(PACKING)
