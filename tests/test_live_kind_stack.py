"""T3 here: `pulumi up` of the kind-local stack file through the project's whole program.

The stack's cluster comes from the node image built here; upstream cert-manager, the profile
controller and KFAM, Dex and oauth2-proxy (with its jwks proxy), and KServe in raw deployment mode
run as real pods from images built here. In order, on one stack: up, and every pod Ready;
cert-manager's CA injected and its webhook validating for real; the real controller reconciles the
configured Profile into its namespace, and the real API server enforces its quota; Dex logs in the
stack's users (a real OIDC code flow through a port-forward, the code exchanged for an ID token
naming the user) and refuses a wrong password, and oauth2-proxy turns that login into a session its
auth endpoint accepts; KServe's controller runs with the raw mode the stack set, and an
InferenceService (no mode annotation) becomes a raw-mode predictor from the sklearn server image
built here that serves a model a Job trained onto a local-path claim; the namespaces carry the Pod
Security levels upstream sets, and the real admission refuses a pod that breaks them; Kubeflow
Pipelines (its API server against the MariaDB stand-in, Argo, the driver and launcher, SeaweedFS
with the profile hook's per-namespace key, the persistence agent) runs a workflow and a pipeline to
the end, and a forged identity header from a user namespace is not an identity; the smoke suite's
checks pass, the pipeline checks on the real KFP; a second up changes nothing; destroy leaves no
cluster, container or route. NOT RUN (skipped with the reason) where no container runtime, node
image or component image can be had.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pulumi import automation as auto

from infra.automation import temp_stack
from infra.clusters.kind import node_containers
from infra.config import parse_stack_config
from infra.manifests.render import render
from infra.names import unique_name
from infra.paths import REPO_ROOT
from infra.runtime import docker, routes
from smoke_tests.run import run
from smoke_tests.wait import wait_until
from tests import live_stack
from tests.helpers import require_toolchain
from tests.live_fixtures import container_runtime  # noqa: F401 - a fixture
from tests.live_kfp import (
    BOTO_IMAGE,
    FORGED_CALL,
    LIST_WITH_NAMESPACE_KEY,
    compiled_spec,
    kfp_call,
    pod_report,
    secret_env,
    wait_for_run,
)
from tests.live_stack import LOCAL_DEPLOYMENTS, OWNER, PROFILE_NAMESPACE, RUNTIME_IMAGE, LiveStack

pytestmark = [pytest.mark.live, pytest.mark.slow]
STACK_FILE = REPO_ROOT / "stacks" / "Pulumi.kind-local.yaml"
# What the stack runs, by namespace: Deployment -> ready replicas (upstream's counts).
DEPLOYMENTS = {**LOCAL_DEPLOYMENTS, "istio-system": {"cluster-jwks-proxy": 1}}  # upstream's kind overlay


def _quiet(_line: str) -> None:
    return None


def stack_raw(cluster_name: str) -> dict[str, Any]:
    """The stack file's config, on a cluster name of this run's own."""
    return live_stack.stack_raw(STACK_FILE, cluster_name)


KindStack = LiveStack


@pytest.fixture(scope="module")
def kind_stack(container_runtime: docker.RuntimeState, manifests_tree: Path,  # noqa: F811 - the shared fixture
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindStack]:
    require_toolchain("kind", "pulumi", "kubectl", "kustomize")
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("NOT RUN: the node image's source route needs root and debootstrap")
    from infra.nodeimage.build import build_node_image

    build_node_image(say=_quiet)
    live_stack.component_images_or_skip()
    base = tmp_path_factory.mktemp("kindstack")
    ts = temp_stack(base, prefix="kl", env={"KFSTACK_MANIFESTS": str(manifests_tree)})
    name = unique_name("kfkl")
    stack = LiveStack(ts, name, stack_raw(name))
    live_stack.add_suite_image(stack.raw["cluster"]["kind"]["preloadImages"])
    ts.set_config(stack.raw)
    yield stack
    with contextlib.suppress(auto.CommandError):
        ts.stack.destroy(on_output=_quiet)
    from infra.clusters.kind import KindClusterProvider

    if KindClusterProvider().cluster_exists({"name": name}):
        KindClusterProvider().delete_cluster({"name": name})
    ts.stack.workspace.remove_stack(ts.name, force=True)


def test_up_runs_the_upstream_profile_controller(kind_stack: KindStack) -> None:
    result = kind_stack.ts.stack.up(on_output=_quiet, parallel=64)
    assert result.summary.result == "succeeded"
    apps = client.AppsV1Api(kind_stack.api())
    deployment = apps.read_namespaced_deployment("profiles-deployment", "kubeflow")
    assert deployment.status.available_replicas == 1
    images = {c.image for c in deployment.spec.template.spec.containers}
    assert images == {"ghcr.io/kubeflow/kubeflow/profile-controller:v1.10.0",
                      "ghcr.io/kubeflow/kubeflow/kfam:v1.10.0"}


def test_every_pod_the_stack_made_is_ready(kind_stack: KindStack) -> None:
    api = kind_stack.api()
    assert live_stack.ready_replicas(api, list(DEPLOYMENTS)) == DEPLOYMENTS
    live_stack.wait_every_pod_ready(api)


def test_cert_manager_runs_injects_its_ca_and_its_webhook_validates(kind_stack: KindStack) -> None:
    api = kind_stack.api()
    apps = client.AppsV1Api(api)
    available = {d.metadata.name: d.status.available_replicas
                 for d in apps.list_namespaced_deployment("cert-manager").items}
    assert available == {"cert-manager": 1, "cert-manager-cainjector": 1, "cert-manager-webhook": 1}
    hooks = client.AdmissionregistrationV1Api(api).read_validating_webhook_configuration("cert-manager-webhook")
    assert all(h.client_config.ca_bundle for h in hooks.webhooks)  # injected by the real cainjector
    custom = client.CustomObjectsApi(api)

    def issuer_ready() -> tuple[bool, Any]:
        issuer = custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers",
                                                  "kubeflow-self-signing-issuer")
        conditions = {c["type"]: c["status"] for c in issuer.get("status", {}).get("conditions", [])}
        return conditions.get("Ready") == "True", conditions

    wait_until(issuer_ready, timeout=120, interval=2, what="Kubeflow's self-signing ClusterIssuer to be Ready")
    too_short = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "too-short"},
                 "spec": {"secretName": "too-short", "duration": "1m", "dnsNames": ["a.example"],
                          "issuerRef": {"name": "kubeflow-self-signing-issuer", "kind": "ClusterIssuer"}}}
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object("cert-manager.io", "v1", "kubeflow", "certificates", too_short)
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 403
    assert message.startswith('admission webhook "webhook.cert-manager.io" denied the request: spec.duration'), message


def test_the_real_controller_reconciles_the_profile(kind_stack: KindStack) -> None:
    api = kind_stack.api()
    rbac = client.RbacAuthorizationV1Api(api)

    def reconciled() -> tuple[bool, Any]:
        try:
            binding = rbac.read_namespaced_role_binding("namespaceAdmin", PROFILE_NAMESPACE)
        except ApiException as exc:
            return False, exc.status
        return True, [s.name for s in binding.subjects or []]

    subjects = wait_until(reconciled, timeout=180, interval=2,
                          what=f"the profile controller to set up {PROFILE_NAMESPACE}")
    assert subjects == ["user@example.com"]


def test_the_profiles_quota_is_enforced_by_the_api_server(kind_stack: KindStack) -> None:
    """The stack's quota (cpu 4) reaches the namespace through the real controller; a pod asking for
    more is refused by the API server's quota admission."""
    core = client.CoreV1Api(kind_stack.api())

    def quota() -> tuple[bool, Any]:
        items = core.list_namespaced_resource_quota(PROFILE_NAMESPACE).items
        return bool(items), [q.spec.hard for q in items]

    [hard] = wait_until(quota, timeout=180, interval=2, what=f"the profile's ResourceQuota in {PROFILE_NAMESPACE}")
    assert hard == {"cpu": "4", "memory": "8Gi"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "over-quota"},
           "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                    "resources": {"requests": {"cpu": "5", "memory": "64Mi"},
                                                  "limits": {"cpu": "5", "memory": "64Mi"}}}]}}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(PROFILE_NAMESPACE, pod)
    assert refused.value.status == 403 and "exceeded quota" in str(refused.value.body), refused.value.body


def _dex_login(http: requests.Session, auth_url: str, email: str, password: str) -> str | None:
    """From Dex's authorization request (`auth_url`) through the local connector's password form and
    its POST, as a browser walks it; returns where Dex sends the browser back (the client's callback,
    path and query), or None when Dex answers the POST with the form again (refused).

    Dex (server/handlers.go) answers an accepted POST, and each step after it to the client, with 303
    See Other, and a refused one with the form again and 401: any other answer fails here."""
    auth = http.get(auth_url, timeout=30)
    assert auth.status_code == 200 and 'name="password"' in auth.text, (auth.status_code, auth.url)
    resp = http.post(auth.url, data={"login": email, "password": password}, allow_redirects=False, timeout=30)
    if resp.status_code == 401 and 'name="password"' in resp.text:
        return None
    for _ in range(5):
        assert resp.status_code == 303, (resp.status_code, resp.url, resp.text[:300])
        location = resp.headers["Location"]
        if urlsplit(location).path == "/oauth2/callback":
            return f"{urlsplit(location).path}?{urlsplit(location).query}"
        resp = http.get(urljoin(resp.url, location), allow_redirects=False, timeout=30)
    raise AssertionError(f"Dex never redirected to the client: {resp.status_code} {resp.url}")


def _dex_code_flow(base: str, client_id: str, email: str, password: str) -> str | None:
    """Dex's authorization-code flow for `client_id`: the code Dex redirects with, or None if refused."""
    http = requests.Session()
    http.trust_env = False  # a loopback port-forward: no proxy
    query = urlencode({"client_id": client_id, "redirect_uri": "/oauth2/callback", "response_type": "code",
                       "scope": "openid email profile", "state": "live-test"})
    callback = _dex_login(http, f"{base}/dex/auth?{query}", email, password)
    if callback is None:
        return None
    params = parse_qs(urlsplit(callback).query)
    assert params["state"] == ["live-test"]
    return params["code"][0]


def test_dex_logs_in_the_stacks_users_and_refuses_a_wrong_password(kind_stack: KindStack) -> None:
    from infra.toolchain import tool_path
    from smoke_tests.portforward import ForwardSpec, PortForward

    cfg = parse_stack_config(kind_stack.ts.name, kind_stack.raw, set())
    kubeconfig = kind_stack.ts.work_dir / "kubeconfig"
    kubeconfig.write_text(kind_stack.ts.stack.outputs()["kubeconfig"].value)
    oidc = client.CoreV1Api(kind_stack.api()).read_namespaced_secret("dex-oidc-client", "auth").data
    client_id, client_secret = (base64.b64decode(oidc[k]).decode() for k in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"))
    assert client_id == cfg.auth.client_id
    spec = ForwardSpec(tool_path("kubectl"), "auth", "svc/dex", 5556, kubeconfig=kubeconfig)
    with PortForward(spec) as forward:
        for user in cfg.auth.users:
            assert user.password is not None
            code = _dex_code_flow(forward.url, client_id, user.email, user.password.reveal())
            assert code, f"Dex refused {user.email}'s configured password"
            token = requests.post(f"{forward.url}/dex/token", auth=(client_id, client_secret), timeout=30,
                                  data={"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": "/oauth2/callback"})
            assert token.status_code == 200, token.text
            payload = token.json()["id_token"].split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            assert claims["email"] == user.email and claims["iss"] == "http://dex.auth.svc.cluster.local:5556/dex"
            assert _dex_code_flow(forward.url, client_id, user.email, user.password.reveal() + "x") is None


def _cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    """oauth2-proxy's cookies are Secure (upstream forces HTTPS); over the plain port-forward they are
    sent by hand, as the browser behind a TLS gateway would."""
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def test_oauth2_proxy_turns_a_dex_login_into_a_session(kind_stack: KindStack) -> None:
    """The upstream login, with the two real pods and no gateway: oauth2-proxy's /oauth2/start sends
    the browser to Dex (a relative /dex/auth, which Istio's single host would route), Dex's form
    logs the user in and sends it back to /oauth2/callback, oauth2-proxy redeems the code with Dex
    in the cluster and sets its session cookie; with it /oauth2/auth accepts and names the user."""
    from infra.toolchain import tool_path
    from smoke_tests.portforward import ForwardSpec, PortForward

    cfg = parse_stack_config(kind_stack.ts.name, kind_stack.raw, set())
    kubeconfig = kind_stack.ts.work_dir / "kubeconfig"
    kubeconfig.write_text(kind_stack.ts.stack.outputs()["kubeconfig"].value)
    kubectl = tool_path("kubectl")
    [user] = cfg.auth.users[:1]
    assert user.password is not None
    with PortForward(ForwardSpec(kubectl, "auth", "svc/dex", 5556, kubeconfig=kubeconfig)) as dex, \
            PortForward(ForwardSpec(kubectl, "oauth2-proxy", "svc/oauth2-proxy", 80, kubeconfig=kubeconfig)) as proxy:
        plain = requests.Session()
        plain.trust_env = False
        assert plain.get(f"{proxy.url}/oauth2/auth", timeout=30).status_code == 401  # no session
        start = plain.get(f"{proxy.url}/oauth2/start", params={"rd": "/"}, allow_redirects=False, timeout=30)
        assert start.status_code == 302, start.text
        to_dex = urlsplit(start.headers["Location"])
        assert to_dex.path == "/dex/auth"
        cookies = dict(start.cookies)  # the CSRF cookie (state and PKCE verifier)
        callback = _dex_login(plain, f"{dex.url}{to_dex.path}?{to_dex.query}", user.email, user.password.reveal())
        assert callback is not None, "Dex refused the configured password"
        fresh = requests.Session()
        fresh.trust_env = False
        back = fresh.get(f"{proxy.url}{callback}", headers=_cookie_header(cookies), allow_redirects=False, timeout=30)
        assert back.status_code == 302, back.text
        cookies.update(dict(back.cookies))
        assert "oauth2_proxy_kubeflow" in cookies
        auth = fresh.get(f"{proxy.url}/oauth2/auth", headers=_cookie_header(cookies), timeout=30)
        assert auth.status_code == 202, auth.text
        assert auth.headers["X-Auth-Request-Email"] == user.email
        assert auth.headers["Authorization"].startswith("Bearer ")


def test_kserve_runs_in_the_stacks_raw_mode(kind_stack: KindStack) -> None:
    api = kind_stack.api()
    config = client.CoreV1Api(api).read_namespaced_config_map("inferenceservice-config", "kubeflow")
    assert json.loads(config.data["deploy"]) == {"defaultDeploymentMode": "RawDeployment"}
    hooks = client.AdmissionregistrationV1Api(api).read_validating_webhook_configuration(
        "inferenceservice.serving.kserve.io")
    assert all(h.client_config.ca_bundle for h in hooks.webhooks)  # injected by the real cainjector
    runtime = client.CustomObjectsApi(api).get_cluster_custom_object(
        "serving.kserve.io", "v1alpha1", "clusterservingruntimes", "kserve-sklearnserver")
    [container] = runtime["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == ("kserve/sklearnserver:v0.15.2", "IfNotPresent")


TRAIN_IRIS = """
import os, joblib
from sklearn import datasets, svm
iris = datasets.load_iris()
os.makedirs("/mnt/models/iris", exist_ok=True)
joblib.dump(svm.SVC(gamma="scale").fit(iris.data, iris.target), "/mnt/models/iris/model.joblib")
"""
SMALL = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def test_an_inferenceservice_in_raw_mode_serves_a_model_from_a_claim(kind_stack: KindStack) -> None:
    """KServe's real controller makes a raw-mode predictor (the stack's default mode, no annotation)
    from the sklearn server image built here; a model trained by a Job on a local-path claim answers.
    Within the profile's quota, under its namespace's Pod Security level. Removed afterwards."""
    api = kind_stack.api()
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    ns = PROFILE_NAMESPACE
    try:
        _serve_iris_from_a_claim(kind_stack, api, ns)
    finally:  # the node has about 0.2 CPU to spare with Pipelines: the smoke suite's predictors need this one's
        _remove_quietly(lambda: custom.delete_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", ns, "inferenceservices", "iris"))
        _remove_quietly(lambda: batch.delete_namespaced_job("train-iris", ns, propagation_policy="Background"))
        _remove_quietly(lambda: core.delete_namespaced_persistent_volume_claim("iris-model", ns))

        def predictor_gone() -> tuple[bool, Any]:
            pods = core.list_namespaced_pod(ns, label_selector="serving.kserve.io/inferenceservice=iris").items
            return not pods, [p.metadata.name for p in pods]

        wait_until(predictor_gone, timeout=180, interval=2, what="the iris predictor's pods to go")


def _remove_quietly(delete: Callable[[], object]) -> None:
    """Delete what a test made; already gone is fine."""
    try:
        delete()
    except ApiException as exc:
        if exc.status != 404:
            raise


def _serve_iris_from_a_claim(kind_stack: KindStack, api: client.ApiClient, ns: str) -> None:
    from infra.toolchain import tool_path
    from smoke_tests.portforward import ForwardSpec, PortForward

    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    core.create_namespaced_persistent_volume_claim(ns, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "iris-model"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}}})
    batch.create_namespaced_job(ns, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "train-iris"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "train", "image": "kserve/sklearnserver:v0.15.2", "imagePullPolicy": "IfNotPresent",
                            "command": ["python3", "-c", TRAIN_IRIS], "resources": SMALL,
                            "volumeMounts": [{"name": "models", "mountPath": "/mnt/models"}]}],
            "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "iris-model"}}]}}}})

    def trained() -> tuple[bool, Any]:
        status = batch.read_namespaced_job_status("train-iris", ns).status
        if status.failed:
            raise AssertionError(f"the training Job failed: {status}")
        return bool(status.succeeded), status.conditions

    wait_until(trained, timeout=300, interval=2, what="the training Job")
    custom.create_namespaced_custom_object("serving.kserve.io", "v1beta1", ns, "inferenceservices", {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "iris"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://iris-model/iris",
                                         "resources": SMALL}}}})

    def ready() -> tuple[bool, Any]:
        isvc = custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", ns, "inferenceservices", "iris")
        conditions = {c["type"]: c["status"] for c in (isvc.get("status") or {}).get("conditions", [])}
        return conditions.get("Ready") == "True", conditions

    wait_until(ready, timeout=420, interval=3, what="the InferenceService iris to be Ready")
    predictor = client.AppsV1Api(api).read_namespaced_deployment("iris-predictor", ns)  # raw mode: a Deployment
    [server] = [c for c in predictor.spec.template.spec.containers if c.name == "kserve-container"]
    assert server.image == "kserve/sklearnserver:v0.15.2"
    kubeconfig = kind_stack.ts.work_dir / "kubeconfig"
    kubeconfig.write_text(kind_stack.ts.stack.outputs()["kubeconfig"].value)
    spec = ForwardSpec(tool_path("kubectl"), ns, "svc/iris-predictor", 80, kubeconfig=kubeconfig)
    with PortForward(spec) as forward:
        session = requests.Session()
        session.trust_env = False
        # One flower of each species, from the training data: setosa, virginica, versicolor.
        resp = session.post(f"{forward.url}/v1/models/iris:predict", timeout=60,
                            json={"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"predictions": [0, 2, 1]}


def test_namespaces_carry_upstreams_pod_security_and_admission_enforces_it(kind_stack: KindStack,
                                                                          manifests_tree: Path) -> None:
    cfg = parse_stack_config(kind_stack.ts.name, kind_stack.raw, set())
    wanted = {o["metadata"]["name"]: o["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce")
              for o in render(cfg, manifests_tree).objects if o["kind"] == "Namespace"}
    core = client.CoreV1Api(kind_stack.api())
    live = {name: core.read_namespace(name).metadata.labels.get("pod-security.kubernetes.io/enforce")
            for name in wanted}
    assert live == wanted and wanted["kubeflow"] == "restricted"
    assert core.read_namespace(PROFILE_NAMESPACE).metadata.labels["pod-security.kubernetes.io/enforce"] == "baseline"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "breaks-baseline"},
           "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
    for namespace in ("kubeflow", PROFILE_NAMESPACE):
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(namespace, pod)
        assert refused.value.status == 403 and "violates PodSecurity" in str(refused.value.body), namespace


def test_kfp_api_server_is_healthy_against_its_database(kind_stack: KindStack) -> None:
    """The API server (multi-user) answers, and writes, reads and deletes in its database (the
    MariaDB stand-in): an experiment made in the profile's namespace as its owner."""
    api = kind_stack.api()
    health = kfp_call(api, "GET", "/apis/v2beta1/healthz", OWNER)
    assert health.get("multi_user") is True, health
    name = unique_name("kfstack-live")
    made = kfp_call(api, "POST", "/apis/v2beta1/experiments", OWNER, {"display_name": name,
                                                                       "namespace": PROFILE_NAMESPACE})
    assert made.get("experiment_id"), made
    try:
        read = kfp_call(api, "GET", f"/apis/v2beta1/experiments/{made['experiment_id']}", OWNER)
        assert (read["display_name"], read["namespace"]) == (name, PROFILE_NAMESPACE), read
        listed = kfp_call(api, "GET", f"/apis/v2beta1/experiments?namespace={PROFILE_NAMESPACE}&page_size=100", OWNER)
        assert made["experiment_id"] in [e["experiment_id"] for e in listed.get("experiments", [])], listed
    finally:
        kfp_call(api, "DELETE", f"/apis/v2beta1/experiments/{made['experiment_id']}", OWNER)


def test_the_profile_hook_gives_the_namespace_its_own_store_key(kind_stack: KindStack) -> None:
    """metacontroller runs KFP's profile hook: the namespace's launcher ConfigMap names its own
    pipeline root, and its SeaweedFS key is refused on another namespace's prefix."""
    core = client.CoreV1Api(kind_stack.api())

    def made() -> tuple[bool, Any]:
        names = {c.metadata.name for c in core.list_namespaced_config_map(PROFILE_NAMESPACE).items}
        secret = [s.metadata.name for s in core.list_namespaced_secret(PROFILE_NAMESPACE).items
                  if s.metadata.name == "mlpipeline-minio-artifact"]
        return {"kfp-launcher", "metadata-grpc-configmap", "artifact-repositories"} <= names and bool(secret), names

    wait_until(made, timeout=300, interval=3, what=f"the profile hook's objects in {PROFILE_NAMESPACE}")
    root = core.read_namespaced_config_map("kfp-launcher", PROFILE_NAMESPACE).data["defaultPipelineRoot"]
    assert root == f"minio://mlpipeline/private-artifacts/{PROFILE_NAMESPACE}/v2/artifacts"
    report = pod_report(kind_stack.api(), PROFILE_NAMESPACE, "kfstack-key", BOTO_IMAGE,
                        [LIST_WITH_NAMESPACE_KEY, f"private-artifacts/{PROFILE_NAMESPACE}/",
                         "private-artifacts/kubeflow-someone-else/"], env=secret_env("mlpipeline-minio-artifact"))
    assert report["other"] == "AccessDenied", report


def test_a_workflow_submitted_directly_to_argo_succeeds(kind_stack: KindStack) -> None:
    """Argo's controller and executor (built here) under the node's runtime, as the profile's
    default-editor, its log archived with the namespace's key (the hook's artifact repository)."""
    custom = client.CustomObjectsApi(kind_stack.api())
    made = custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", PROFILE_NAMESPACE, "workflows", {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "kfstack-live-"},
        "spec": {"entrypoint": "main", "serviceAccountName": "default-editor", "templates": [{
            "name": "main", "container": {"image": RUNTIME_IMAGE, "command": ["python3", "-c", "print('argo ran')"],
                                          "resources": SMALL}}]}})
    name = made["metadata"]["name"]

    def ended() -> tuple[bool, Any]:
        wf = custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", PROFILE_NAMESPACE, "workflows", name)
        status = wf.get("status") or {}
        return status.get("phase") in ("Succeeded", "Failed", "Error"), (status.get("phase"), status.get("message"))

    phase = wait_until(ended, timeout=300, interval=3, what=f"workflow {name} to end")
    assert phase[0] == "Succeeded", phase


def test_a_pipeline_run_succeeds_and_its_model_lands_under_the_namespace_prefix(kind_stack: KindStack,
                                                                               tmp_path: Path) -> None:
    """The iris pipeline through the API server: the driver and launcher (built here) run it, the
    persistence agent reports SUCCEEDED back, and the launcher's upload is under the namespace's
    pipeline root, listed with the namespace's own key."""
    from smoke_tests.pipelines.common import StepImage, packages
    from smoke_tests.pipelines.iris import build_iris_pipeline

    api = kind_stack.api()
    spec = compiled_spec(build_iris_pipeline(packages(), StepImage(RUNTIME_IMAGE, ready=True)), tmp_path)
    experiment = kfp_call(api, "POST", "/apis/v2beta1/experiments", OWNER, {
        "display_name": unique_name("kfstack-live"), "namespace": PROFILE_NAMESPACE})
    run = kfp_call(api, "POST", "/apis/v2beta1/runs", OWNER, {
        "display_name": "kfstack-live-iris", "experiment_id": experiment["experiment_id"], "pipeline_spec": spec})
    assert run.get("run_id"), run
    ended = wait_for_run(api, run["run_id"], OWNER, timeout=900)
    if ended["state"] != "SUCCEEDED":
        from smoke_tests.kube import failed_container_logs, pods_summary

        selector = f"pipeline/runid={run['run_id']}"
        raise AssertionError(f"{ended['state']}: {ended.get('error')}\n"
                             + "\n".join(pods_summary(api, PROFILE_NAMESPACE, selector)
                                         + failed_container_logs(api, PROFILE_NAMESPACE, selector)))
    workflows = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "argoproj.io", "v1alpha1", PROFILE_NAMESPACE, "workflows", label_selector=f"pipeline/runid={run['run_id']}")
    assert [w["status"]["phase"] for w in workflows["items"]] == ["Succeeded"]  # what the agent reported from
    report = pod_report(api, PROFILE_NAMESPACE, "kfstack-list", BOTO_IMAGE,
                        [LIST_WITH_NAMESPACE_KEY, f"private-artifacts/{PROFILE_NAMESPACE}/v2/artifacts/",
                         "private-artifacts/kubeflow-someone-else/"], env=secret_env("mlpipeline-minio-artifact"))
    assert [k for k in report["own"] if run["run_id"] in k and k.endswith("/model/model.joblib")], report


def test_a_forged_identity_header_through_the_gateway_is_not_an_identity(kind_stack: KindStack) -> None:
    """A pod of the user's namespace calls the gateway's pipeline API with the owner's name in the
    header and no session: refused before the API server (sent to log in)."""
    url = (f"http://standin-gateway.kfstack-gateway.svc.cluster.local/pipeline/apis/v2beta1/experiments"
           f"?namespace={PROFILE_NAMESPACE}")
    report = pod_report(kind_stack.api(), PROFILE_NAMESPACE, "kfstack-forge", RUNTIME_IMAGE, [FORGED_CALL, url, OWNER])
    assert report.get("status") in (302, 401, 403) or "refused" in report, report


def test_a_forged_identity_header_to_the_api_server_is_refused(kind_stack: KindStack) -> None:
    """A pod of the user's namespace calls ml-pipeline directly with a forged `kubeflow-userid`:
    the stack's NetworkPolicy admits only the kubeflow namespace and the gateway, and the
    kube-network-policies agent the stack runs (the node's ptp network enforces none) drops it."""
    live_stack.forged_header_to_the_api_server_is_dropped(kind_stack.api(), node_containers(kind_stack.name)[0])


def test_the_smoke_suite_passes_through_the_standin_gateway(kind_stack: KindStack, tmp_path: Path) -> None:
    """`pytest smoke_tests --stack-outputs` as a user runs it: a supervised port-forward to the
    stand-in gateway pod (kubectl killed and restarted by the suite), the login through real Dex and
    oauth2-proxy pods, the pipeline checks on the real KFP (iris and MNIST trained there and served by
    real KServe InferenceServices from their artifacts), another namespace's token refused at the
    gateway, readiness of every pod."""
    live_stack.suite_through_port_forward(kind_stack, tmp_path, live_stack.PORT_FORWARD_CHECKS)


def test_the_smoke_suite_runs_as_an_in_cluster_job(kind_stack: KindStack, tmp_path: Path) -> None:
    """The suite's image built here, loaded into the stack's kind cluster, run as the project's Job
    (its ServiceAccount and least-write RBAC) against the gateway's Service by cluster DNS; the JUnit
    comes back through the Job's log. Nothing of the Job is left afterwards."""
    live_stack.suite_as_job(kind_stack, tmp_path, lambda: node_containers(kind_stack.name), live_stack.JOB_CHECKS)


def test_second_up_changes_nothing(kind_stack: KindStack) -> None:
    assert live_stack.up_changes(kind_stack) == {}


def test_destroy_leaves_no_cluster_container_or_route(kind_stack: KindStack) -> None:
    kind_stack.ts.stack.destroy(on_output=_quiet)
    from infra.toolchain import tool_path

    assert kind_stack.name not in run([tool_path("kind"), "get", "clusters"], timeout=60).stdout.split()
    assert node_containers(kind_stack.name) == []
    assert routes.held_by(f"kind:{kind_stack.name}") == []
