"""A stack that leaves components out (kind-local: no Istio, no Pipelines) has those checks
reported NOT RUN naming the missing component, not failed by a port-forward to nothing."""

from __future__ import annotations

from smoke_tests.stack_outputs import StackOutputs
from smoke_tests.target import ARTIFACTS, GATEWAY, ISVC, KFP, PORTFORWARD, deployed_unavailable

FULL = ("cert-manager", "istio", "dex", "oauth2-proxy", "profiles", "kserve", "pipelines")


def test_a_full_stack_lacks_nothing() -> None:
    assert deployed_unavailable("dev", FULL, "istio") == {}


def test_without_istio_or_a_standin_there_is_nothing_to_forward_to() -> None:
    missing = deployed_unavailable("kind-local", ("cert-manager", "profiles", "istio-crds"), "istio")
    assert set(missing) == {PORTFORWARD, GATEWAY, ISVC, KFP, ARTIFACTS}
    assert "does not deploy istio" in missing[PORTFORWARD]
    assert "dex, oauth2-proxy, istio" in missing[GATEWAY]
    assert "kserve" in missing[ISVC] and "pipelines" in missing[KFP]


def test_the_standin_gateway_takes_istios_place() -> None:
    comps = ("cert-manager", "dex", "oauth2-proxy", "profiles", "kserve")
    missing = deployed_unavailable("kind-local", comps, "standin: nginx")
    assert set(missing) == {KFP, ARTIFACTS}
    without_dex = deployed_unavailable("kind-local", ("oauth2-proxy", "kserve"), "standin: nginx")
    assert PORTFORWARD not in without_dex and "does not deploy dex" in without_dex[GATEWAY]


def test_outputs_carry_the_gateway_kind() -> None:
    base = {"contractVersion": 1, "kubeconfig": "k", "users": []}
    standin = StackOutputs.parse({**base, "ingress": {"namespace": "kfstack-gateway", "service": "standin-gateway",
                                                      "port": 80, "kind": "standin: nginx"}})
    assert (standin.ingress_namespace, standin.ingress_kind) == ("kfstack-gateway", "standin: nginx")
    older = StackOutputs.parse({**base, "ingress": {"namespace": "istio-system", "service": "g", "port": 80}})
    assert older.ingress_kind == "istio"  # outputs of stacks made before the kind was exported
