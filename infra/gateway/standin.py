"""The stand-in gateway as cluster objects: where Istio's Envoy cannot run, an nginx Deployment
takes the ingress gateway's place, with the configuration the local target runs.

It is honest about what it is: its own namespace, labelled as the project's, a Service the stack's
outputs name as the stand-in, and routes to the real Dex, oauth2-proxy and (in KServe's raw mode)
the real InferenceServices' predictor Services.
"""

from __future__ import annotations

import hashlib
from typing import Any

from infra.config import StackConfig
from infra.gateway.nginx import GatewayLayout, nginx_conf
from infra.manifests.objects import Obj
from infra.versions import load_versions

NAMESPACE = "kfstack-gateway"
NAME = "standin-gateway"
PORT = 80
CONTAINER_PORT = 8080
CONF_DIR = "/etc/kfstack-gateway"
USER_ID = 101  # the nginx user of nginx's own images; any numeric non-root user serves
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "kubeflow-stacks"}
# Upstream's Services (common/dex, common/oauth2-proxy) and KServe's raw-mode predictor Service.
DEX = "dex.auth.svc.cluster.local:5556"
OAUTH2_PROXY = "oauth2-proxy.oauth2-proxy.svc.cluster.local:80"
PREDICTOR = "$isvc-predictor.{namespace}.svc.cluster.local:80"
KUBE_API = "kubernetes.default.svc.cluster.local:443"
# Kubeflow Pipelines' API server (upstream's Service), REST and gRPC, and the gateway's gRPC port for runs.
KFP_API = "ml-pipeline.kubeflow.svc.cluster.local:8888"
KFP_GRPC = "ml-pipeline.kubeflow.svc.cluster.local:8887"
GRPC_PORT = 8887  # checks ServiceAccount tokens on model hosts
# nginx resolves names only through a `resolver`: take the pod's own DNS server at start.
START = ("while read key value rest; do if [ \"$key\" = nameserver ]; then "
         "echo \"resolver $value valid=10s;\"; break; fi; done < /etc/resolv.conf > /tmp/resolver.conf && "
         f"exec nginx -e stderr -c {CONF_DIR}/nginx.conf -g 'daemon off;'")


def cluster_layout(cfg: StackConfig, *, pipelines: bool = False) -> GatewayLayout:
    """Where the gateway's routes lead in a cluster (`pipelines`: Kubeflow Pipelines is deployed)."""
    return GatewayLayout(listen=str(CONTAINER_PORT), dex=DEX, oauth2_proxy=OAUTH2_PROXY,
                         dashboard="127.0.0.1:8081", deny="127.0.0.1:8082",
                         models={p.name: PREDICTOR.format(namespace=p.name) for p in cfg.profiles},
                         workdir="/tmp", error_log="stderr", access_log="/dev/stdout",
                         resolver_file="/tmp/resolver.conf", platform="standin-gateway",
                         token_api=KUBE_API, pipelines=KFP_API if pipelines else None,
                         pipelines_grpc=KFP_GRPC if pipelines else None,
                         grpc_listen=str(GRPC_PORT) if pipelines else None)


def standin_objects(cfg: StackConfig, *, pipelines: bool = False) -> list[Obj]:
    """Namespace, ConfigMap, Deployment and Service of the stand-in gateway (with Kubeflow
    Pipelines: its routes, and a gRPC port for the runs' pods)."""
    conf = nginx_conf(cfg, cluster_layout(cfg, pipelines=pipelines))
    grpc = [{"name": "grpc", "containerPort": GRPC_PORT}] if pipelines else []
    digest = hashlib.sha256(conf.encode()).hexdigest()[:16]  # a new config rolls the pod
    meta = lambda kind_name: {"name": kind_name, "namespace": NAMESPACE, "labels": dict(LABELS)}  # noqa: E731
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NAMESPACE, "labels": {**LABELS, "pod-security.kubernetes.io/enforce": "restricted"}}}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(NAME), "data": {"nginx.conf": conf}}
    container = {
        "name": "nginx", "image": load_versions().images["standin-gateway"],
        "command": ["/bin/sh", "-c", START],
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT}, *grpc],
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": USER_ID, "runAsGroup": USER_ID,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "config", "mountPath": CONF_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(NAME), "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
        "template": {
            "metadata": {"labels": dict(LABELS), "annotations": {"kubeflow-stacks/config-sha256": digest}},
            "spec": {"containers": [container],
                     "volumes": [{"name": "config", "configMap": {"name": NAME}},
                                 {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta(NAME), "spec": {
        "selector": {"app.kubernetes.io/name": NAME},
        "ports": [{"name": "http", "port": PORT, "targetPort": "http"},
                  *({"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc"} for _ in grpc)]}}
    return [namespace, configmap, deployment, service]


def ingress(cfg: StackConfig) -> dict[str, Any]:
    """The Service to port-forward to: the stand-in's, or Istio's ingress gateway."""
    if cfg.gateway.standin:
        return {"namespace": NAMESPACE, "service": NAME, "port": PORT,
                "kind": "standin: nginx in Istio's ingress gateway's place (Envoy cannot run on this stack)"}
    return {"namespace": "istio-system", "service": "istio-ingressgateway", "port": 80, "kind": "istio"}
