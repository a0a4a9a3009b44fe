"""`kfstack doctor`'s container-runtime checks: the runtime, cgroups, capabilities, a privileged
container and the blackhole routes, each with the fix for this host when it fails."""

from __future__ import annotations

from infra.preflight import Check
from infra.runtime import cgroups, docker, host, probe, routes, shim


def RuntimeCheck(name: str, ok: bool, detail: str, fix: str = "") -> Check:
    """A runtime check: never required, since kind stacks need these and sim and existing do not."""
    return Check(name, ok, detail, fix, required=False)


def _daemon_check(info: dict[str, object] | None) -> Check:
    if info is not None:
        owner = "started by kfstack" if docker.owned_pid() else "not started by kfstack"
        return RuntimeCheck("container runtime", True,
                            f"docker {info.get('ServerVersion')} ({owner}; default runtime "
                            f"{info.get('DefaultRuntime')}, {info.get('Driver')} storage)")
    if docker.docker_cli() is None or docker.dockerd_binary() is None:
        facts = host.host_facts()
        fix = ("./scripts/setup (as root it installs Debian's docker.io and starts it)" if facts.debian_like
               else "install Docker or Podman (kind needs one; the sim stack does not)")
        return RuntimeCheck("container runtime", False, "docker is not installed", fix)
    return RuntimeCheck("container runtime", False, "docker is installed but no daemon answers",
                        "kfstack runtime start (starts dockerd detached; `kfstack runtime stop` stops it)")


def _capability_check(info: dict[str, object] | None) -> Check:
    if not host.lacks_sys_resource():
        return RuntimeCheck("CAP_SYS_RESOURCE", True, "in the capability bounding set")
    uses_shim = info is not None and info.get("DefaultRuntime") == shim.RUNTIME_NAME
    if uses_shim:
        return RuntimeCheck("CAP_SYS_RESOURCE", True, "missing from the bounding set; the daemon's default "
                            f"runtime is the project's {shim.RUNTIME_NAME}, which removes it from container specs")
    if docker.owned_pid():
        fix = "kfstack runtime stop && kfstack runtime start (registers the runc shim)"
    else:
        fix = (f"the daemon running here is not kfstack's, so kfstack leaves it alone: either add "
               f'{{"runtimes": {{"{shim.RUNTIME_NAME}": {{"path": "{shim.shim_path()}"}}}}, '
               f'"default-runtime": "{shim.RUNTIME_NAME}"}} to /etc/docker/daemon.json and restart it '
               "(build the shim with `kfstack runtime shim`), or stop it and run `kfstack runtime start`")
    return RuntimeCheck("CAP_SYS_RESOURCE", False, "missing from the capability bounding set: privileged "
                        "containers (every kind node) fail with 'unable to apply caps'", fix)


def cgroup_check(gaps: cgroups.CgroupGaps | None = None, *, may_mount: bool | None = None) -> Check:
    """The host's cgroup version, and v1 controllers the kernel enables that nothing mounted."""
    gaps = gaps if gaps is not None else cgroups.host_gaps()
    version = host.cgroup_version(gaps.root)
    if not gaps.missing:
        return RuntimeCheck("cgroup", True, f"{version}, every enabled controller mounted")
    may_mount = docker.may_prepare_cgroups() if may_mount is None else may_mount
    fix = ("kfstack runtime start (mounts them: kfstack started this daemon and runs as root), or as root: "
           if may_mount else "as root: ") + "; ".join(gaps.commands())
    return RuntimeCheck("cgroup", False, f"{version}: {gaps.describe()}", fix)


def runtime_checks() -> list[Check]:
    info = docker.server_info()
    checks = [_daemon_check(info), cgroup_check(), _capability_check(info)]
    if info is not None:
        result = probe.privileged_container_starts()
        checks.append(RuntimeCheck("privileged container", result.ok, result.detail,
                                   "see the CAP_SYS_RESOURCE check above; kind cannot create nodes until this passes"))
    try:
        wanted = routes.routes_wanted()
    except routes.RouteError as exc:
        checks.append(RuntimeCheck("blackhole routes", False, str(exc), f"unset {routes.ENV} or set it to 0/1"))
    else:
        checks.append(RuntimeCheck(
            "blackhole routes", True,
            "added before each kind cluster for its service and pod ranges, removed with the last cluster"
            if wanted else f"not needed on this host (set {routes.ENV}=1 to add them anyway)"))
    return checks
