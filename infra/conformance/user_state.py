"""The user state an upgrade must keep: a second profile, a ConfigMap, a Secret and a claim in its
namespace, and a custom resource whose CRD both releases ship (a PodDefault), as users create them.

Each is created before the upgrade and read back after it by uid: the same uid is the same object,
not one deleted and created again.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

PROBE = "kfstack-upgrade-probe"
PROBE_OWNER = "upgrade-probe@example.com"
PROBE_DATA = {"written-by": "kfstack conformance --upgrade-from", "value": "kept across the upgrade"}
# A custom resource whose CRD both releases ship (and change): a PodDefault, as users create them.
PROBE_CR = {"group": "kubeflow.org", "version": "v1alpha1", "plural": "poddefaults", "kind": "PodDefault",
            "crd": "poddefaults.kubeflow.org"}
PROFILE_NAMESPACE_TIMEOUT_S = 300.0


def _create(create: Callable[[], Any]) -> None:
    """Create an object; one that is already there (a re-run on a kept stack) is kept as it is."""
    from kubernetes.client import ApiException

    try:
        create()
    except ApiException as exc:
        if exc.status != 409:
            raise


def create_user_state(api: Any, provider: str) -> dict[str, str]:
    """A second profile, objects in its namespace and a custom resource; returns their uids."""
    from kubernetes import client

    from smoke_tests.wait import wait_until

    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    _create(lambda: custom.create_cluster_custom_object("kubeflow.org", "v1", "profiles", {
        "apiVersion": "kubeflow.org/v1", "kind": "Profile", "metadata": {"name": PROBE},
        "spec": {"owner": {"kind": "User", "name": PROBE_OWNER}}}))
    if provider == "sim":
        # No controller runs on a simulated cluster: make the namespace the profile controller would.
        _create(lambda: core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=PROBE, labels={"app.kubernetes.io/part-of": "kubeflow-profile"},
            annotations={"owner": PROBE_OWNER}))))
    wait_until(lambda: (PROBE in {n.metadata.name for n in core.list_namespace().items}, PROBE),
               timeout=PROFILE_NAMESPACE_TIMEOUT_S, interval=3, what=f"profile namespace {PROBE}")
    _create(lambda: core.create_namespaced_config_map(PROBE, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=PROBE), data=dict(PROBE_DATA))))
    _create(lambda: core.create_namespaced_secret(PROBE, client.V1Secret(
        metadata=client.V1ObjectMeta(name=PROBE), data={"token": base64.b64encode(b"user-secret").decode()})))
    _create(lambda: core.create_namespaced_persistent_volume_claim(PROBE, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name=PROBE), spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], resources=client.V1VolumeResourceRequirements(
                requests={"storage": "1Gi"})))))
    _create(lambda: custom.create_namespaced_custom_object(
        PROBE_CR["group"], PROBE_CR["version"], PROBE, PROBE_CR["plural"], {
            "apiVersion": f"{PROBE_CR['group']}/{PROBE_CR['version']}", "kind": PROBE_CR["kind"],
            "metadata": {"name": PROBE},
            "spec": {"desc": "kept across the upgrade", "selector": {"matchLabels": {PROBE: "true"}},
                     "env": [{"name": "PROBE", "value": "1"}]}}))
    return read_user_state(api)


def read_user_state(api: Any) -> dict[str, str]:
    """The same objects' uids now (a missing one raises), and the ConfigMap's data checked."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    cm = core.read_namespaced_config_map(PROBE, PROBE)
    if cm.data != PROBE_DATA:
        raise AssertionError(f"ConfigMap {PROBE}/{PROBE} changed: {cm.data}")
    return {"profile": custom.get_cluster_custom_object("kubeflow.org", "v1", "profiles", PROBE)["metadata"]["uid"],
            "configmap": cm.metadata.uid, "secret": core.read_namespaced_secret(PROBE, PROBE).metadata.uid,
            "pvc": core.read_namespaced_persistent_volume_claim(PROBE, PROBE).metadata.uid,
            "custom-resource": custom.get_namespaced_custom_object(
                PROBE_CR["group"], PROBE_CR["version"], PROBE, PROBE_CR["plural"], PROBE)["metadata"]["uid"]}
