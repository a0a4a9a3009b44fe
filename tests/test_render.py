"""T1: render the real upstream manifests with the pinned kustomize and check what comes out."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from infra.apply import BUILTIN_GROUPS
from infra.auth.passwords import verify
from infra.config import parse_stack_config
from infra.manifests.components import load_component_map
from infra.manifests.objects import Rendered, group_of
from infra.manifests.render import render
from smoke_tests.run import run
from tests.helpers import ALICE, BOB, CLIENT_SECRET

pytestmark = pytest.mark.render
K8S_SCHEMA_VERSION = "1.34.0"


@pytest.fixture(scope="module")
def full(manifests_tree: Path) -> Rendered:
    from tests.helpers import base_raw

    return render(parse_stack_config("test", base_raw(), {"auth"}), manifests_tree)


@pytest.fixture(scope="module")
def upstream_example(manifests_tree: Path) -> list[dict]:
    from infra.toolchain import tool_path

    out = run([tool_path("kustomize"), "build", str(manifests_tree / "example")], timeout=600).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_full_matches_upstream_example_kind_for_kind(full: Rendered, upstream_example: list[dict]):
    ours = Counter(o["kind"] for o in full.objects)
    theirs = Counter(o["kind"] for o in upstream_example)
    # Profiles are replaced by the stack's own list: upstream has one demo profile, we have two.
    assert ours.pop("Profile") == 2 and theirs.pop("Profile") == 1
    assert ours == theirs


def test_core_is_a_strict_subset(manifests_tree: Path, full: Rendered):
    from tests.helpers import base_raw

    raw = base_raw(kubeflow={"components": "core"}, storage={"defaultClass": "fast"})
    core = render(parse_stack_config("test", raw, {"auth"}), manifests_tree)
    kinds = {o["kind"] for o in core.objects}
    assert {"Deployment", "CustomResourceDefinition", "Profile"} <= kinds
    assert len(core.objects) < len(full.objects)
    deployments = {o["metadata"]["name"] for o in core.find("Deployment")}
    assert {"dex", "oauth2-proxy", "ml-pipeline", "centraldashboard", "kserve-controller-manager",
            "profiles-deployment", "controller", "istiod", "cert-manager"} <= deployments
    assert "katib-controller" not in deployments


def test_every_claim_has_its_class_and_size(full: Rendered):
    claims = {c["metadata"]["name"]: c["spec"] for c in full.find("PersistentVolumeClaim")}
    assert set(claims) == {"katib-mysql", "mysql-pv-claim", "seaweedfs-pvc"}
    assert set(claims) == set(load_component_map("v1.11.0").claim_owners())  # what config checks names against
    assert claims["katib-mysql"]["storageClassName"] == "fast"
    assert claims["katib-mysql"]["resources"]["requests"]["storage"] == "5Gi"
    assert claims["mysql-pv-claim"]["storageClassName"] == "premium"
    assert claims["mysql-pv-claim"]["resources"]["requests"]["storage"] == "7Gi"
    assert claims["seaweedfs-pvc"]["storageClassName"] == "fast"  # not overridden: the default
    assert claims["seaweedfs-pvc"]["resources"]["requests"]["storage"] == "20Gi"


def _secret_data(obj: dict) -> dict[str, str]:
    data = dict(obj.get("stringData") or {})
    data.update({k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()})
    return data


def test_dex_lists_users_and_hashes_verify(full: Rendered):
    config = yaml.safe_load(full.find("ConfigMap", "dex", "auth")[0]["data"]["config.yaml"])
    users = {u["email"]: u for u in config["staticPasswords"]}
    assert set(users) == {ALICE["email"], BOB["email"]}
    hashes = _secret_data(full.find("Secret", "dex-passwords", "auth")[0])
    for person in (ALICE, BOB):
        env_name = users[person["email"]]["hashFromEnv"]
        assert verify(person["password"], hashes[env_name])
    assert not verify(BOB["password"], hashes[users[ALICE["email"]]["hashFromEnv"]])


def test_no_password_appears_anywhere(full: Rendered):
    text = json.dumps(full.objects)
    for person in (ALICE, BOB):
        assert person["password"] not in text


def test_oidc_client_matches_between_dex_and_oauth2_proxy(full: Rendered):
    dex_client = _secret_data(full.find("Secret", "dex-oidc-client", "auth")[0])
    [proxy_secret] = [s for s in full.find("Secret", namespace="oauth2-proxy")
                      if s["metadata"]["name"].startswith("oauth2-proxy-")]
    proxy = _secret_data(proxy_secret)
    assert dex_client["OIDC_CLIENT_ID"] == proxy["client-id"] == "kubeflow-oidc-authservice"
    assert dex_client["OIDC_CLIENT_SECRET"] == proxy["client-secret"] == CLIENT_SECRET
    [cm] = [c for c in full.find("ConfigMap", namespace="oauth2-proxy") if "oauth2_proxy.cfg" in c["data"]]
    cfg = cm["data"]["oauth2_proxy.cfg"]
    dex_config = yaml.safe_load(full.find("ConfigMap", "dex", "auth")[0]["data"]["config.yaml"])
    assert f'oidc_issuer_url = "{dex_config["issuer"]}"' in cfg
    assert dex_config["staticClients"][0]["redirectURIs"] == ["/oauth2/callback"]
    assert 'redirect_url = "/oauth2/callback"' in cfg


def test_render_is_deterministic(manifests_tree: Path, full: Rendered):
    """kustomize and the patches give the same bytes twice from the tree itself (the render cache, which
    `full` may have come from, is bypassed both times), and the cache gives those bytes too."""
    from tests.helpers import base_raw

    first, second = (render(parse_stack_config("test", base_raw(), {"auth"}), manifests_tree, cache=False)
                     for _ in range(2))
    assert first.to_yaml() == second.to_yaml()
    assert full.to_yaml() == first.to_yaml()


def test_renders_share_no_objects(manifests_tree: Path):
    """Each render gets objects of its own from the render cache (the patches change them in place),
    so patching one render, as the next stack's patches would, leaves the next render as it was."""
    from tests.helpers import base_raw

    cfg = parse_stack_config("test", base_raw(), {"auth"})
    first = render(cfg, manifests_tree)
    expected = render(cfg, manifests_tree).to_yaml()
    for obj in first.objects:
        obj["metadata"]["name"] = "changed"
        obj.setdefault("spec", {})["changed"] = True
    assert render(cfg, manifests_tree).to_yaml() == expected


def test_profiles_carry_quotas(full: Rendered):
    profiles = {p["metadata"]["name"]: p["spec"] for p in full.find("Profile")}
    assert profiles["kubeflow-alice-example-org"] == {
        "owner": {"kind": "User", "name": ALICE["email"]},
        "resourceQuotaSpec": {"hard": {"cpu": "8", "memory": "16Gi", "requests.nvidia.com/gpu": "1",
                                       "persistentvolumeclaims": "5", "requests.storage": "100Gi"}}}
    assert profiles["kubeflow-bob-example-org"] == {"owner": {"kind": "User", "name": BOB["email"]}}


def test_builtin_objects_validate_against_kubernetes_schema(full: Rendered):
    checked = 0
    for obj in full.objects:
        if group_of(obj) not in BUILTIN_GROUPS:
            continue  # instances of CRDs have no schema in the Kubernetes OpenAPI
        kubernetes_validate.validate(obj, K8S_SCHEMA_VERSION, strict=True)
        checked += 1
    assert checked > 500


def test_static_storage_binds_a_volume_per_claim(manifests_tree: Path):
    from tests.helpers import base_raw

    cfg = parse_stack_config("test", base_raw(storage={"mode": "static", "defaultClass": "kf-static"}), {"auth"})
    rendered = render(cfg, manifests_tree)
    volumes = {v["spec"]["claimRef"]["name"]: v["spec"] for v in rendered.find("PersistentVolume")}
    assert set(volumes) == {"katib-mysql", "mysql-pv-claim", "seaweedfs-pvc"}
    assert volumes["katib-mysql"]["capacity"] == {"storage": "10Gi"}
    [sc] = rendered.find("StorageClass")
    assert sc["metadata"]["name"] == "kf-static"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    # Applied in the render's order (`kfstack render | kubectl apply -f -`, the bench's upstream
    # loop), a claim before its class stays Pending until the volume controller's resync.
    position = {(o["kind"], o["metadata"]["name"]): i for i, o in enumerate(rendered.objects)}
    for claim in rendered.find("PersistentVolumeClaim"):
        name = claim["metadata"]["name"]
        assert position[("StorageClass", "kf-static")] < position[("PersistentVolumeClaim", name)]
        assert position[("PersistentVolume", f"kubeflow-{name}")] < position[("PersistentVolumeClaim", name)]


def test_nfs_provisioner_is_default_class(manifests_tree: Path):
    from tests.helpers import base_raw

    cfg = parse_stack_config("test", base_raw(storage={
        "mode": "nfs-subdir", "defaultClass": "nfs", "nfs": {"server": "10.0.0.5", "path": "/export/kf"}}), {"auth"})
    rendered = render(cfg, manifests_tree)
    [deployment] = rendered.find("Deployment", "nfs-subdir-external-provisioner")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NFS_SERVER"] == "10.0.0.5" and env["NFS_PATH"] == "/export/kf"
    [sc] = rendered.find("StorageClass")
    assert sc["provisioner"] == env["PROVISIONER_NAME"]
    assert {c["spec"]["storageClassName"] for c in rendered.find("PersistentVolumeClaim")} == {"nfs"}


def test_sim_adjustments_only_on_sim(manifests_tree: Path, full: Rendered):
    from tests.helpers import base_raw

    sim = render(parse_stack_config("test", base_raw(cluster={"provider": "sim", "name": "s"}), {"auth"}),
                 manifests_tree)
    webhook_kinds = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    assert not [o for o in sim.objects if o["kind"] in webhook_kinds]
    assert len([o for o in full.objects if o["kind"] in webhook_kinds]) == 27
    assert "sim:no-admission-webhooks(27)" in sim.adjustments
    assert not any(a.startswith("sim:") for a in full.adjustments)


def test_kind_uses_upstream_kind_overlay_for_oauth2_proxy(manifests_tree: Path):
    from tests.helpers import base_raw

    kind = render(parse_stack_config("test", base_raw(cluster={"provider": "kind", "name": "k"}), {"auth"}),
                  manifests_tree)
    assert kind.find("Deployment", "cluster-jwks-proxy", "istio-system")
    [ra] = kind.find("RequestAuthentication", "m2m-token-issuer", "istio-system")
    issuers = [r["issuer"] for r in ra["spec"]["jwtRules"]]
    assert "https://kubernetes.default.svc" in issuers


def test_configured_issuer_reaches_dex_oauth2_proxy_and_the_gateway(manifests_tree: Path):
    from tests.helpers import base_raw

    raw = base_raw()
    raw["auth"]["issuer"] = "https://kubeflow.example.org/dex/"
    rendered = render(parse_stack_config("test", raw, {"auth"}), manifests_tree)
    dex = yaml.safe_load(rendered.find("ConfigMap", "dex", "auth")[0]["data"]["config.yaml"])
    assert dex["issuer"] == "https://kubeflow.example.org/dex"
    [cm] = [c for c in rendered.find("ConfigMap", namespace="oauth2-proxy") if "oauth2_proxy.cfg" in c["data"]]
    cfg = cm["data"]["oauth2_proxy.cfg"]
    assert 'oidc_issuer_url = "https://kubeflow.example.org/dex"' in cfg
    # oauth2-proxy still redeems codes and reads keys at Dex's Service inside the cluster.
    assert 'redeem_url = "http://dex.auth.svc.cluster.local:5556/dex/token"' in cfg
    [dex_jwt] = rendered.find("RequestAuthentication", "dex-jwt", "istio-system")
    rules = dex_jwt["spec"]["jwtRules"]
    assert [r["issuer"] for r in rules if "dex" in r.get("jwksUri", r["issuer"])] == [
        "https://kubeflow.example.org/dex"]
    assert rules[0]["jwksUri"] == "http://dex.auth.svc.cluster.local:5556/dex/keys"


def _inferenceservice_deploy(rendered: Rendered) -> dict:
    [config_map] = rendered.find("ConfigMap", "inferenceservice-config", "kubeflow")
    return json.loads(config_map["data"]["deploy"])


def test_kserve_deployment_mode_sets_upstreams_inferenceservice_config(manifests_tree: Path, full: Rendered):
    from tests.helpers import base_raw

    assert _inferenceservice_deploy(full) == {"defaultDeploymentMode": "Serverless"}  # upstream's, untouched
    raw = base_raw()
    raw["kubeflow"]["kserve"] = {"deploymentMode": "RawDeployment"}
    patched = render(parse_stack_config("test", raw, {"auth"}), manifests_tree)
    assert _inferenceservice_deploy(patched) == {"defaultDeploymentMode": "RawDeployment"}
    assert "kserve:RawDeployment" in patched.adjustments
    # Nothing else of KServe's config changes.
    [before] = full.find("ConfigMap", "inferenceservice-config", "kubeflow")
    [after] = patched.find("ConfigMap", "inferenceservice-config", "kubeflow")
    assert {k: v for k, v in before["data"].items() if k != "deploy"} == \
           {k: v for k, v in after["data"].items() if k != "deploy"}
