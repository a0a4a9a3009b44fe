"""A NetworkPolicy enforcer for local clusters whose node network enforces none.

The kind node image built here wires pods with a static ptp CNI (kindnetd cannot be built here),
and minikube's bridge CNI is no better: both ignore NetworkPolicy, so the policies the stack relies
on (infra/patches/pipelines.py: only the kubeflow namespace and the gateway may call ml-pipeline
with an identity header) would be inert. With `cluster.kind.networkPolicy` (or
`cluster.minikube.networkPolicy`) set to kube-network-policies the stack runs that agent (the
policy code kindnetd itself embeds) as a DaemonSet: on the node's network (hostNetwork), privileged with
NET_ADMIN for its nftables table and nfqueue socket, and the host's NRI socket and network
namespaces, from which it learns a new pod's address before the API server publishes it.

Only the first packet of a connection to or from a pod that some policy selects goes to user
space; everything else is untouched, so the agent costs little. It needs the node's kernel to
have the nftables `queue` expression (CONFIG_NFT_QUEUE); infra/clusters/netpolicy.py detects it.
"""

from __future__ import annotations

from infra.config import LocalClusterConfig, StackConfig
from infra.manifests.objects import Obj, Rendered

NAME = "kube-network-policies"
NAMESPACE = "kube-system"
BINARY = "/bin/netpol"  # where upstream's image has it (its image sets CMD, not ENTRYPOINT)
QUEUE_ID = 98
LABELS = {"app": NAME, "app.kubernetes.io/managed-by": "kubeflow-stacks"}
# Upstream asks for 100m; a one-node kind cluster with Pipelines has about 0.2 CPU unrequested, and
# the agent idles (it sees only new connections of policy-selected pods).
RESOURCES = {"requests": {"cpu": "10m", "memory": "50Mi"}, "limits": {"memory": "256Mi"}}
RULES: list[Obj] = [
    {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list", "watch"]},
]


def wanted(cfg: StackConfig) -> bool:
    return isinstance(cfg.cluster, LocalClusterConfig) and cfg.cluster.network_policy == NAME


def enforcer_objects(image: str) -> list[Obj]:
    """The agent's ServiceAccount, its read-only rights and its DaemonSet."""
    meta = {"name": NAME, "labels": dict(LABELS)}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {**meta, "namespace": NAMESPACE}}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": RULES}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
               "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]}
    container = {
        "name": NAME, "image": image, "command": [BINARY],
        "args": ["--hostname-override=$(MY_NODE_NAME)", "--v=2", f"--nfqueue-id={QUEUE_ID}"],
        "env": [{"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "resources": RESOURCES,
        "securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}},
        "volumeMounts": [{"name": "nri-plugin", "mountPath": "/var/run/nri"},
                         {"name": "netns", "mountPath": "/var/run/netns", "mountPropagation": "HostToContainer"}]}
    daemonset = {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {**meta, "namespace": NAMESPACE},
        "spec": {"selector": {"matchLabels": {"app": NAME}}, "template": {
            "metadata": {"labels": dict(LABELS)},
            "spec": {"hostNetwork": True, "dnsPolicy": "ClusterFirst", "serviceAccountName": NAME,
                     "nodeSelector": {"kubernetes.io/os": "linux"},
                     "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                     "containers": [container],
                     "volumes": [{"name": "nri-plugin", "hostPath": {"path": "/var/run/nri"}},
                                 {"name": "netns", "hostPath": {"path": "/var/run/netns"}}]}}}}
    return [account, role, binding, daemonset]


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    if not wanted(cfg):
        return
    from infra.versions import load_versions

    rendered.objects.extend(enforcer_objects(load_versions().images[NAME]))
    rendered.adjustments.append(f"netpolicy:{NAME}")
