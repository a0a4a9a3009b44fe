"""The stand-in gateway (gateway.kind: standin): T0 on its objects and nginx configuration (checked by
the real nginx), T1 on the real v1.11.0 render of a stack without Istio."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from infra.config import ConfigError, parse_stack_config
from infra.errors import UserError
from infra.gateway.nginx import nginx_conf
from infra.gateway.standin import NAME, NAMESPACE, cluster_layout, ingress, standin_objects
from infra.local_target.binaries import MissingBinary, binary
from infra.manifests.render import render
from infra.run import run
from tests.helpers import ALICE, BOB, base_raw

NO_ISTIO = {"release": "v1.11.0", "components": "core", "include": ["istio-crds"],
            "exclude": ["istio", "kubeflow-istio-resources", "knative-serving", "pipelines", "centraldashboard"]}


STORAGE = {"mode": "existing", "defaultClass": "standard"}  # no claims: the claims' components are left out


def _config(**extra: object):
    raw = base_raw(kubeflow=NO_ISTIO, storage=STORAGE, gateway={"kind": "standin"}, **extra)
    return parse_stack_config("t", raw, {"auth"})


def test_routes_go_to_upstreams_services_and_each_profiles_predictors() -> None:
    cfg = _config()
    conf = nginx_conf(cfg, cluster_layout(cfg))
    assert "set $dex_upstream dex.auth.svc.cluster.local:5556;" in conf
    assert "set $oauth2_upstream oauth2-proxy.oauth2-proxy.svc.cluster.local:80;" in conf
    for user in (ALICE, BOB):
        profile = "kubeflow-" + user["email"].replace("@", "-").replace(".", "-")
        assert f'"{profile}|{user["email"]}" $isvc-predictor.{profile}.svc.cluster.local:80;' in conf
    assert "include /tmp/resolver.conf;" in conf  # names resolve per request: no start-up failure


def test_the_cluster_configuration_is_valid_nginx(tmp_path: Path) -> None:
    try:
        nginx = binary("nginx")
    except MissingBinary as exc:
        pytest.skip(f"NOT RUN: nginx is not installed here ({exc})")
    cfg = _config()
    (tmp_path / "resolver.conf").write_text("resolver 127.0.0.1 valid=10s;\n", encoding="utf-8")
    layout = dataclasses.replace(cluster_layout(cfg), workdir=str(tmp_path),
                                 resolver_file=str(tmp_path / "resolver.conf"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(cfg, layout), encoding="utf-8")
    result = run([nginx, "-t", "-p", tmp_path, "-c", conf, "-e", "stderr"], timeout=30)
    assert "test is successful" in result.stderr


def test_objects_meet_the_restricted_pod_security_level_and_roll_on_config_change() -> None:
    cfg = _config()
    objects = {o["kind"]: o for o in standin_objects(cfg)}
    assert objects["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = objects["Deployment"]["spec"]["template"]
    ctx = pod["spec"]["containers"][0]["securityContext"]
    assert ctx["runAsNonRoot"] and ctx["runAsUser"] != 0 and ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["allowPrivilegeEscalation"] is False and ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    other = parse_stack_config("t", base_raw(kubeflow=NO_ISTIO, gateway={"kind": "standin"},
                                             profiles=[{"owner": ALICE["email"]}]), {"auth"})
    digest = lambda c: {o["kind"]: o for o in standin_objects(c)}["Deployment"]["spec"]["template"][  # noqa: E731
        "metadata"]["annotations"]["kubeflow-stacks/config-sha256"]
    assert digest(cfg) != digest(other)
    assert ingress(cfg)["namespace"] == NAMESPACE and ingress(cfg)["kind"].startswith("standin")


def test_an_unknown_gateway_kind_is_refused_with_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_stack_config("t", base_raw(gateway={"kind": "envoy"}), {"auth"})
    assert any("gateway.kind = 'envoy': must be one of: istio, standin" in str(p) for p in info.value.problems)


def test_render_adds_the_standin_and_maps_its_image(manifests_tree: Path) -> None:
    cfg = _config(images={"overrides": {"docker.io/library/nginx:1.27.5": "kfstack/standin-gateway:nginx-1.22"},
                          "pullPolicy": "IfNotPresent"})
    rendered = render(cfg, manifests_tree)
    assert "istio" not in rendered.components and "standin-gateway" in rendered.adjustments
    [deployment] = rendered.find("Deployment", NAME, NAMESPACE)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == ("kfstack/standin-gateway:nginx-1.22", "IfNotPresent")
    assert rendered.find("Service", NAME, NAMESPACE) and rendered.find("Namespace", NAMESPACE)


def test_a_standin_beside_istio_is_refused_before_anything_is_applied(manifests_tree: Path) -> None:
    cfg = parse_stack_config("t", base_raw(gateway={"kind": "standin"}), {"auth"})
    with pytest.raises(UserError, match=r"add istio to kubeflow\.exclude"):
        render(cfg, manifests_tree)
