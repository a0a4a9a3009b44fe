"""The stand-in gateway (gateway.kind: standin): T0 on its objects and nginx configuration (checked by
the real nginx), T1 on the real v1.11.0 render of a stack without Istio."""

from __future__ import annotations

import dataclasses
import http.server
import ssl
import threading
from pathlib import Path

import pytest
import requests

from infra.config import ConfigError, parse_stack_config
from infra.gateway.nginx import nginx_conf
from infra.gateway.standin import NAME, NAMESPACE, cluster_layout, ingress, standin_objects
from infra.manifests.render import render
from infra.toolchain import ToolMissingError as MissingBinary
from infra.toolchain import find_binary as binary
from smoke_tests.process import free_port, port_open, spawn, stop_process
from smoke_tests.run import run
from smoke_tests.wait import wait_until
from tests.helpers import ALICE, BOB, base_raw
from tests.tls import self_signed

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
        assert f'"{profile}|{user["email"]}|" $isvc-predictor.{profile}.svc.cluster.local:80;' in conf
    assert "include /tmp/resolver.conf;" in conf  # names resolve per request: no start-up failure


def test_the_cluster_configuration_is_valid_nginx(tmp_path: Path) -> None:
    try:
        nginx = binary("nginx")
    except MissingBinary as exc:
        pytest.skip(f"NOT RUN: nginx is not installed here ({exc})")
    cfg = _config()
    (tmp_path / "resolver.conf").write_text("resolver 127.0.0.1 valid=10s;\n", encoding="utf-8")
    layout = dataclasses.replace(cluster_layout(cfg), workdir=str(tmp_path),
                                 resolver_file=str(tmp_path / "resolver.conf"),
                                 token_api_ca="/etc/ssl/certs/ca-certificates.crt")
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
    other = parse_stack_config("t", base_raw(kubeflow=NO_ISTIO, storage=STORAGE, gateway={"kind": "standin"},
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


def test_a_standin_beside_istio_is_refused_before_anything_is_applied() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.kind = 'standin': .*add istio to kubeflow\.exclude"):
        parse_stack_config("t", base_raw(gateway={"kind": "standin"}), {"auth"})


def _serve(handler: type[http.server.BaseHTTPRequestHandler], context: ssl.SSLContext | None = None) -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def test_serviceaccount_tokens_on_model_hosts_are_decided_by_the_api_server(tmp_path: Path) -> None:
    """The real nginx with the cluster's configuration: a bearer token goes to the API server (a TLS
    stand-in here), which lets the owner's token list the namespace's InferenceServices (200: the
    model answers), refuses another namespace's (403: Istio's RBAC denial) and does not know a forged
    one (401: sent to log in)."""
    try:
        nginx = binary("nginx")
    except MissingBinary as exc:
        pytest.skip(f"NOT RUN: nginx is not installed here ({exc})")
    cfg = _config()
    namespace = cfg.profiles[0].name
    asked: list[tuple[str, str, str]] = []

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = self.headers.get("Authorization", "")
            asked.append((self.command, self.path, token))
            code = {"Bearer owner": 200, "Bearer foreign": 403}.get(token, 401)
            self.send_response(code)
            self.send_header("Audit-Id", "a1")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            return None

    class Model(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b'{"predictions": [1]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    _, context = self_signed(tmp_path)
    api_port, model_port, port = _serve(Api, context), _serve(Model), free_port()
    layout = dataclasses.replace(
        cluster_layout(cfg), listen=f"127.0.0.1:{port}", dashboard=f"127.0.0.1:{free_port()}",
        deny=f"127.0.0.1:{free_port()}", oauth2_proxy=f"127.0.0.1:{free_port()}", workdir=str(tmp_path),
        error_log=str(tmp_path / "error.log"), access_log=str(tmp_path / "access.log"), resolver_file=None,
        models={p.name: f"127.0.0.1:{model_port}" for p in cfg.profiles}, token_api=f"127.0.0.1:{api_port}",
        token_api_ca=str(tmp_path / "cert.pem"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(cfg, layout), encoding="utf-8")
    proc = spawn([nginx, "-p", tmp_path, "-c", conf, "-e", tmp_path / "error.log", "-g", "daemon off;"])
    try:
        wait_until(lambda: (port_open(port), None), timeout=30, interval=0.2, what="nginx to listen")
        url = f"http://127.0.0.1:{port}/v1/models/iris:predict"
        host = f"kfstack-iris-{namespace}.example.com"  # KServe raw mode's host

        def predict(token: str) -> requests.Response:
            return requests.post(url, json={"instances": [[1, 2, 3, 4]]}, allow_redirects=False, timeout=10,
                                 headers={"Host": host, "Authorization": f"Bearer {token}"})

        owner, foreign, forged = predict("owner"), predict("foreign"), predict("forged")
        log = (tmp_path / "error.log").read_text()
        assert (owner.status_code, owner.json()) == (200, {"predictions": [1]}), log
        assert (foreign.status_code, foreign.text) == (403, "RBAC: access denied"), log
        assert (forged.status_code, forged.headers["Location"]) == (302, "/oauth2/start?rd=/v1/models/iris:predict")
        path = f"/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices?limit=1"
        assert asked == [("GET", path, "Bearer owner"), ("GET", path, "Bearer foreign"), ("GET", path, "Bearer forged")]
    finally:
        stop_process(proc)
