"""Blackhole routes that keep a cluster's service and pod traffic on this machine.

Until kube-proxy has written its rules inside a kind node, a pod connecting to the API service
IP (10.96.0.1) is routed out through the host's default route. Some hosts (the microVMs this
project is built on) must never send traffic to a private address beyond themselves, so before
a cluster is created there, the host gets `blackhole` routes for the cluster's service and pod
ranges: such a packet then fails at once on the host, and the pod retries. Traffic inside the
node is DNATed by kube-proxy before routing and never meets these routes.

Every route is recorded with the clusters that hold it; it is removed with the last of them,
and a route the project did not add is never removed.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

from infra.runtime import host
from infra.runtime.docker import runtime_dir
from smoke_tests.run import CommandError, run

Say = Callable[[str], None]
ENV = "KFSTACK_BLACKHOLE_ROUTES"  # "1" forces them on, "0" off; unset: on where CAP_SYS_RESOURCE is missing


class RouteError(RuntimeError):
    """A route could not be added or removed; the message says why and what to do."""


def routes_wanted() -> bool:
    """Whether clusters on this host get blackhole routes (the restricted-host profile, or forced)."""
    value = os.environ.get(ENV, "").strip()
    if value in ("0", "1"):
        return value == "1"
    if value:
        raise RouteError(f"{ENV}={value!r}: use 1 (always add blackhole routes), 0 (never) or leave it unset")
    return host.lacks_sys_resource()


def _ip() -> str:
    found = shutil.which("ip") or ("/usr/sbin/ip" if Path("/usr/sbin/ip").exists() else None)
    if found is None:
        raise RouteError("the `ip` command (iproute2) is needed for the cluster's blackhole routes: "
                         "apt-get install iproute2")
    return found


def host_routes() -> list[dict[str, object]]:
    """The main table's IPv4 routes, as `ip -j route show` reports them."""
    out = run([_ip(), "-j", "-4", "route", "show"], timeout=10).stdout
    return list(json.loads(out or "[]"))


def blackhole_present(cidr: str) -> bool:
    return any(r.get("dst") == cidr and r.get("type") == "blackhole" for r in host_routes())


def _conflicts(cidr: str) -> list[str]:
    """Routes of real networks that overlap `cidr`: blackholing them would cut this host off."""
    net = ipaddress.ip_network(cidr)
    found = []
    for route in host_routes():
        dst = str(route.get("dst", ""))
        if dst == "default" or route.get("type") == "blackhole":
            continue
        try:
            other = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if other.overlaps(net):
            found.append(f"{dst} dev {route.get('dev', '?')}")
    return found


def _state_file() -> Path:
    return runtime_dir() / "routes.json"


class RouteEntry(TypedDict):
    """One range in routes.json: who holds its route, and whether the project added it."""

    owners: list[str]
    added: bool


def _entry(raw: object) -> RouteEntry:
    """A routes.json entry as written by an earlier version or by hand: missing keys are empty."""
    data = raw if isinstance(raw, dict) else {}
    owners = data.get("owners", [])
    return {"owners": [str(o) for o in owners] if isinstance(owners, list) else [],
            "added": bool(data.get("added", False))}


@contextmanager
def _locked_state() -> Iterator[dict[str, RouteEntry]]:
    """The owners of each route, read and written under one lock (two stacks may run at once)."""
    with open(runtime_dir() / "routes.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                loaded = json.loads(_state_file().read_text())
            except (OSError, ValueError):
                loaded = {}
            state = {str(c): _entry(e) for c, e in loaded.items()} if isinstance(loaded, dict) else {}
            yield state
            _state_file().write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def normalise(cidrs: Iterable[str]) -> list[str]:
    """Canonical network strings ("10.96.0.0/12"); a malformed range is an error naming it."""
    result = []
    for cidr in cidrs:
        try:
            result.append(str(ipaddress.ip_network(cidr, strict=True)))
        except ValueError as exc:
            raise RouteError(f"{cidr!r} is not a network range like 10.96.0.0/16 ({exc})") from None
    return result


def hold(owner: str, cidrs: Iterable[str], say: Say = print) -> list[str]:
    """Make sure each range has a blackhole route, held by `owner`; returns the ranges added now."""
    wanted = normalise(cidrs)
    added = []
    with _locked_state() as state:
        for cidr in wanted:
            entry = state.setdefault(cidr, {"owners": [], "added": False})
            owners = list(entry["owners"])
            if not blackhole_present(cidr):
                conflicts = _conflicts(cidr)
                if conflicts:
                    raise RouteError(f"the cluster range {cidr} overlaps this host's network ({'; '.join(conflicts)}):"
                                     " choose another podSubnet/serviceSubnet for the cluster")
                try:
                    run([_ip(), "route", "add", "blackhole", cidr], timeout=10)
                except CommandError as exc:
                    raise RouteError(f"adding the blackhole route for {cidr} failed (root needed): "
                                     f"{exc.stderr.strip()}") from None
                entry["added"] = True
                added.append(cidr)
                say(f"route: blackhole {cidr} added (keeps {owner}'s traffic on this machine)")
            if owner not in owners:
                owners.append(owner)
            entry["owners"] = owners
    return added


def release(owner: str, say: Say = print) -> list[str]:
    """Drop `owner` from every route; remove the routes the project added that nobody holds now."""
    removed = []
    with _locked_state() as state:
        for cidr in list(state):
            entry = state[cidr]
            owners = [o for o in entry["owners"] if o != owner]
            entry["owners"] = owners
            if owners:
                continue
            if entry["added"] and blackhole_present(cidr):
                try:
                    run([_ip(), "route", "del", "blackhole", cidr], timeout=10)
                except CommandError as exc:
                    raise RouteError(f"removing the blackhole route for {cidr} failed: {exc.stderr.strip()}") from None
                removed.append(cidr)
                say(f"route: blackhole {cidr} removed (no cluster holds it any more)")
            del state[cidr]
    return removed


def held_by(owner: str) -> list[str]:
    """The ranges `owner` holds (for status output and tests)."""
    with _locked_state() as state:
        return sorted(c for c, e in state.items() if owner in e["owners"])


def holders(cidr: str) -> list[str]:
    """Who holds the route for `cidr` now (another stack's cluster keeps it in place)."""
    [key] = normalise([cidr])
    with _locked_state() as state:
        entry = state.get(key)
        return sorted(entry["owners"]) if entry else []
