"""The AuthorizationPolicy the smoke suite gives its predictors (T0): who it admits, judged by a
small evaluator of Istio's ALLOW-rule semantics for the fields the policy uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smoke_tests.mesh import ACTIVATOR, CLUSTER_LOCAL_GATEWAY, INGRESS_GATEWAY, predictor_policy

NS = "kubeflow-user-example-com"
OWNER = "user@example.com"
POLICY = predictor_policy("kfstack-iris", NS, OWNER)
PREDICT = "/v1/models/kfstack-iris:predict"


def _value_matches(pattern: str, value: str) -> bool:
    """Istio's string match: exact, `prefix*`, `*suffix`, or `*` for presence."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any(patterns: list[str] | None, value: str | None) -> bool:
    return patterns is None or (value is not None and any(_value_matches(p, value) for p in patterns))


def admits(policy: dict[str, Any], *, principal: str, userid: str | None, path: str) -> bool:
    """Whether an ALLOW policy lets the request through: any rule whose from, to and when all match."""
    assert policy["spec"]["action"] == "ALLOW"
    for rule in policy["spec"]["rules"]:
        sources = [f["source"] for f in rule.get("from", [])]
        operations = [t["operation"] for t in rule.get("to", [])]
        if sources and not any(_any(s.get("principals"), principal) for s in sources):
            continue
        if operations and not any(_any(o.get("paths"), path) for o in operations):
            continue
        conditions = rule.get("when", [])
        assert all(c["key"] == "request.headers[kubeflow-userid]" for c in conditions), conditions
        if all(_any(c["values"], userid) for c in conditions):
            return True
    return False


def test_policy_selects_only_the_predictor_in_the_profile_namespace() -> None:
    assert POLICY["metadata"]["namespace"] == NS
    assert POLICY["spec"]["selector"] == {"matchLabels": {"serving.kserve.io/inferenceservice": "kfstack-iris"}}
    assert POLICY["apiVersion"] == "security.istio.io/v1"


@pytest.mark.parametrize("hop", [INGRESS_GATEWAY, CLUSTER_LOCAL_GATEWAY, ACTIVATOR])
@pytest.mark.parametrize("userid", [OWNER, f"system:serviceaccount:{NS}:default-editor",
                                    f"system:serviceaccount:{NS}:kfstack-smoke-s3"])
def test_owner_and_namespace_accounts_pass_through_gateways_and_activator(hop: str, userid: str) -> None:
    assert admits(POLICY, principal=hop, userid=userid, path=PREDICT)
    assert admits(POLICY, principal=hop, userid=userid, path="/v2/models/kfstack-iris/infer")


@pytest.mark.parametrize("userid", [
    "user2@example.com",  # another user
    "system:serviceaccount:kfstack-smoke-other-abc123:default-editor",  # the foreign-token check's identity
    f"system:serviceaccount:{NS}-evil:default-editor",  # a namespace whose name starts with the profile's
    f"system:serviceaccount:{NS}",  # not a ServiceAccount of it
    None,  # no identity at all
])
def test_other_identities_are_not_admitted(userid: str | None) -> None:
    """The foreign-token 403 check stays meaningful: only this namespace's identities get in."""
    for hop in (INGRESS_GATEWAY, CLUSTER_LOCAL_GATEWAY, ACTIVATOR):
        assert not admits(POLICY, principal=hop, userid=userid, path=PREDICT)


def test_only_the_gateways_and_activator_are_trusted_callers() -> None:
    """A pod elsewhere cannot claim the owner's identity by setting the header itself."""
    for principal in ("cluster.local/ns/kubeflow-user2-example-com/sa/default-editor",
                      "cluster.local/ns/istio-system/sa/some-other-gateway",
                      "cluster.local/ns/knative-serving/sa/controller"):
        assert not admits(POLICY, principal=principal, userid=OWNER, path=PREDICT)


def test_only_the_models_own_paths_are_admitted() -> None:
    for path in ("/v1/models/other-model:predict", "/metrics", "/v2/repository/index", "/"):
        assert not admits(POLICY, principal=INGRESS_GATEWAY, userid=OWNER, path=path)


@pytest.mark.render
def test_trusted_callers_are_service_accounts_the_release_deploys(manifests_tree: Path) -> None:
    """T1: each principal names a ServiceAccount in the upstream manifests, in the namespace the
    principal says (a misspelt account would make the policy admit nobody)."""
    sources = {INGRESS_GATEWAY: "common/istio/istio-install/base/install.yaml",
               CLUSTER_LOCAL_GATEWAY: "common/istio/cluster-local-gateway/base/cluster-local-gateway.yaml",
               ACTIVATOR: "common/knative/knative-serving/base/upstream/serving-core.yaml"}
    for principal, path in sources.items():
        _, namespace, _, account = principal.removeprefix("cluster.local/").split("/")
        accounts = {(d["metadata"].get("namespace"), d["metadata"]["name"])
                    for d in yaml.safe_load_all((manifests_tree / path).read_text(encoding="utf-8"))
                    if d and d.get("kind") == "ServiceAccount"}
        assert (namespace, account) in accounts or (None, account) in accounts, (principal, sorted(accounts))
