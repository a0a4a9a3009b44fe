"""T2: teardown verification on a cluster the stack does not own, against a real API server.

Objects of each kind the verification looks for are left behind on purpose; it must name exactly
those (not the ones that are gone), and nothing once they are deleted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config

from infra.conformance.objects import ObjectRef
from infra.conformance.teardown import TeardownPlan, verify_teardown

pytestmark = [pytest.mark.sim]

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "leftovers.kfstack.example.org"},
    "spec": {"group": "kfstack.example.org", "scope": "Namespaced",
             "names": {"plural": "leftovers", "singular": "leftover", "kind": "Leftover"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def test_verification_names_exactly_what_was_left_behind(sim_kubeconfig: Path):
    kubeconfig = sim_kubeconfig.read_text()
    api = kube_config.new_client_from_config_dict(yaml.safe_load(kubeconfig))
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    ext, adm = client.ApiextensionsV1Api(api), client.AdmissionregistrationV1Api(api)
    # Left behind on purpose: one of each kind the verification looks for.
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="kf-left")))
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="kf-left")))
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name="kf-left")))
    ext.create_custom_resource_definition(CRD)
    adm.create_validating_webhook_configuration(
        client.V1ValidatingWebhookConfiguration(metadata=client.V1ObjectMeta(name="kf-left")))
    left_behind = [ObjectRef("v1", "Namespace", "kf-left"), ObjectRef("v1", "ConfigMap", "kf-left", "default"),
                   ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", "kf-left"),
                   ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", CRD["metadata"]["name"]),
                   ObjectRef("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "kf-left")]
    # Deleted properly: of kinds that exist, and of a kind whose CRD is gone too.
    gone = [ObjectRef("v1", "Namespace", "kf-gone"),
            ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", "kf-gone"),
            ObjectRef("gone.example.org/v1", "Gone", "kf-gone", "kf-left")]
    plan = TeardownPlan("existing", "users-cluster", kubeconfig, [*left_behind, *gone])

    left = verify_teardown(plan, timeout=6)
    assert sorted(left) == sorted(["Namespace kf-left (Active)", "ConfigMap default/kf-left", "ClusterRole kf-left",
                                   f"CustomResourceDefinition {CRD['metadata']['name']}",
                                   "ValidatingWebhookConfiguration kf-left"])

    core.delete_namespace("kf-left")
    core.delete_namespaced_config_map("kf-left", "default")
    rbac.delete_cluster_role("kf-left")
    ext.delete_custom_resource_definition(CRD["metadata"]["name"])
    adm.delete_validating_webhook_configuration("kf-left")
    # Namespace and CRD deletion finish asynchronously; the verification waits for them.
    assert verify_teardown(plan, timeout=120) == []


def test_a_cluster_the_stack_owned_must_be_gone(sim_kubeconfig: Path):
    """The sim fixture's cluster exists: a plan naming it as the stack's own reports it left."""
    name = yaml.safe_load(sim_kubeconfig.read_text())["current-context"].removeprefix("kwok-")
    assert verify_teardown(TeardownPlan("sim", name, None)) == [f"sim cluster {name}"]
    assert verify_teardown(TeardownPlan("sim", "kfs-never-made", None)) == []
