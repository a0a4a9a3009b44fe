"""A fresh machine, proven: the README's two commands in a clean Debian container (tier T3, `live`).

The container holds only the repository (a shallow `git clone` of HEAD, copied in: no folder of
this machine is mounted) and what the README says a machine needs (Python 3.11, git, Go for Dex).
Its network is the package registries plus two stand-ins for what these machines cannot reach:

- release pages (`KFSTACK_RELEASE_MIRROR`) serving the binaries built here, packed as upstream
  packs them, with checksums files. Where versions.toml records upstream's own digest (kind,
  kubectl, kustomize, etcd), a binary built here cannot match it, so the clone's versions.toml is
  re-pinned to the stand-in's digest: the check against a recorded digest then runs as it would
  against upstream's file (the only change made to the clone);
- Dex's tag and module: a git repository served over dumb HTTP (git's `insteadOf`, set in the
  environment) and a module proxy ahead of the real one, holding Dex's source tree as a module.

Then `./scripts/setup` and `./scripts/test`, exactly as written; both must succeed, the set-up's
summary must name a route for every tool, and every tier the tests cannot run there must be
reported as skipped with its reason. The cold time is printed for the docs.

It takes about half an hour of both cores (most of it the test command inside), so it runs where
CI runs (`CI=true`, as `.ci/run` is run) or when asked (`KFSTACK_FRESH_CONTAINER_TEST=1`), and
`KFSTACK_FRESH_CONTAINER_TEST=0` turns it off; elsewhere it reports NOT RUN with that reason.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from infra.nodeimage.build import Build
from infra.nodeimage.pins import load_pins
from infra.nodeimage.recipes import RecipeError, debian_base
from infra.nodeimage.steps import StepLog
from infra.process import spawn, stop_process
from infra.run import CommandError, run
from infra.toolchain import release, store
from infra.toolchain.model import Platform, load_toolchain
from infra.versions import load_versions
from infra.wait import WaitTimeout, wait_until
from tests.toolchain_standins import GoProxy, ReleaseSite, publish_releases, serve

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 80 * 60.0
INSIDE = "KFSTACK_FRESH_CONTAINER"  # set in the container, so the test does not start itself there
DEX_REPO = "https://github.com/dexidp/dex"

# What the README says a machine needs, installed the way a Debian user would (Go from backports:
# bookworm's own Go is too old to fetch the version Dex asks for).
PREPARE = """set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
apt-get update -qq
apt-get install -y -qq python3 python3-venv git ca-certificates >/dev/null
apt-get install -y -qq -t bookworm-backports golang-1.23-go >/dev/null
export PATH=/usr/lib/go-1.23/bin:$PATH
cd /root/kubeflow-stacks
start=$(date +%s)
./scripts/setup
setup_done=$(date +%s)
./scripts/test
echo "FRESH-CONTAINER-TIMES setup=$((setup_done - start))s test=$(( $(date +%s) - setup_done ))s"
"""


def _wanted() -> bool:
    """In CI (`CI=true`) unless turned off with KFSTACK_FRESH_CONTAINER_TEST=0; elsewhere only when asked."""
    asked = os.environ.get("KFSTACK_FRESH_CONTAINER_TEST", "")
    if asked in ("0", "1"):
        return asked == "1"
    return os.environ.get("CI", "").lower() in ("true", "1")


def _docker() -> str:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("NOT RUN: no container runtime (docker) on this machine")
    try:
        run([docker, "info", "--format", "{{.ServerVersion}}"], timeout=30)
    except CommandError as exc:
        pytest.skip(f"NOT RUN: docker does not answer ({exc.returncode}): start the daemon")
    return docker


def _base_image() -> str:
    """A clean Debian image (debootstrap minbase: no Python, no Go): the recipe images' base, built once."""
    try:
        tag, _ = debian_base(Build(pins=load_pins(), log=StepLog(print)))
    except RecipeError as exc:
        pytest.skip(f"NOT RUN: {exc}")
    return tag


def _stand_in_releases(site: ReleaseSite, clone: Path) -> list[str]:
    """Publish every release-route tool from the binaries built here, re-pin the clone; their names."""
    plat = Platform.host()
    tools = [t for t in load_toolchain().defaults() if t.release is not None]
    real: dict[str, bytes] = {}
    for tool in tools:
        if store.installed_marker(tool) is None:
            pytest.skip(f"NOT RUN: the stand-in release pages serve the binaries built here, and {tool.name} is "
                        "not installed: run ./scripts/setup first")
        real.update({b: (store.bin_dir(tool) / b).read_bytes() for b in tool.binaries})
    publish_releases(site, tools, plat, real)
    pins = clone / "infra" / "versions.toml"
    text = pins.read_text()
    for asset in (a for t in tools for a in release.assets(t, plat) if a.sha256):
        assert text.count(asset.sha256) == 1, f"{asset.key}'s recorded digest is not in {pins} once"
        text = text.replace(asset.sha256, hashlib.sha256(site.path_of(asset.url).read_bytes()).hexdigest())
    pins.write_text(text)
    return [t.name for t in tools]


def _stand_in_dex(site: ReleaseSite, work: Path) -> None:
    """Dex's tag in a git repository served over dumb HTTP, and its module (from the source tree here)."""
    sources = Path(os.environ.get("KFSTACK_TOOLCHAIN_SOURCES", REPO.parent / "shared" / "toolchain" / "sources"))
    dex = load_toolchain().get("dex")
    tree = sources / f"dex-{dex.version}"
    if not (tree / "go.mod").is_file():
        pytest.skip(f"NOT RUN: Dex's stand-in module is made from its source tree, not found at {tree}")
    repo = work / "dex-tag"
    git = ["git", "-C", str(repo), "-c", "user.name=stand-in", "-c", "user.email=stand-in@example.invalid"]
    run(["git", "init", "-q", str(repo)], timeout=30)
    (repo / "STAND-IN").write_text(f"dex {dex.version} stand-in tag\n")
    run([*git, "add", "STAND-IN"], timeout=30)
    run([*git, "commit", "-q", "-m", "stand-in"], timeout=30)
    run([*git, "tag", "-a", dex.version, "-m", dex.version], timeout=30)
    commit = run([*git, "rev-parse", "HEAD"], timeout=30).stdout.strip()
    served = site.root / "git" / "dex.git"
    run(["git", "clone", "-q", "--bare", str(repo), str(served)], timeout=60)
    run(["git", "-C", str(served), "update-server-info"], timeout=30)
    proxy = GoProxy(site.root / "goproxy")
    stamp = "20251020120000"
    proxy.add_tree("github.com/dexidp/dex", f"v0.0.0-{stamp}-{commit[:12]}", tree, commit=commit)
    proxy.add_tree("github.com/dexidp/dex/api/v2", f"v2.3.1-0.{stamp}-{commit[:12]}", tree / "api" / "v2",
                   commit=commit)


def _stand_in_manifests(site: ReleaseSite) -> list[str]:
    """Each pinned release's manifests archive, packed from the tree here as GitHub packs a tag; the
    releases served (a tree missing here is not served: its tests then say NOT RUN, and this test fails)."""
    shared = Path(os.environ.get("KFSTACK_MANIFESTS", REPO.parent / "shared" / "kubeflow-manifests" / "v1.11.0")).parent
    served = []
    for tag, spec in load_versions().releases.items():
        tree = shared / tag
        if not (tree / "common").is_dir():
            continue
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            tar.add(tree, arcname=f"manifests-{tag.removeprefix('v')}",
                    filter=lambda info: None if "/.git" in f"/{info.name}" else info)
        site.put(spec.archive_url, buffer.getvalue())
        served.append(tag)
    return served


def _junit_counts(report: Path) -> dict[str, tuple[int, int]]:
    """(passed, skipped) per test module of a JUnit report; empty when there is none."""
    if not report.is_file():
        return {}
    counts: dict[str, tuple[int, int]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        module = case.get("classname", "").split(".")
        path = "/".join(m for m in module if not m[:1].isupper()) + ".py"
        passed, skipped = counts.get(path, (0, 0))
        if case.find("skipped") is not None:
            skipped += 1
        elif case.find("failure") is None and case.find("error") is None:
            passed += 1
        counts[path] = (passed, skipped)
    return counts


@pytest.fixture
def fresh_container(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(docker, container id): the clean container with the repository copied in, removed afterwards."""
    if os.environ.get(INSIDE):
        pytest.skip("NOT RUN: already inside the fresh container")
    if not _wanted():
        pytest.skip("NOT RUN: the fresh-container test takes about half an hour; it runs in CI (CI=true) "
                    "or with KFSTACK_FRESH_CONTAINER_TEST=1")
    docker = _docker()
    image = _base_image()
    # A clone, as a user makes one (the README block's test copies the tracked files with git).
    run(["git", "clone", "-q", "--depth", "1", REPO.as_uri(), str(tmp_path / "kubeflow-stacks")], timeout=300)
    yield docker, image


def test_readme_commands_on_a_fresh_debian_container(fresh_container: tuple[str, str], tmp_path: Path) -> None:
    docker, image = fresh_container
    with serve(ReleaseSite(tmp_path / "site")) as site:
        served = _stand_in_releases(site, tmp_path / "kubeflow-stacks")
        _stand_in_dex(site, tmp_path)
        releases = _stand_in_manifests(site)
        env = {
            INSIDE: "1",
            release.MIRROR_ENV: site.base_url,
            "GOPROXY": f"{site.base_url}/goproxy,https://proxy.golang.org",
            "GONOSUMDB": "github.com/dexidp/dex",  # the stand-in Dex is in no checksum database
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{site.base_url}/git/dex.git.insteadOf",
            "GIT_CONFIG_VALUE_0": DEX_REPO,
            # This network's registries are reached through a TLS proxy whose CA the container trusts.
            "SSL_CERT_FILE": "/etc/kfstack-ca.crt", "PIP_CERT": "/etc/kfstack-ca.crt",
            "GIT_SSL_CAINFO": "/etc/kfstack-ca.crt",
        }
        name = f"kfstack-fresh-{os.getpid()}"
        args = [docker, "create", "--name", name, "--network", "host"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        run([*args, image, "bash", "-c", PREPARE], timeout=120)
        log = tmp_path / "fresh.log"
        try:
            run([docker, "cp", str(tmp_path / "kubeflow-stacks"), f"{name}:/root/kubeflow-stacks"], timeout=300)
            run([docker, "cp", "/etc/ssl/certs/ca-certificates.crt", f"{name}:/etc/kfstack-ca.crt"], timeout=60)
            start = time.monotonic()
            proc = spawn([docker, "start", "--attach", name], log=log)
            try:
                code = wait_until(lambda: (proc.poll() is not None, proc.poll()), timeout=TIMEOUT, interval=5,
                                  what="the README's two commands in the fresh container")
            except WaitTimeout:
                stop_process(proc)
                raise
            seconds = time.monotonic() - start
        finally:
            run([docker, "cp", f"{name}:/root/kubeflow-stacks/reports", str(tmp_path / "reports")], timeout=120,
                check=False)
            run([docker, "rm", "-f", name], timeout=120, check=False)
    output = log.read_text(errors="replace")
    tail = "\n".join(output.splitlines()[-80:])
    assert code == 0, f"the README's commands failed in a fresh container (exit {code}); log {log}:\n{tail}"
    summary = [line for line in output.splitlines() if line.startswith("toolchain: ") and "routes:" in line]
    assert summary, tail
    routes = dict(part.split("=", 1) for part in summary[-1].split("routes: ", 1)[1].split(", "))
    assert {t.name for t in load_toolchain().defaults()} == set(routes)
    assert all(routes[name].startswith("release") for name in served), summary[-1]
    assert routes["dex"].startswith("module"), summary[-1]
    assert not re.search(r"^FAILED ", output, re.MULTILINE), tail
    assert not re.search(r"^ERROR ", output, re.MULTILINE), tail
    skipped = re.findall(r"^SKIPPED \[\d+\] .*", output, re.MULTILINE)  # -rs: each with its reason
    assert all(re.match(r"SKIPPED \[\d+\] \S+:\d+: \S", line) for line in skipped), "\n".join(skipped)
    # The render, simulated-cluster and upgrade tiers run there as here: the set-up fetched the trees.
    assert sorted(releases) == sorted(load_versions().releases), f"manifests trees missing here: served {releases}"
    assert not [line for line in skipped if "manifests tree" in line], "\n".join(skipped)
    ran = _junit_counts(tmp_path / "reports" / "project-tests.xml")
    for module in ("tests/test_render.py", "tests/test_sim_stack.py", "tests/test_upgrade_sim.py"):
        assert ran.get(module, (0, 0))[0] > 0, f"no test of {module} ran there: {ran}"
    assert _junit_counts(tmp_path / "reports" / "smoke.xml"), "the smoke suite wrote no report"
    print("per module (passed, skipped): " + ", ".join(f"{m} {c}" for m, c in sorted(ran.items())))
    print(f"fresh container: README commands in {seconds:.0f}s; {summary[-1]}; "
          + " ".join(re.findall(r"FRESH-CONTAINER-TIMES .*", output)) + f"; {len(skipped)} skip lines:\n"
          + "\n".join(skipped))
