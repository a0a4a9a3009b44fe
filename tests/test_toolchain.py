"""The toolchain model, release checksums and the Go build plans, without network or real builds."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra.toolchain import gobuild, release
from infra.toolchain.install import choose_route
from infra.toolchain.model import Platform, ToolchainError, load_toolchain, parse_tool

LINUX = Platform("linux", "amd64")
DIGEST = "ab" * 32


def tool_table(**overrides: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "version": "v1.2.3",
        "binaries": ["demo"],
        "release": {"url": "https://example.invalid/{version}/demo-{os}-{arch}",
                    "sha256": {"linux-amd64": DIGEST}},
        "module": {"packages": {"demo": "example.invalid/demo/cmd/demo"}},
    }
    table.update(overrides)
    return table


# --- the real versions file -----------------------------------------------------------------------

def test_versions_file_declares_every_tool_the_project_needs() -> None:
    tools = load_toolchain()
    wanted = {"pulumi", "pulumi-language-python", "pulumi-resource-kubernetes", "kind", "kubectl",
              "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok", "kwokctl",
              "kustomize", "dex", "oauth2-proxy", "minikube", "pulumi-language-python-exec",
              "pulumi-resource-pulumi-python"}
    provided = {b for t in tools.tools.values() for b in t.binaries}
    assert wanted <= provided
    node_image_only = ["containerd", "cni-plugins", "crictl", "coredns", "local-path-provisioner"]
    component_images = ["kubeflow-profile-controller", "kubeflow-kfam", "cert-manager-controller",
                        "cert-manager-cainjector", "cert-manager-webhook", "kserve", "kube-rbac-proxy",
                        "kfp-apiserver", "kfp-backend", "argo-workflows", "seaweedfs", "metacontroller",
                        "kube-network-policies"]
    assert [t.name for t in tools.tools.values() if not t.default] == [*node_image_only, *component_images,
                                                                       "minikube"]


def test_every_tool_has_a_route_that_works_with_network() -> None:
    """A user with network needs no local source tree: a release, or a module the public proxy serves."""
    from infra.nodeimage.components import component_images
    from infra.nodeimage.recipe_images import binaries_of

    tools = load_toolchain()
    # Tools that exist only to build the kind-local stack's images here: a user with network pulls
    # upstream's images instead, and needs none of them.
    # (Dex, oauth2-proxy and kubectl images reuse default tools.)
    images = component_images().values()
    binaries = [c.binary for c in images if c.binary] + binaries_of([c.recipe for c in images if c.recipe])
    image_only = {tool.name for b in binaries if not (tool := tools.tool_for_binary(b)).default}
    assert all(t.release is not None or t.module is not None for t in tools.tools.values()
               if t.name not in image_only)
    assert all(not tools.get(name).default for name in image_only)
    no_binaries = {t.name for t in tools.defaults() if t.release is None}
    assert no_binaries == {"dex"}  # upstream publishes container images only
    dex = tools.get("dex").module
    assert dex is not None and dex.go == "1.25.0" and dex.needs_commit
    for name in ("pulumi-language-python", "pulumi-resource-kubernetes", "dex", "oauth2-proxy"):
        assert tools.get(name).source is not None, name  # the proxy these machines reach refuses them


def test_release_tables_name_a_checksums_file_except_where_upstream_publishes_none() -> None:
    tools = load_toolchain()
    without = sorted(t.name for t in tools.tools.values() if t.release and not t.release.publishes_checksums)
    assert without == ["kwok"]
    for tool in tools.tools.values():
        if tool.release and tool.release.checksums:
            assert tool.release.checksums.startswith("https://") and "/tag/" not in tool.release.checksums


def test_binary_names_resolve_to_their_tool() -> None:
    tools = load_toolchain()
    assert tools.get("kube-apiserver").name == "kubernetes"
    assert tools.get("kwokctl").name == "kwok"
    with pytest.raises(ToolchainError, match="unknown tool or binary 'nope'"):
        tools.get("nope")


def test_provider_install_brings_pulumi_first() -> None:
    tools = load_toolchain()
    ordered = tools.with_requirements([tools.get("pulumi-resource-kubernetes")])
    assert [t.name for t in ordered] == ["pulumi", "pulumi-resource-kubernetes"]


# --- model validation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "message"), [
    ({"version": "1.2.3"}, "not of the form v1.2.3"),
    ({"colour": "red"}, "unknown key"),
    ({"binaries": ["demo", "other"]}, "must build exactly the binaries"),
    ({"release": {"url": "https://x/{version}", "sha256": {"linux-amd64": "ABC"}}}, "lower-case hex"),
    ({"release": None, "module": None}, "has no route"),
    ({"link_vars": ["main.version = {version}"]}, "no spaces"),
    ({"pulumi_plugin": "kubernetes"}, "must be '<kind> <name>'"),
    ({"version": "v1.2.3.4"}, "not of the form v1.2.3"),
    ({"module": {"packages": {"demo": "x/demo"}, "static": True, "cgo": True}}, "exclude each other"),
    ({"module": {"packages": {"demo": "x/demo"}, "cgo": "yes"}}, r"cgo must be true or false"),
    ({"module": {"packages": {"demo": "x/demo"}, "symlinks": {"a.go": "b.go"}}}, "set require"),
    ({"module": {"packages": {"demo": "x/demo"}, "patches": ["fix.patch"]}}, "set require"),
    ({"module": {"packages": {"demo": "x/demo"}, "require": ["x {version}"], "symlinks": {"a.go": "../b.go"}}},
     "without \\.\\."),
])
def test_bad_tool_tables_fail_with_the_key(overrides: dict[str, Any], message: str) -> None:
    table = {k: v for k, v in tool_table(**overrides).items() if v is not None}
    with pytest.raises(ToolchainError, match=message):
        parse_tool("demo", table)


def test_a_two_number_version_fills_its_templates() -> None:
    """SeaweedFS tags 4.00: its source directory and image tag use the number as it is."""
    tool = parse_tool("demo", tool_table(version="v4.00"))
    assert tool.expand("seaweedfs-{number}") == "seaweedfs-4.00"
    assert tool.template_vars()["patch"] == ""


# --- route choice -------------------------------------------------------------------------------

def test_auto_takes_a_reachable_checksummed_release() -> None:
    assert choose_route(parse_tool("demo", tool_table()), "auto", LINUX, probe=lambda url: True) == "release"


def test_auto_falls_back_to_module_when_release_unreachable() -> None:
    assert choose_route(parse_tool("demo", tool_table()), "auto", LINUX, probe=lambda url: False) == "module"


def test_auto_takes_a_release_without_recorded_checksum() -> None:
    """The release's own checksums file (or the lock) verifies it; no recorded value is needed."""
    tool = parse_tool("demo", tool_table(release={"url": "https://x/{version}/demo", "sha256": {},
                                                  "checksums": "https://x/{version}/SHA256SUMS"}))
    assert choose_route(tool, "auto", LINUX, probe=lambda url: True) == "release"


def test_auto_uses_source_when_there_is_no_module() -> None:
    tool = parse_tool("demo", {"version": "v1.2.3", "binaries": ["demo"],
                               "source": {"dir": "demo-{version}", "packages": {"demo": "./cmd/demo"}}})
    assert choose_route(tool, "auto", LINUX, probe=lambda url: True) == "source"


def test_auto_probes_every_asset() -> None:
    tool = parse_tool("demo", {"version": "v1.2.3", "binaries": ["a", "b"],
                               "release": {"url": "https://x/{version}/{binary}", "sha256": {}},
                               "source": {"dir": "d", "packages": {"a": ".", "b": "./b"}}})
    assert choose_route(tool, "auto", LINUX, probe=lambda url: not url.endswith("/b")) == "source"


def test_auto_skips_a_module_whose_tag_repository_is_unreachable(tmp_path: Path) -> None:
    module = {"packages": {"demo": "example.invalid/demo"}, "tag_repo": "https://example.invalid/demo",
              "require": ["example.invalid/demo {commit}"]}
    tool = parse_tool("demo", {"version": "v1.2.3", "binaries": ["demo"], "module": module,
                               "source": {"dir": "demo-{version}", "packages": {"demo": "."}}})
    assert choose_route(tool, "auto", LINUX, probe=lambda url: False) == "source"
    pinned = parse_tool("demo", {"version": "v1.2.3", "binaries": ["demo"], "module": {**module, "commit": "a" * 40},
                                 "source": {"dir": "demo-{version}", "packages": {"demo": "."}}})
    assert choose_route(pinned, "auto", LINUX, probe=lambda url: False) == "module"


def test_explicit_route_must_exist() -> None:
    with pytest.raises(ToolchainError, match="demo has no source route; it has: release, module"):
        choose_route(parse_tool("demo", tool_table()), "source", LINUX)


# --- release assets, refusal and checksums ------------------------------------------------------

def test_release_urls_use_the_tools_spelling_of_os_and_arch() -> None:
    tools = load_toolchain()
    (pulumi,) = release.assets(tools.get("pulumi"), LINUX)
    assert pulumi.url == "https://get.pulumi.com/releases/sdk/pulumi-v3.259.0-linux-x64.tar.gz"
    assert pulumi.archive == "tar.gz"
    (etcd_mac,) = release.assets(tools.get("etcd"), Platform("darwin", "arm64"))
    assert etcd_mac.url.endswith("/v3.6.5/etcd-v3.6.5-darwin-arm64.zip")
    kubernetes = release.assets(tools.get("kubernetes"), LINUX)
    assert [a.key for a in kubernetes] == ["kubectl-linux-amd64", "kube-apiserver-linux-amd64",
                                           "kube-controller-manager-linux-amd64", "kube-scheduler-linux-amd64",
                                           "kubeadm-linux-amd64", "kubelet-linux-amd64", "kube-proxy-linux-amd64"]
    assert kubernetes[0].url == "https://dl.k8s.io/release/v1.34.2/bin/linux/amd64/kubectl"


def test_tool_without_release_route_is_refused() -> None:
    with pytest.raises(release.ReleaseRefusedError, match="dex has no release route"):
        release.assets(load_toolchain().get("dex"), LINUX)


@pytest.mark.parametrize(("text", "name", "expected"), [
    (f"{DIGEST}  kind-linux-amd64\n", "kind-linux-amd64", DIGEST),  # kind's .sha256sum
    (f"{DIGEST}\n", "kube-apiserver", DIGEST),  # dl.k8s.io's .sha256: one bare digest
    (f"{'cd' * 32}  etcd-v3.5.21-darwin-amd64.zip\n{DIGEST}  etcd-v3.5.21-linux-amd64.tar.gz\n",
     "etcd-v3.5.21-linux-amd64.tar.gz", DIGEST),  # SHA256SUMS
    (f"{DIGEST.upper()} *pulumi-v3.259.0-linux-x64.tar.gz\n", "pulumi-v3.259.0-linux-x64.tar.gz", DIGEST),
    (f"{DIGEST}  ./kustomize_v5.7.1_linux_amd64.tar.gz\n", "kustomize_v5.7.1_linux_amd64.tar.gz", DIGEST),
    (f"{DIGEST}  oauth2-proxy-v7.13.0.linux-amd64/oauth2-proxy\n", "oauth2-proxy-v7.13.0.linux-amd64.tar.gz",
     None),  # the binary's own sum is not the tarball's
    (f"{DIGEST}  other-file\n", "kind-linux-amd64", None),
    ("<html>Not Found</html>", "kind-linux-amd64", None),
])
def test_checksums_files_as_upstreams_publish_them(text: str, name: str, expected: str | None) -> None:
    assert release.digest_from_checksums(text, name) == expected


def test_mirror_rewrites_the_fetched_url_only(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2Fv5.7.1/checksums.txt"
    assert release.mirrored(url) == url
    monkeypatch.setenv("KFSTACK_RELEASE_MIRROR", "http://127.0.0.1:9/mirror/")
    assert release.mirrored(url) == ("http://127.0.0.1:9/mirror/github.com/kubernetes-sigs/kustomize/releases/"
                                      "download/kustomize%2Fv5.7.1/checksums.txt")
    assert release.mirrored("file:///srv/assets/demo-linux-amd64") == "file:///srv/assets/demo-linux-amd64"
    (asset,) = release.assets(load_toolchain().get("kustomize"), LINUX)
    assert asset.url.startswith("https://github.com/")  # the lock key stays the upstream URL
    assert asset.filename == "kustomize_v5.7.1_linux_amd64.tar.gz"


def test_checksum_verification_on_a_local_file(tmp_path: Path) -> None:
    path = tmp_path / "asset"
    path.write_bytes(b"published bytes")
    good = hashlib.sha256(b"published bytes").hexdigest()
    kwargs = {"source": "https://example.invalid/asset", "vouched_by": "versions.toml", "fix": "Retry."}
    assert release.verify_sha256(path, good, **kwargs) == good
    assert release.verify_sha256(path, good.upper(), **kwargs) == good
    with pytest.raises(release.ChecksumMismatchError, match=rf"expected {DIGEST} \(versions.toml\)"):
        release.verify_sha256(path, DIGEST, **kwargs)


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_extract_finds_binaries_anywhere_in_a_tarball(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    _tar(archive, {"pulumi/pulumi": b"cli", "pulumi/pulumi-language-python-exec": b"shim", "pulumi/x": b""})
    out = tmp_path / "bin"
    out.mkdir()
    release.extract(archive, "tar.gz", ("pulumi", "pulumi-language-python-exec"), out)
    assert (out / "pulumi").read_bytes() == b"cli"
    assert (out / "pulumi-language-python-exec").stat().st_mode & 0o111
    assert not (out / "x").exists()
    with pytest.raises(ToolchainError, match="does not contain kubectl"):
        release.extract(archive, "tar.gz", ("kubectl",), out)


def test_extract_from_zip(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("etcd-v3.5.21-darwin-arm64/etcd", b"etcd")
    out = tmp_path / "bin"
    out.mkdir()
    release.extract(archive, "zip", ("etcd",), out)
    assert (out / "etcd").read_bytes() == b"etcd"


# --- Go build plans -----------------------------------------------------------------------------

def test_kubernetes_ldflags_carry_the_version() -> None:
    flags = gobuild.ldflags(load_toolchain().get("kubernetes"))
    assert flags.startswith("-s -w ")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.34.2" in flags
        assert f"-X {pkg}.gitMajor=1" in flags
        assert f"-X {pkg}.gitMinor=34" in flags


def test_provider_ldflags_use_the_bare_version() -> None:
    flags = gobuild.ldflags(load_toolchain().get("pulumi-resource-kubernetes"))
    assert flags == "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=4.30.0"


def test_kubernetes_wrapper_module_replaces_every_staging_repo() -> None:
    tool = load_toolchain().get("kubernetes")
    assert tool.module is not None and tool.module.uses_wrapper
    gomod = gobuild.wrapper_gomod(tool, tool.module)
    assert gomod.startswith("module kfstack.local/kubernetes\n\ngo 1.24\n\nrequire (\n\tk8s.io/kubernetes v1.34.2\n)\n")
    replaces = [line for line in gomod.splitlines() if line.startswith("replace ")]
    assert len(replaces) == 31
    assert "replace k8s.io/client-go => k8s.io/client-go v0.34.2" in replaces
    assert all(line.endswith(" v0.34.2") for line in replaces)
    assert "{" not in gomod


def test_pulumi_wrapper_module_repeats_upstream_replaces() -> None:
    tool = load_toolchain().get("pulumi")
    assert tool.module is not None
    gomod = gobuild.wrapper_gomod(tool, tool.module)
    assert "\tgithub.com/pulumi/pulumi/pkg/v3 v3.259.0\n\tgithub.com/pulumi/pulumi/sdk/v3 v3.259.0\n" in gomod
    assert "replace golang.org/x/text => golang.org/x/text v0.39.0" in gomod


def test_plain_modules_use_go_install() -> None:
    tools = load_toolchain()
    for name in ("kind", "kwok", "kustomize"):
        route = tools.get(name).module
        assert route is not None and not route.uses_wrapper, name
    assert gobuild.installed_name("sigs.k8s.io/kustomize/kustomize/v5") == "kustomize"
    assert gobuild.installed_name("sigs.k8s.io/kind") == "kind"


def test_source_route_edits_of_the_language_host() -> None:
    tool = load_toolchain().get("pulumi-language-python")
    assert tool.source is not None
    assert [tool.expand(a) for a in tool.source.mod_edit_args()] == [
        "-dropreplace=github.com/pulumi/pulumi/pkg/v3", "-dropreplace=github.com/pulumi/pulumi/sdk/v3",
        "-require=github.com/pulumi/pulumi/pkg/v3@v3.259.0", "-require=github.com/pulumi/pulumi/sdk/v3@v3.259.0",
    ]


def test_go_env_forces_mod_mod_and_merges_gonosumdb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GONOSUMDB", "corp.example")
    env = gobuild.go_env(["github.com/fluxcd/pkg"], gobin=Path("/x/bin"))
    assert env["GOFLAGS"].split()[0] == "-mod=mod"
    assert env["GONOSUMDB"] == "corp.example,github.com/fluxcd/pkg"
    assert env["GOBIN"] == "/x/bin"


# --- the Pulumi CLI the Automation API runs --------------------------------------------------------

@pytest.mark.parametrize("prints", ["pulumi stand-in", ""])
def test_a_pulumi_that_prints_no_version_is_named_with_the_fix(prints: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The fresh container's pulumi printed `pulumi stand-in`: the Automation API's own error said
    "probably an internal error" and named neither the binary nor what it printed."""
    from infra.automation import pulumi_command

    binary = tmp_path / "bin" / "pulumi"
    binary.parent.mkdir()
    binary.write_text(f"#!/bin/sh\necho '{prints}'\n")
    binary.chmod(0o755)
    monkeypatch.setenv("KFSTACK_BIN_PULUMI", str(binary))
    with pytest.raises(ToolchainError) as caught:
        pulumi_command()
    message = str(caught.value)
    assert str(binary) in message and repr(prints) in message
    assert "kfstack tools install pulumi --force" in message and "KFSTACK_BIN_PULUMI" in message

    binary.write_text("#!/bin/sh\necho v3.259.0\n")  # what the real CLI prints
    assert str(pulumi_command().version) == "3.259.0"
