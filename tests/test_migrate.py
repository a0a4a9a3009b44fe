"""The state edit of `kfstack migrate` (infra/migrate.py) on a hand-made state: which resources
leave it, and that nothing left behind names them. The move with the real engine, on a real API
server: tests/test_object_set_sim.py."""

from __future__ import annotations

from typing import Any

from infra.apply import DEPLOYMENT_TYPE
from infra.migrate import legacy_rbac, legacy_refs, without

STACK = "urn:pulumi:dev::kubeflow-stacks::pulumi:pulumi:Stack::kubeflow-stacks-dev"
PARENT = f"urn:pulumi:dev::kubeflow-stacks::{DEPLOYMENT_TYPE}::kubeflow"


def resource(type_: str, name: str, parent: str = PARENT, **fields: Any) -> dict[str, Any]:
    urn = f"urn:pulumi:dev::kubeflow-stacks::{DEPLOYMENT_TYPE}${type_}::{name}"
    namespace, _, short = name.rpartition("/")
    meta = {"name": short, **({"namespace": namespace} if namespace else {})}
    return {"urn": urn, "type": type_, "parent": parent, "outputs": {"metadata": meta}, **fields}


ROLE = resource("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "reader")
BINDING = resource("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "kubeflow/read",
                   dependencies=[ROLE["urn"]])
# A user's own role, applied by another program under the stack, is not the release's.
OWN_ROLE = resource("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "mine", parent=STACK)
WORKLOAD = resource("kubernetes:apps/v1:Deployment", "kubeflow/ml-pipeline",
                    dependencies=[BINDING["urn"], OWN_ROLE["urn"]],
                    propertyDependencies={"spec": [BINDING["urn"]], "metadata": [OWN_ROLE["urn"]]},
                    deletedWith=ROLE["urn"])


def test_the_release_rbac_objects_leave_the_state_and_nothing_names_them() -> None:
    deployment: dict[str, Any] = {"manifest": {}, "resources": [ROLE, BINDING, OWN_ROLE, WORKLOAD],
                  "pending_operations": [{"resource": BINDING, "type": "creating"},
                                         {"resource": WORKLOAD, "type": "updating"}]}
    old = legacy_rbac(deployment["resources"])
    assert old == [ROLE, BINDING]
    assert [str(r) for r in legacy_refs(old)] == ["ClusterRole reader", "RoleBinding kubeflow/read"]
    assert legacy_refs(old)[0].api_version == "rbac.authorization.k8s.io/v1"
    edited = without(deployment, {ROLE["urn"], BINDING["urn"]})
    assert [r["urn"] for r in edited["resources"]] == [OWN_ROLE["urn"], WORKLOAD["urn"]]
    workload = edited["resources"][1]
    assert workload["dependencies"] == [OWN_ROLE["urn"]]
    assert workload["propertyDependencies"] == {"spec": [], "metadata": [OWN_ROLE["urn"]]}
    assert "deletedWith" not in workload
    assert [op["resource"]["urn"] for op in edited["pending_operations"]] == [WORKLOAD["urn"]]
    # The export it came from is left as it was (the edit is a copy).
    assert deployment["resources"][3]["dependencies"] == [BINDING["urn"], OWN_ROLE["urn"]]
    assert without(deployment, set()) == deployment
