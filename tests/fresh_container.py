"""The fresh machine that tests/test_toolchain_routes_fresh.py checks (its docstring says what and why).

Here: the stand-ins the container's network offers (release pages with the binaries built here,
Dex's tag and module, the manifests archives), the clean container running the README's two
commands, and `FreshRun`, which prepares and starts all of it and is waited for by the test.

It runs beside the other tests: `start_beside` starts it in the background as soon as the session
has collected the test, so its half hour overlaps the project tests' waits instead of following
them, and the test itself only waits for what is left. What they share is the host's network:
every cluster, stack and port a test makes has a per-run unique name or a free port (infra/names.py,
`infra.process.free_port`), so the container's tests cannot take the host's (the `kfsim` collision
of an earlier run, two simulated clusters of one name, is impossible by construction now).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra.ci.fresh import inputs_digest, not_run_reason
from infra.ci.tiers import tier_of
from infra.nodeimage.build import Build
from infra.nodeimage.pins import load_pins
from infra.nodeimage.recipes import RecipeError, debian_base
from infra.nodeimage.steps import StepLog
from infra.toolchain import release, store
from infra.toolchain.model import Platform, load_toolchain
from infra.versions import load_versions
from smoke_tests.process import spawn, stop_process
from smoke_tests.run import CommandError, run
from smoke_tests.wait import WaitTimeout, wait_until
from tests.toolchain_standins import GoProxy, ReleaseSite, publish_releases, serve

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 80 * 60.0
INSIDE = "KFSTACK_FRESH_CONTAINER"  # set in the container, so the test does not start itself there
DEX_REPO = "https://github.com/dexidp/dex"
TEST_NAME = "test_readme_commands_on_a_fresh_debian_container"

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


@dataclass
class FreshRun:
    """One run of the README's two commands in a fresh container: `start` prepares and starts it,
    `result` waits for it, `close` copies the reports out and removes the container and the stand-ins."""

    work: Path
    digest: str = ""  # of the clone's set-up inputs (infra.ci.fresh), taken before anything in it changes
    commit: str = ""  # the clone's HEAD
    served: list[str] = field(default_factory=list)  # tools the stand-in release pages serve
    releases: list[str] = field(default_factory=list)  # manifests releases they serve
    seconds: float = 0.0
    _docker: str = ""
    _name: str = ""
    _proc: subprocess.Popen[str] | None = None
    _servers: ExitStack = field(default_factory=ExitStack)

    @property
    def log(self) -> Path:
        return self.work / "fresh.log"

    @property
    def reports(self) -> Path:
        return self.work / "reports"

    def start(self) -> None:
        """The stand-ins, the clone and the container, then the two commands (skips NOT RUN where it cannot)."""
        self._docker = _docker()
        image = _base_image()
        clone = self.work / "kubeflow-stacks"
        # A clone, as a user makes one (the README block's test copies the tracked files with git).
        run(["git", "clone", "-q", "--depth", "1", REPO.as_uri(), str(clone)], timeout=300)
        self.digest = inputs_digest(clone)  # what runs: HEAD's files, before the re-pin below
        self.commit = run(["git", "-C", str(clone), "rev-parse", "HEAD"], timeout=60).stdout.strip()
        site = self._servers.enter_context(serve(ReleaseSite(self.work / "site")))
        self.served = _stand_in_releases(site, clone)
        _stand_in_dex(site, self.work)
        self.releases = _stand_in_manifests(site)
        self._name = f"kfstack-fresh-{os.getpid()}"
        args = [self._docker, "create", "--name", self._name, "--network", "host"]
        for key, value in _environment(site).items():
            args += ["-e", f"{key}={value}"]
        run([*args, image, "bash", "-c", PREPARE], timeout=120)
        run([self._docker, "cp", str(clone), f"{self._name}:/root/kubeflow-stacks"], timeout=300)
        run([self._docker, "cp", "/etc/ssl/certs/ca-certificates.crt", f"{self._name}:/etc/kfstack-ca.crt"],
            timeout=60)
        self.seconds = time.monotonic()
        self._proc = spawn([self._docker, "start", "--attach", self._name], log=self.log)

    def result(self) -> int:
        """Wait for the two commands; their exit code (`seconds` then holds how long they ran)."""
        proc = self._proc
        assert proc is not None
        try:
            code = wait_until(lambda: (proc.poll() is not None, proc.poll()), timeout=TIMEOUT, interval=5,
                              what="the README's two commands in the fresh container")
        except WaitTimeout:
            stop_process(proc)
            raise
        self.seconds = time.monotonic() - self.seconds
        assert code is not None  # the wait ends only once it exited
        return code

    def close(self, *, keep: bool) -> None:
        """Copy the reports out, remove the container and stop the stand-ins; the work folder goes unless `keep`."""
        if self._proc is not None and self._proc.poll() is None:
            stop_process(self._proc)
        if self._name:
            run([self._docker, "cp", f"{self._name}:/root/kubeflow-stacks/reports", str(self.reports)],
                timeout=120, check=False)
            run([self._docker, "rm", "-f", self._name], timeout=120, check=False)
            self._name = ""
        self._servers.close()
        if not keep or self._proc is None:  # nothing ran: no log worth keeping
            shutil.rmtree(self.work, ignore_errors=True)


@dataclass
class Beside:
    """A fresh run started when the session began; the test takes it at its turn."""

    run: FreshRun
    error: BaseException | None = None  # what stopped its start: raised in the test, never lost
    taken: bool = False  # the test took it: closing it is the test's

    def take(self) -> FreshRun:
        self.taken = True
        if self.error is not None:
            raise self.error
        return self.run


STASH = pytest.StashKey[Beside]()


def start_beside(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the fresh run now when the session will run the test (selected, asked for or its inputs
    changed, not already inside the container), so its container overlaps the other tests.

    The preparation (clone, stand-ins, container) runs here, before any test, in the session's own
    thread: the tests' fixtures change the process's environment (the cache folder, the mirror),
    and the preparation must not read a test's values. Only the container runs in the background."""
    if os.environ.get(INSIDE) or config.option.collectonly or not any(item.name == TEST_NAME for item in items):
        return
    if not_run_reason(os.environ, REPO) is not None:
        return  # the test reports the reason itself
    beside = Beside(FreshRun(work=Path(tempfile.mkdtemp(prefix="kfstack-fresh-"))))
    config.stash[STASH] = beside
    began = time.monotonic()
    try:
        beside.run.start()
    except (Exception, pytest.skip.Exception) as exc:  # a skip or a failure is the test's, raised there
        beside.error = exc
        return
    print(f"\nfresh machine: container started beside the other tests after {time.monotonic() - began:.0f}s "
          f"of preparation (log {beside.run.log})", flush=True)


def started_beside(config: pytest.Config) -> Beside | None:
    return config.stash.get(STASH, None)


def close_beside(config: pytest.Config) -> None:
    """At the session's end: a run the test never took (deselected by -x, interrupted) is removed."""
    beside = config.stash.get(STASH, None)
    if beside is not None and not beside.taken:
        beside.run.close(keep=False)


# Inside the container the simulated-cluster tier runs only these modules: between them they use
# every tool the set-up installs for that tier, which is what the fresh machine proves; the host's
# own run, in the same CI, runs every other test of the tier on the same code. Unit, render and
# live (NOT RUN there: no container runtime) run whole, and the smoke suite on the local target too.
INSIDE_SIM_MODULES = {
    "tests/test_readme.py": "the README's bring-up block, as written",
    "tests/test_sim_stack.py": "the Pulumi engine, its language host and the Kubernetes provider plugin "
                               "against kwok's kube-apiserver, etcd and controllers; kubectl; kustomize",
    "tests/test_upgrade_sim.py": "both manifests releases the set-up fetched",
    "tests/test_mlmd_server.py": "the ML Metadata stand-in on the ml-metadata wheel, MariaDB and PostgreSQL",
}


def inside_selection(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the fresh container, deselect the simulated-cluster tests outside `INSIDE_SIM_MODULES`
    (reported by pytest as deselected, and NOT RUN in the container's table)."""
    if not os.environ.get(INSIDE):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        (drop if tier_of(item) == "sim" and module not in INSIDE_SIM_MODULES else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
        print(f"\nfresh machine: {len(drop)} simulated-cluster tests left to the host's run "
              f"(here only {', '.join(sorted(INSIDE_SIM_MODULES))})", flush=True)


def _environment(site: ReleaseSite) -> dict[str, str]:
    """The container's variables: the stand-ins as its network, this network's TLS proxy CA trusted."""
    return {
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
