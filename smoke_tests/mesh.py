"""The Istio AuthorizationPolicy the suite adds for the InferenceServices it creates.

Kubeflow's mesh denies by default (`global-deny-all`), and a profile's own policy admits only the
owner's requests from the ingress gateway and same-namespace traffic. A predictor reached through
the ingress gateway, the cluster-local gateway or Knative's activator, with the owner's identity
or a ServiceAccount token of the namespace, matches none of those, so the suite admits exactly
that (as upstream's KServe CI does for its test service). The identity is the `kubeflow-userid`
header the gateways set from the verified token or session (never the caller's own header), so a
token of another namespace still gets 403 and the isolation check keeps its meaning.
"""

from __future__ import annotations

from typing import Any

INGRESS_GATEWAY = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
CLUSTER_LOCAL_GATEWAY = "cluster.local/ns/istio-system/sa/cluster-local-gateway-service-account"
ACTIVATOR = "cluster.local/ns/knative-serving/sa/activator"
USERID_HEADER = "kubeflow-userid"
ISVC_LABEL = "serving.kserve.io/inferenceservice"


def model_paths(isvc: str) -> list[str]:
    """The V1 and V2 paths of one model (and nothing else the predictor may serve)."""
    return [f"/v1/models/{isvc}", f"/v1/models/{isvc}:predict",
            f"/v2/models/{isvc}", f"/v2/models/{isvc}/ready", f"/v2/models/{isvc}/infer"]


def namespace_identities(namespace: str, owner: str) -> list[str]:
    """Who may call: the owner (as oauth2-proxy names them) and any ServiceAccount of the namespace
    (as the gateway names a Kubernetes token's subject); Istio matches a trailing `*` as a prefix."""
    return [owner, f"system:serviceaccount:{namespace}:*"]


def predictor_policy(isvc: str, namespace: str, owner: str) -> dict[str, Any]:
    """An ALLOW policy on the predictor's pods for the gateways and the activator, for the
    namespace's own identities and the model's paths only."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": f"{isvc}-predictor-callers", "namespace": namespace,
                     "labels": {"app.kubernetes.io/created-by": "kfstack-smoke"}},
        "spec": {
            "action": "ALLOW",
            "selector": {"matchLabels": {ISVC_LABEL: isvc}},
            "rules": [{
                "from": [{"source": {"principals": [INGRESS_GATEWAY, CLUSTER_LOCAL_GATEWAY, ACTIVATOR]}}],
                "to": [{"operation": {"paths": model_paths(isvc)}}],
                "when": [{"key": f"request.headers[{USERID_HEADER}]",
                          "values": namespace_identities(namespace, owner)}],
            }],
        },
    }
