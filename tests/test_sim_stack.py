"""T2: the real Pulumi engine and Kubernetes provider against a real API server (KWOK-simulated
nodes): an interrupted `pulumi up` that converges, a no-op update, a config change with exactly
the expected diff, and a destroy that leaves nothing behind.

One stack is brought up for the module; the tests run in order against it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.dynamic.exceptions import NotFoundError
from pulumi import automation as auto

from infra.auth.passwords import verify
from infra.automation import TempStack, temp_stack
from infra.config import parse_stack_config
from infra.manifests.objects import Rendered, object_key
from infra.manifests.render import render
from smoke_tests.contract import check
from smoke_tests.process import descendants
from smoke_tests.run import run
from smoke_tests.wait import wait_until
from tests.helpers import ALICE, BOB, CLIENT_SECRET

pytestmark = [pytest.mark.sim, pytest.mark.slow]

UP_TIMEOUT_S = 1800
CAROL = {"email": "carol@example.org", "username": "carol", "password": "carol-Secret-333"}


def stack_raw(cluster_name: str, users: list[dict[str, str]], katib_size: str) -> dict[str, Any]:
    """Non-secret config of the T2 stack: sim cluster, static storage with one override, profiles."""
    return {
        "cluster": {"provider": "sim", "name": cluster_name, "sim": {"nodes": 2}},
        "kubeflow": {"release": "v1.11.0", "components": "full"},
        "storage": {"mode": "static", "defaultClass": "kf-static",
                    "claims": {"katib-mysql": {"size": katib_size}}},
        "auth": {"users": [{"email": u["email"], "username": u["username"]} for u in users]},
        "profiles": [{"owner": ALICE["email"], "quota": {"cpu": "4", "memory": "8Gi", "pvcs": 3}},
                     *[{"owner": u["email"]} for u in users[1:]]],
    }


def secret_paths(users: list[dict[str, str]]) -> dict[str, str]:
    paths = {f"auth.users[{i}].password": u["password"] for i, u in enumerate(users)}
    paths["auth.oidcClient.secret"] = CLIENT_SECRET
    return paths


def expected_render(raw: dict[str, Any], users: list[dict[str, str]], manifests: Path, stack: str) -> Rendered:
    """What the stack should hold: the same render, from the same config with its secrets."""
    full = yaml.safe_load(yaml.safe_dump(raw))
    for i, u in enumerate(users):
        full["auth"]["users"][i]["password"] = u["password"]
    full["auth"]["oidcClient"] = {"secret": CLIENT_SECRET}
    return render(parse_stack_config(stack, full, {"auth"}), manifests)


class Sim:
    """The module's stack, its cluster name and its kube clients once up."""

    def __init__(self, ts: TempStack, cluster_name: str, manifests: Path) -> None:
        self.ts = ts
        self.cluster_name = cluster_name
        self.manifests = manifests
        self.users = [ALICE, BOB]
        self.raw = stack_raw(cluster_name, self.users, "5Gi")
        self.api: client.ApiClient | None = None

    def configure(self) -> None:
        self.ts.set_config(self.raw, secret_paths(self.users))

    def outputs(self) -> dict[str, auto.OutputValue]:
        return dict(self.ts.stack.outputs())

    def connect(self) -> client.ApiClient:
        kubeconfig = yaml.safe_load(self.outputs()["kubeconfig"].value)
        self.api = kube_config.new_client_from_config_dict(kubeconfig)
        return self.api

    def rendered(self) -> Rendered:
        return expected_render(self.raw, self.users, self.manifests, self.ts.name)


def _log(path: Path) -> Callable[[str], None]:
    handle = path.open("a")

    def write(line: str) -> None:
        handle.write(line + "\n")
        handle.flush()
    return write


@pytest.fixture(scope="module")
def sim(manifests_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    base = tmp_path_factory.mktemp("t2")
    ts = temp_stack(base, prefix="t2", env={"KFSTACK_MANIFESTS": str(manifests_tree)})
    s = Sim(ts, f"kfs-{ts.name.split('-')[1]}", manifests_tree)
    s.configure()
    yield s
    # Finalizer: whatever happened, leave no cluster and no stack behind.
    with contextlib.suppress(Exception):
        run(["pulumi", "cancel", "--yes", "-s", ts.name], cwd=ts.work_dir, env=ts.env, timeout=120)
    with contextlib.suppress(auto.CommandError):
        ts.stack.destroy(on_output=_log(base / "destroy.log"))
    from infra.clusters.sim import SimClusterProvider

    props = {"name": s.cluster_name}
    if SimClusterProvider().cluster_exists(props):
        SimClusterProvider().delete_cluster(props)
    ts.stack.workspace.remove_stack(ts.name, force=True)


def test_interrupted_up_converges(sim: Sim):
    """Kill `pulumi up` part-way (as a crash would), clear pending creates, run it again."""
    log_path = sim.ts.work_dir / "up-killed.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(["pulumi", "up", "--yes", "--skip-preview", "-s", sim.ts.name],
                                cwd=sim.ts.work_dir, env={**os.environ, **sim.ts.env},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # Wait until objects are being created in the cluster, then kill the whole process group.
        def creating() -> tuple[bool, int]:
            if proc.poll() is not None:
                raise AssertionError(f"up ended before it could be interrupted:\n{log_path.read_text()[-3000:]}")
            return log_path.read_text().count(" created (") >= 60, log_path.read_text().count(" created (")

        wait_until(creating, timeout=UP_TIMEOUT_S, interval=1, what="pulumi up to create 60 objects")
        tree = descendants(proc.pid)  # plugins run in their own process groups: kill them too
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
    # What Pulumi documents after a crash: release the dead process's lock, drop pending creates.
    run(["pulumi", "cancel", "--yes", "-s", sim.ts.name], cwd=sim.ts.work_dir, env=sim.ts.env, timeout=120)
    run(["pulumi", "refresh", "--yes", "--clear-pending-creates", "-s", sim.ts.name],
        cwd=sim.ts.work_dir, env=sim.ts.env, timeout=UP_TIMEOUT_S)
    result = sim.ts.stack.up(on_output=_log(sim.ts.work_dir / "up.log"))
    assert result.summary.result == "succeeded"


def test_every_rendered_object_exists(sim: Sim):
    api = sim.connect()
    dyn = _dynamic(api)
    missing = []
    for obj in sim.rendered().objects:
        try:
            _get_live(dyn, obj)
        except Exception as exc:  # report every missing object, not the first
            missing.append(f"{object_key(obj)}: {exc.__class__.__name__}")
    assert missing == []


def _get_live(dyn: Any, obj: dict[str, Any]) -> Any:
    """The cluster's copy of a rendered object (raises if it is not there)."""
    meta = obj["metadata"]
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    namespace = meta.get("namespace", "default") if resource.namespaced else None
    return resource.get(name=meta["name"], namespace=namespace)


def _dynamic(api: client.ApiClient) -> Any:
    from kubernetes.dynamic import DynamicClient

    return DynamicClient(api)


def test_crds_established_and_deployments_available(sim: Sim):
    api = sim.api or sim.connect()
    crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    not_established = [c.metadata.name for c in crds
                       if not any(cond.type == "Established" and cond.status == "True"
                                  for cond in (c.status.conditions or []))]
    assert len(crds) == len(sim.rendered().find("CustomResourceDefinition"))
    assert not_established == []
    deployments = client.AppsV1Api(api).list_deployment_for_all_namespaces().items
    unavailable = [f"{d.metadata.namespace}/{d.metadata.name}" for d in deployments
                   if (d.status.available_replicas or 0) < (d.spec.replicas or 0)]
    assert len(deployments) == len(sim.rendered().find("Deployment"))
    assert unavailable == []


def test_claims_bound_with_class_and_size(sim: Sim):
    core = client.CoreV1Api(sim.api or sim.connect())
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim("kubeflow").items}
    assert set(claims) == {"katib-mysql", "mysql-pv-claim", "seaweedfs-pvc"}
    for name, claim in claims.items():
        assert claim.status.phase == "Bound", name
        assert claim.spec.storage_class_name == "kf-static"
    assert claims["katib-mysql"].spec.resources.requests["storage"] == "5Gi"
    assert claims["mysql-pv-claim"].spec.resources.requests["storage"] == "20Gi"


def test_dex_holds_users_and_hashes(sim: Sim):
    core = client.CoreV1Api(sim.api or sim.connect())
    config = yaml.safe_load(core.read_namespaced_config_map("dex", "auth").data["config.yaml"])
    by_email = {u["email"]: u for u in config["staticPasswords"]}
    assert set(by_email) == {ALICE["email"], BOB["email"]}
    hashes = {k: base64.b64decode(v).decode()
              for k, v in core.read_namespaced_secret("dex-passwords", "auth").data.items()}
    for user in (ALICE, BOB):
        assert verify(user["password"], hashes[by_email[user["email"]]["hashFromEnv"]])
    client_secret = core.read_namespaced_secret("dex-oidc-client", "auth").data
    assert base64.b64decode(client_secret["OIDC_CLIENT_SECRET"]).decode() == CLIENT_SECRET


def test_profiles_exist_with_quotas(sim: Sim):
    custom = client.CustomObjectsApi(sim.api or sim.connect())
    profiles = {p["metadata"]["name"]: p for p in
                custom.list_cluster_custom_object("kubeflow.org", "v1", "profiles")["items"]}
    assert set(profiles) == {"kubeflow-alice-example-org", "kubeflow-bob-example-org"}
    assert profiles["kubeflow-alice-example-org"]["spec"]["resourceQuotaSpec"]["hard"] == {
        "cpu": "4", "memory": "8Gi", "persistentvolumeclaims": "3"}


def test_outputs_are_correct_and_secret_where_they_should_be(sim: Sim):
    out = sim.outputs()
    assert out["kubeconfig"].secret
    assert not out["users"].secret
    assert out["users"].value == [{"email": ALICE["email"], "profile": "kubeflow-alice-example-org"},
                                  {"email": BOB["email"], "profile": "kubeflow-bob-example-org"}]
    assert out["kubeflowVersion"].value == "v1.11.0"
    assert out["ingress"].value == {"namespace": "istio-system", "service": "istio-ingressgateway", "port": 80,
                                   "kind": "istio"}
    assert "sim:no-admission-webhooks(27)" in out["adjustments"].value
    # What the smoke suite reads: the real outputs satisfy its contract (ContractError names a field that does not).
    check({key: output.value for key, output in out.items()}, "the sim stack's outputs")
    # The file the backend keeps (Automation API's export would decrypt secrets for us).
    state = sim.ts.state_file_text()
    for user in (ALICE, BOB):
        assert user["password"] not in state
    assert CLIENT_SECRET not in state
    # The kubeconfig is an input and output of the cluster and of the CRD resource: encrypted in both.
    assert json.dumps(out["kubeconfig"].value)[1:-1] not in state
    assert '"ciphertext"' in state


def test_second_up_changes_nothing(sim: Sim):
    preview = sim.ts.stack.preview(expect_no_changes=True, on_output=_log(sim.ts.work_dir / "noop.log"))
    assert set(preview.change_summary) == {auto.OpType.SAME}, preview.change_summary


def test_config_change_has_exactly_the_expected_diff(sim: Sim):
    sim.users = [ALICE, BOB, CAROL]
    sim.raw = stack_raw(sim.cluster_name, sim.users, "6Gi")
    sim.configure()
    ops: dict[str, str] = {}

    def on_event(event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is not None and pre.metadata.op != auto.OpType.SAME:
            ops[pre.metadata.urn.split("::")[-1] + " " + pre.metadata.type] = pre.metadata.op

    sim.ts.stack.preview(on_event=on_event)
    assert ops == {
        # Pulumi hands the stack's config to the default provider of Python dynamic resources, so
        # a config change updates it (the cluster and the CRDs themselves do not change).
        "default pulumi:providers:pulumi-python": auto.OpType.UPDATE,
        "auth/dex kubernetes:core/v1:ConfigMap": auto.OpType.UPDATE,
        "auth/dex-passwords kubernetes:core/v1:Secret": auto.OpType.UPDATE,
        "auth/dex kubernetes:apps/v1:Deployment": auto.OpType.UPDATE,
        "kubeflow-carol-example-org kubernetes:kubeflow.org/v1:Profile": auto.OpType.CREATE,
        "kubeflow/katib-mysql kubernetes:core/v1:PersistentVolumeClaim": auto.OpType.UPDATE,
        "kubeflow-katib-mysql kubernetes:core/v1:PersistentVolume": auto.OpType.UPDATE,
    }
    result = sim.ts.stack.up(on_output=_log(sim.ts.work_dir / "change.log"))
    assert result.summary.result == "succeeded"
    core = client.CoreV1Api(sim.api or sim.connect())
    claim = core.read_namespaced_persistent_volume_claim("katib-mysql", "kubeflow")
    assert claim.spec.resources.requests["storage"] == "6Gi"
    config = yaml.safe_load(core.read_namespaced_config_map("dex", "auth").data["config.yaml"])
    assert CAROL["email"] in {u["email"] for u in config["staticPasswords"]}


def test_excluding_components_deletes_their_objects(sim: Sim):
    """Objects a stack no longer renders are deleted from the cluster, CRDs and custom resources
    included (destroy skips this on a cluster it deletes anyway; see Cluster.deleted_with)."""
    before = sim.rendered()
    sim.raw = {**sim.raw, "kubeflow": {**sim.raw["kubeflow"], "exclude": ["trainer", "spark-operator"]}}
    sim.configure()
    after = {object_key(o) for o in sim.rendered().objects}
    gone = [o for o in before.objects if object_key(o) not in after]
    assert {o["kind"] for o in gone} >= {"CustomResourceDefinition", "ClusterTrainingRuntime", "Deployment"}
    result = sim.ts.stack.up(on_output=_log(sim.ts.work_dir / "exclude.log"))
    assert result.summary.result == "succeeded"
    dynamic = _dynamic(sim.api or sim.connect())
    kinds_gone = {c["spec"]["names"]["kind"] for c in gone if c["kind"] == "CustomResourceDefinition"}
    still_there = []
    for obj in gone:
        if obj["kind"] in kinds_gone:
            continue  # its kind went with its CRD: nothing of it can exist
        try:
            _get_live(dynamic, obj)
            still_there.append(object_key(obj))
        except NotFoundError:
            pass
    assert still_there == []


def test_destroy_leaves_nothing(sim: Sim):
    namespaces = {o["metadata"]["name"] for o in sim.rendered().find("Namespace")}
    core = client.CoreV1Api(sim.api or sim.connect())
    assert namespaces <= {n.metadata.name for n in core.list_namespace().items}
    result = sim.ts.stack.destroy(on_output=_log(sim.ts.work_dir / "destroy.log"))
    assert result.summary.result == "succeeded"
    assert (sim.ts.stack.export_stack().deployment or {}).get("resources") in (None, [])
    from infra.clusters.sim import sim_workdir
    from infra.toolchain import tool_path

    clusters = run([tool_path("kwokctl"), "get", "clusters"], timeout=60,
                   env={"KWOK_WORKDIR": str(sim_workdir(sim.cluster_name))}).stdout.split()
    assert sim.cluster_name not in clusters


def test_invalid_config_fails_in_preview_and_creates_nothing(tmp_path: Path, manifests_tree: Path):
    ts = temp_stack(tmp_path, prefix="t2bad", env={"KFSTACK_MANIFESTS": str(manifests_tree)})
    try:
        ts.set_config({"cluster": {"provider": "sim", "name": "never-created"},
                       "storage": {"mode": "nfs-subdir"}})
        with pytest.raises(auto.CommandError) as info:
            ts.stack.preview()
        text = str(info.value)
        assert "kubeflow-stacks:storage.nfs.server = None: is required" in text
        assert "kubeflow-stacks:auth.users = None: list at least one user" in text
        assert (ts.stack.export_stack().deployment or {}).get("resources") in (None, [])
    finally:
        ts.stack.workspace.remove_stack(ts.name, force=True)
