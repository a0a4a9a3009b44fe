"""Kubeflow Pipelines behind the stand-in gateway: what Istio does for `ml-pipeline` upstream.

Upstream, the API server trusts the `kubeflow-userid` header because Istio lets it through only
from the ingress gateway (which sets it from the session) and from KFP's own ServiceAccounts, and
because Istio turns a Kubernetes ServiceAccount token into that header (the kind overlay's
RequestAuthentication). Without Istio:
- the stand-in gateway sets the header from oauth2-proxy's identity and strips any client copy;
  a bearer token goes on to the API server without the header, and KFP's own TokenReview
  authenticator identifies it: TOKEN_REVIEW_AUDIENCE is the cluster's API audience, so a plain
  ServiceAccount token (`kubectl create token`) works, as the kind overlay's issuer rule allows.
  KFP checks one audience only, so its own clients' projected tokens (the persistence agent's)
  ask for that audience too, in place of `pipelines.kubeflow.org`;
- the run's driver and launcher (profile namespaces) reach the API server's gRPC port, for the
  cache, through the gateway, which strips the header there too: the API server tells them to call
  `kfstack-ml-pipeline-runs`, a name for the gateway's gRPC port;
- NetworkPolicies let only the kubeflow namespace and the gateway reach `ml-pipeline` (and the
  profile namespaces its gRPC port, which a run's launcher calls directly: a header forged over
  gRPC from a profile namespace is not stopped here, as Istio's policy would), and only
  the kubeflow namespace reach the database (Istio's `mysql` policy) and the object store's IAM port.
  They hold only where the cluster enforces NetworkPolicy (on kind-local, the kube-network-policies
  agent: infra/patches/netpolicy.py).

On any stack: the API server will not start without the visualization server's address, which
Kubernetes puts in its environment from that Service; where a stack leaves the visualization
server out, the address is set to the name it would have, so only a visualization request fails.
Where a profile has a cpu or memory quota, the API server refuses a pod whose
containers do not state those requests; Argo's init and wait containers state none upstream, so
every run would be refused. Argo's executor then gets small requests and limits (its
`workflow-controller-configmap` `executor` entry), as an admin who sets quotas does.
"""

from __future__ import annotations

import yaml

from infra.config import KindClusterConfig, StackConfig
from infra.gateway import standin
from infra.manifests.objects import Obj, Rendered

NAMESPACE = "kubeflow"
API = "ml-pipeline"
API_HTTP_PORT = 8888
API_GRPC_PORT = 8887
RUNS_SERVICE = "kfstack-ml-pipeline-runs"
# The API audience of a cluster whose service-account issuer is not set by the stack (kubeadm's default).
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
LABELS = {"app.kubernetes.io/managed-by": "kubeflow-stacks", "app.kubernetes.io/part-of": "kubeflow-pipelines"}


def token_audience(cfg: StackConfig) -> str:
    """The audience of the cluster's ServiceAccount tokens: its issuer, on the clusters the stack makes."""
    cluster = cfg.cluster
    return cluster.kind.service_account_issuer if isinstance(cluster, KindClusterConfig) else DEFAULT_AUDIENCE


def _set_env(container: Obj, name: str, value: str) -> None:
    env = [e for e in container.setdefault("env", []) if e.get("name") != name]
    container["env"] = [*env, {"name": name, "value": value}]


def _namespace(name: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


STORE_APP = "seaweedfs"
PROFILE_LABEL = "app.kubernetes.io/part-of"  # = kubeflow-profile on every profile's namespace


def network_policies() -> list[Obj]:
    """Ingress to the API server from the kubeflow namespace and the gateway; to the database from
    the kubeflow namespace only; to the object store from the kubeflow namespace on every port."""
    meta = lambda name: {"name": name, "namespace": NAMESPACE, "labels": dict(LABELS)}  # noqa: E731
    api = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("kfstack-ml-pipeline"),
           "spec": {"podSelector": {"matchLabels": {"app": API}}, "policyTypes": ["Ingress"], "ingress": [
               {"from": [_namespace(NAMESPACE)]},
               {"from": [_namespace(standin.NAMESPACE)],
                "ports": [{"port": API_HTTP_PORT}, {"port": API_GRPC_PORT}]},
               # A run's launcher calls the gRPC port at ml-pipeline.kubeflow itself (the driver passes
               # it no address): profile namespaces reach that port, never the REST one.
               {"from": [{"namespaceSelector": {"matchLabels": {PROFILE_LABEL: "kubeflow-profile"}}}],
                "ports": [{"port": API_GRPC_PORT}]}]}}
    database = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("kfstack-mysql"),
                "spec": {"podSelector": {"matchLabels": {"app": "mysql"}}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": [_namespace(NAMESPACE)]}]}}
    # Upstream's `seaweedfs` policy admits kubeflow's pods to the S3 port only; the profile hook calls
    # the IAM port (8111) for each namespace's key, which upstream's default-allow-same-namespace
    # (common/networkpolicies, not deployed with the stand-in gateway) admits. This admits that much.
    store = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("kfstack-seaweedfs"),
             "spec": {"podSelector": {"matchLabels": {"app": STORE_APP}}, "policyTypes": ["Ingress"],
                      "ingress": [{"from": [_namespace(NAMESPACE)]}]}}
    return [api, database, store]


def runs_service() -> Obj:
    """The name the run's pods call for the API server's gRPC port: the gateway's, which strips the header."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": RUNS_SERVICE, "namespace": NAMESPACE,
                                                                "labels": dict(LABELS)},
            "spec": {"type": "ExternalName",
                     "externalName": f"{standin.NAME}.{standin.NAMESPACE}.svc.cluster.local",
                     "ports": [{"name": "grpc", "port": API_GRPC_PORT, "targetPort": API_GRPC_PORT}]}}


# Argo's init and wait containers copy files and wait on the main one: small, and stated.
EXECUTOR_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
ARGO_CONFIG = "workflow-controller-configmap"


def executor_resources(rendered: Rendered, cfg: StackConfig) -> None:
    """Requests and limits for Argo's executor containers where a profile's quota demands them."""
    if not any(p.quota and (p.quota.cpu or p.quota.memory) for p in cfg.profiles):
        return
    for config_map in rendered.find("ConfigMap", ARGO_CONFIG, NAMESPACE):
        data = config_map.setdefault("data", {})
        executor = yaml.safe_load(data.get("executor") or "{}") or {}
        executor["resources"] = EXECUTOR_RESOURCES
        data["executor"] = yaml.safe_dump(executor, sort_keys=True)
        rendered.adjustments.append("pipelines:executor-resources")


KFP_AUDIENCE = "pipelines.kubeflow.org"


def _projected_tokens(obj: Obj) -> list[Obj]:
    volumes = obj.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", [])
    return [source["serviceAccountToken"] for volume in volumes
            for source in (volume.get("projected") or {}).get("sources", []) if "serviceAccountToken" in source]


VISUALIZATION = "ml-pipeline-visualizationserver"
VISUALIZATION_ENV = {"ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST": VISUALIZATION,
                     "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT": "8888"}


def _api_server(rendered: Rendered) -> Obj | None:
    return next((c for d in rendered.find("Deployment", API, NAMESPACE)
                 for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "ml-pipeline-api-server"), None)


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    executor_resources(rendered, cfg)
    api_server = _api_server(rendered)
    if api_server is not None and not rendered.find("Service", VISUALIZATION, NAMESPACE):
        for name, value in VISUALIZATION_ENV.items():
            _set_env(api_server, name, value)
        rendered.adjustments.append("pipelines:no-visualization-server")
    deployments = rendered.find("Deployment", API, NAMESPACE)
    if not cfg.gateway.standin or not deployments:
        return  # Istio's policies guard the API server, or Pipelines is not deployed
    for container in deployments[0]["spec"]["template"]["spec"]["containers"]:
        if container["name"] == "ml-pipeline-api-server":
            _set_env(container, "TOKEN_REVIEW_AUDIENCE", token_audience(cfg))
            _set_env(container, "ML_PIPELINE_SERVICE_NAME", RUNS_SERVICE)
    for workload in rendered.find("Deployment", namespace=NAMESPACE):
        for token in _projected_tokens(workload):
            if token.get("audience") == KFP_AUDIENCE:
                token["audience"] = token_audience(cfg)
    rendered.objects.extend([runs_service(), *network_policies()])
    rendered.adjustments.append("pipelines:standin-gateway")
