"""The NetworkPolicy enforcer of kind clusters whose node network enforces none: T0 on the agent's
objects and rights, the config key and the kernel probe (with a stand-in docker); T1 on the real
v1.11.0 render of the kind-local and dev stack files."""

from __future__ import annotations

import copy
import os
import stat
from pathlib import Path

import pytest
import yaml

from infra.clusters.netpolicy import PROBE_RULES, nfqueue_problem
from infra.config import ConfigError, KindClusterConfig, parse_stack_config
from infra.manifests.objects import Obj, Rendered
from infra.manifests.render import render
from infra.nodeimage.components import component_images
from infra.patches import netpolicy
from infra.paths import REPO_ROOT
from infra.versions import load_versions
from tests.test_live_kind_stack import stack_raw

IMAGE = "registry.k8s.io/networking/kube-network-policies:v0.8.0"


def _by_kind(objs: list[Obj]) -> dict[str, Obj]:
    return {o["kind"]: o for o in objs}


def test_the_agent_runs_on_the_node_network_with_the_rights_its_rules_need() -> None:
    objs = _by_kind(netpolicy.enforcer_objects(IMAGE))
    pod = objs["DaemonSet"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # Its nftables table and nfqueue socket live in the node's network namespace.
    assert pod["hostNetwork"] is True
    assert container["securityContext"]["privileged"] is True
    assert "NET_ADMIN" in container["securityContext"]["capabilities"]["add"]
    # Upstream's image sets CMD only: the binary is named, so the args are flags, not a command.
    assert container["command"] == ["/bin/netpol"] and container["image"] == IMAGE
    assert all(a.startswith("--") for a in container["args"])
    # The node it judges packets for is the one it runs on (the node name, not the pod's hostname).
    assert "--hostname-override=$(MY_NODE_NAME)" in container["args"]
    assert {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]} == mounts
    # Selected by its own labels; tolerates the control-plane taint of a one-node cluster.
    assert objs["DaemonSet"]["spec"]["selector"]["matchLabels"].items() <= \
        objs["DaemonSet"]["spec"]["template"]["metadata"]["labels"].items()
    assert {"operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_the_agent_may_read_pods_namespaces_and_policies_and_change_nothing() -> None:
    objs = _by_kind(netpolicy.enforcer_objects(IMAGE))
    account = objs["ServiceAccount"]["metadata"]
    binding = objs["ClusterRoleBinding"]
    assert objs["DaemonSet"]["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                    "namespace": account["namespace"]}]
    assert binding["roleRef"]["name"] == objs["ClusterRole"]["metadata"]["name"]
    granted = {(group, resource, verb) for rule in objs["ClusterRole"]["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    # What its informers list and watch (pods, namespaces, NetworkPolicies), nothing it could write.
    assert granted == {(g, r, v) for g, r in (("", "pods"), ("", "namespaces"),
                                               ("networking.k8s.io", "networkpolicies"))
                       for v in ("list", "watch")}


def test_an_unknown_enforcer_is_refused_naming_the_key() -> None:
    raw = stack_raw("kflocal")
    raw["cluster"]["kind"]["networkPolicy"] = "calico"
    with pytest.raises(ConfigError, match=r"cluster\.kind\.networkPolicy"):
        parse_stack_config("kind-local", raw, set())


def test_the_pinned_image_is_one_the_project_builds() -> None:
    assert load_versions().images[netpolicy.NAME] == IMAGE
    built = component_images()[IMAGE]
    assert (built.binary, built.path) == ("kube-network-policies", netpolicy.BINARY)


def _fake_docker(tmp_path: Path, script: str) -> str:
    path = tmp_path / "docker"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_a_kernel_without_the_nftables_queue_is_reported(tmp_path: Path) -> None:
    refused = _fake_docker(tmp_path, f"cat > {tmp_path}/rules\necho 'Error: Could not process rule: No such file "
                                     "or directory' >&2\nexit 1\n")
    problem = nfqueue_problem("kfkl-control-plane", docker=refused)
    assert "CONFIG_NFT_QUEUE" in problem and "No such file or directory" in problem
    # The probe runs in a throwaway network namespace of the node, with the rules on stdin.
    args = _fake_docker(tmp_path, f'echo "$@" > {tmp_path}/args\ncat > {tmp_path}/rules\n')
    assert nfqueue_problem("kfkl-control-plane", docker=args) == ""
    assert (tmp_path / "args").read_text().split() == ["exec", "-i", "kfkl-control-plane", "unshare", "--net",
                                                       "nft", "-f", "-"]
    assert (tmp_path / "rules").read_text() == PROBE_RULES and "queue num" in PROBE_RULES


@pytest.mark.skipif(os.geteuid() != 0, reason="NOT RUN: a network namespace needs root")
def test_the_probe_rules_are_what_nft_reads(tmp_path: Path) -> None:
    """The probe's rule set is valid nftables syntax: `nft -c` (check only) parses it; a kernel
    refusal of the queue expression is the only failure the probe may report."""
    import shutil

    from smoke_tests.run import CommandError, run

    if shutil.which("nft") is None or shutil.which("unshare") is None:
        pytest.skip("NOT RUN: nft or unshare is not installed")
    refused = run(["unshare", "--net", "true"], timeout=30, check=False)
    if refused.returncode != 0:  # e.g. root inside an unprivileged container (the fresh-machine test's)
        pytest.skip(f"NOT RUN: this machine refuses a new network namespace: {refused.stderr.strip()}")
    try:
        run(["unshare", "--net", "nft", "-c", "-f", "-"], timeout=30, input_text=PROBE_RULES)
    except CommandError as exc:
        assert "queue" in exc.stderr and "No such file or directory" in exc.stderr, exc.stderr


@pytest.fixture(scope="module")
def kind_local(manifests_tree: Path) -> Rendered:
    return render(parse_stack_config("kind-local", stack_raw("kflocal"), set()), manifests_tree)


def test_kind_local_runs_the_agent_from_the_preloaded_image(kind_local: Rendered) -> None:
    (daemonset,) = kind_local.find("DaemonSet", netpolicy.NAME, "kube-system")
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "IfNotPresent"
    cluster = parse_stack_config("kind-local", stack_raw("kflocal"), set()).cluster
    assert isinstance(cluster, KindClusterConfig) and IMAGE in cluster.kind.preload_images
    assert {("ClusterRole", netpolicy.NAME), ("ClusterRoleBinding", netpolicy.NAME),
            ("ServiceAccount", netpolicy.NAME)} <= {(o["kind"], o["metadata"]["name"]) for o in kind_local.objects}
    assert f"netpolicy:{netpolicy.NAME}" in kind_local.adjustments
    # What it enforces: the stack's own policies in front of ml-pipeline and the database.
    assert {"kfstack-ml-pipeline", "kfstack-mysql"} <= {o["metadata"]["name"] for o in kind_local.objects
                                                        if o["kind"] == "NetworkPolicy"}


def test_a_kind_stack_on_kindnetd_runs_no_second_agent(manifests_tree: Path) -> None:
    raw = copy.deepcopy(stack_raw("kflocal"))
    del raw["cluster"]["kind"]["networkPolicy"]
    rendered = render(parse_stack_config("kind-local", raw, set()), manifests_tree)
    assert not rendered.find("DaemonSet", netpolicy.NAME)
    dev = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    assert "networkPolicy" not in str(dev)


def test_an_agent_without_its_table_is_reported_with_the_kernel_reason(tmp_path: Path) -> None:
    from infra.clusters.netpolicy import enforcement_problem

    # No table (the agent's rule set was refused), and a kernel without the native queue expression.
    missing = _fake_docker(tmp_path, 'cat >/dev/null\necho "Error: No such file or directory" >&2\nexit 1\n')
    problem = enforcement_problem("node", docker=missing)
    assert "has no nftables table" in problem and "CONFIG_NFT_QUEUE" in problem
    queued = _fake_docker(tmp_path, 'echo "table inet kube-network-policies { chain postrouting { '
                                    'ip daddr @podips-v4 queue num 98 } }"\n')
    assert enforcement_problem("node", docker=queued) == ""
    idle = _fake_docker(tmp_path, 'echo "table inet kube-network-policies { chain postrouting { accept } }"\n')
    assert "queues no packet" in enforcement_problem("node", docker=idle)


def test_the_kernel_patch_applies_exactly_to_upstreams_module(tmp_path: Path) -> None:
    """The patch the module route applies to kube-network-policies fits v0.8.0's lines without fuzz."""
    import shutil
    import subprocess

    from infra.toolchain.model import load_toolchain

    tool = load_toolchain().get("kube-network-policies")
    assert tool.module is not None and tool.module.patches
    found = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=False).stdout.strip()
    module = Path(found) / f"sigs.k8s.io/kube-network-policies@{tool.version}"
    if shutil.which("go") is None or not module.is_dir():
        pytest.skip(f"NOT RUN: kube-network-policies {tool.version} is not in the Go module cache")
    for patch in tool.module.patches:
        result = subprocess.run(["patch", "-p1", "--dry-run", "--forward", "--batch", "--fuzz=0", "-d", str(module),
                                 "-i", str(REPO_ROOT / patch)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
