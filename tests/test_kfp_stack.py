"""Kubeflow Pipelines in the kind-local stack: T1 on the real v1.11.0 render of the stack file (what
runs, what is left out, images, the API server's identity settings, NetworkPolicies), T0 on the
gateway's pipeline routes with the real nginx and stand-in upstreams."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.config import ConfigError, KindClusterConfig, parse_stack_config
from infra.errors import UserError
from infra.gateway.nginx import nginx_conf
from infra.gateway.standin import NAME, NAMESPACE, cluster_layout
from infra.manifests.objects import Obj, Rendered
from infra.manifests.render import render
from infra.patches import parts, pipelines
from infra.toolchain import ToolMissingError as MissingBinary
from infra.toolchain import find_binary as binary
from smoke_tests.process import free_port, port_open, spawn, stop_process
from smoke_tests.wait import wait_until
from tests.test_live_kind_stack import stack_raw

RUNS = {"ml-pipeline", "ml-pipeline-persistenceagent", "workflow-controller", "mysql", "seaweedfs",
        "metadata-grpc-deployment", "kubeflow-pipelines-profile-controller"}
LEFT_OUT = {"ml-pipeline-ui", "metadata-envoy-deployment", "metadata-writer", "ml-pipeline-viewer-crd",
            "ml-pipeline-visualizationserver", "cache-server", "ml-pipeline-scheduledworkflow"}


@pytest.fixture(scope="module")
def kind_local(manifests_tree: Path) -> Rendered:
    return render(parse_stack_config("kind-local", stack_raw("kflocal"), set()), manifests_tree)


def _containers(obj: Obj) -> list[Obj]:
    spec = obj.get("spec", {})
    template = spec.get("template", {}).get("spec", {}) if isinstance(spec, dict) else {}
    return [*template.get("initContainers", []), *template.get("containers", [])]


def _env(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_kind_local_runs_what_a_v2_run_needs_and_leaves_out_the_rest(kind_local: Rendered) -> None:
    workloads = {o["metadata"]["name"] for o in kind_local.objects
                 if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"].get("namespace") == "kubeflow"}
    assert RUNS | {"metacontroller"} <= workloads
    assert not workloads & LEFT_OUT
    kinds = {(o["kind"], o["metadata"]["name"]) for o in kind_local.objects}
    assert ("MutatingWebhookConfiguration", "cache-webhook-kubeflow") not in kinds
    assert ("Certificate", "kfp-cache-cert") not in kinds
    # The CRDs stay: the aggregated roles name them, and the API server knows recurring runs.
    assert {("CustomResourceDefinition", "scheduledworkflows.kubeflow.org"),
            ("CustomResourceDefinition", "viewers.kubeflow.org"),
            ("CustomResourceDefinition", "workflows.argoproj.io"),
            ("DecoratorController", "kubeflow-pipelines-profile-controller")} <= kinds
    assert {f"left-out:pipelines/{p}" for p in ("ui", "cache", "scheduledworkflow")} <= {
        a.split("(")[0] for a in kind_local.adjustments}


def test_every_image_the_pipelines_run_uses_is_preloaded_and_never_pulled(kind_local: Rendered) -> None:
    cfg = parse_stack_config("kind-local", stack_raw("kflocal"), set())
    assert isinstance(cfg.cluster, KindClusterConfig)
    preloaded = set(cfg.cluster.kind.preload_images)
    containers = [c for o in kind_local.objects for c in _containers(o)]
    assert {c["image"] for c in containers} - preloaded == set()
    assert {c.get("imagePullPolicy") for c in containers} == {"IfNotPresent"}
    # The images the API server and Argo put in the runs' pods, named in env and args, not containers.
    api = next(c for o in kind_local.find("Deployment", "ml-pipeline", "kubeflow") for c in _containers(o))
    controller = next(c for o in kind_local.find("Deployment", "workflow-controller") for c in _containers(o))
    executor = controller["args"][controller["args"].index("--executor-image") + 1]
    assert {_env(api)["V2_DRIVER_IMAGE"], _env(api)["V2_LAUNCHER_IMAGE"], executor} <= preloaded
    assert "kfstack/kfp-runtime:py3.11-kfp2.15.0" in preloaded


def test_argos_executor_states_requests_where_a_profile_has_a_quota(kind_local: Rendered, manifests_tree: Path
                                                                    ) -> None:
    """kind-local's profile has a cpu and memory quota: without requests Argo's init and wait
    containers would have every run's pods refused."""
    import yaml

    (argo,) = kind_local.find("ConfigMap", "workflow-controller-configmap", "kubeflow")
    executor = yaml.safe_load(argo["data"]["executor"])
    assert executor == {"imagePullPolicy": "IfNotPresent", "resources": pipelines.EXECUTOR_RESOURCES}
    raw = stack_raw("kflocal")
    raw["profiles"] = [{k: v for k, v in p.items() if k != "quota"} for p in raw["profiles"]]
    plain = render(parse_stack_config("kind-local", raw, set()), manifests_tree)
    (upstream,) = plain.find("ConfigMap", "workflow-controller-configmap", "kubeflow")
    assert "resources" not in yaml.safe_load(upstream["data"]["executor"])  # no quota: upstream's entry


def test_kind_local_names_its_step_image_as_an_output(kind_local: Rendered) -> None:
    from infra.outputs import stack_outputs

    cfg = parse_stack_config("kind-local", stack_raw("kflocal"), set())
    assert isinstance(cfg.cluster, KindClusterConfig)
    image = stack_outputs(cfg, kind_local)["pipelineImage"]
    assert image == "kfstack/kfp-runtime:py3.11-kfp2.15.0" and image in cfg.cluster.kind.preload_images
    without = dataclasses.replace(kind_local, components=[c for c in kind_local.components if c != "pipelines"])
    assert stack_outputs(cfg, without)["pipelineImage"] is None


def test_the_api_server_identifies_tokens_itself_and_runs_call_it_through_the_gateway(kind_local: Rendered) -> None:
    api = next(c for o in kind_local.find("Deployment", "ml-pipeline", "kubeflow") for c in _containers(o))
    env = _env(api)
    assert env["KUBEFLOW_USERID_HEADER"] == "kubeflow-userid"
    assert env["TOKEN_REVIEW_AUDIENCE"] == "https://kubernetes.default.svc"  # kind's issuer: its tokens' audience
    assert env["ML_PIPELINE_SERVICE_NAME"] == pipelines.RUNS_SERVICE
    # Without the visualization Service Kubernetes gives no address, and the API server stops without one.
    assert env["ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST"] == "ml-pipeline-visualizationserver"
    # KFP reviews one audience: its persistence agent's token asks for the same one, or its reports fail.
    (agent,) = kind_local.find("Deployment", "ml-pipeline-persistenceagent", "kubeflow")
    assert [s["serviceAccountToken"]["audience"] for v in agent["spec"]["template"]["spec"]["volumes"]
            for s in v["projected"]["sources"]] == ["https://kubernetes.default.svc"]
    (runs,) = kind_local.find("Service", pipelines.RUNS_SERVICE, "kubeflow")
    assert runs["spec"]["externalName"] == f"{NAME}.{NAMESPACE}.svc.cluster.local"
    (gateway,) = kind_local.find("Service", NAME, NAMESPACE)
    assert {p["port"] for p in gateway["spec"]["ports"]} == {80, pipelines.API_GRPC_PORT}
    (conf,) = [o["data"]["nginx.conf"] for o in kind_local.find("ConfigMap", NAME, NAMESPACE)]
    assert "location /pipeline/apis/" in conf and "grpc_set_header kubeflow-userid \"\";" in conf


def test_only_the_kubeflow_namespace_and_the_gateway_reach_the_api_server(kind_local: Rendered) -> None:
    (api,) = kind_local.find("NetworkPolicy", "kfstack-ml-pipeline", "kubeflow")
    assert api["spec"]["podSelector"] == {"matchLabels": {"app": "ml-pipeline"}}
    sources = [(peer["namespaceSelector"]["matchLabels"], rule.get("ports"))
               for rule in api["spec"]["ingress"] for peer in rule["from"]]
    assert sources == [({"kubernetes.io/metadata.name": "kubeflow"}, None),
                       ({"kubernetes.io/metadata.name": NAMESPACE}, [{"port": 8888}, {"port": 8887}]),
                       ({"app.kubernetes.io/part-of": "kubeflow-profile"}, [{"port": 8887}])]
    (database,) = kind_local.find("NetworkPolicy", "kfstack-mysql", "kubeflow")
    assert [p["namespaceSelector"]["matchLabels"] for r in database["spec"]["ingress"] for p in r["from"]] == [
        {"kubernetes.io/metadata.name": "kubeflow"}]
    pods = {(o["metadata"].get("namespace"), lbl) for o in kind_local.objects if o["kind"] == "Deployment"
            for lbl in [o["spec"]["template"]["metadata"].get("labels", {}).get("app")]}
    assert ("kubeflow", "ml-pipeline") in pods and ("kubeflow", "mysql") in pods  # the policies select real pods


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all((labels.get(e["key"]) in e["values"]) == (e["operator"] == "In")
               for e in selector.get("matchExpressions", []))


def _admitted(rendered: Rendered, namespace: str, pod_labels: dict[str, str], source: str | dict[str, str],
              port: int) -> bool:
    """NetworkPolicy's ingress rule for one connection: allowed when no policy selects the pod, or
    some policy that selects it has a rule naming the source's namespace (or, by a pod selector, the
    pod's own) and the port (or no ports)."""
    policies = [p for p in rendered.find("NetworkPolicy", namespace=namespace)
                if _selects(p["spec"]["podSelector"], pod_labels) and "Ingress" in p["spec"]["policyTypes"]]
    labels = source if isinstance(source, dict) else {"kubernetes.io/metadata.name": source}

    def peer_ok(peer: Obj) -> bool:
        if "namespaceSelector" in peer:
            return _selects(peer["namespaceSelector"], labels)
        return labels["kubernetes.io/metadata.name"] == namespace  # a bare podSelector: its own namespace
    return not policies or any(
        any(peer_ok(peer) for peer in rule.get("from", [])) and (not rule.get("ports") or any(
            p.get("port") == port for p in rule["ports"]))
        for policy in policies for rule in policy["spec"].get("ingress", []))


def test_a_profile_namespace_reaches_the_api_servers_grpc_port_only(kind_local: Rendered) -> None:
    """A run's launcher (profile namespace) calls ml-pipeline's gRPC port directly; the REST port,
    where a forged identity header would be read, stays closed to it and to any other namespace."""
    (api,) = kind_local.find("Deployment", "ml-pipeline", "kubeflow")
    labels = api["spec"]["template"]["metadata"]["labels"]
    profile = {"kubernetes.io/metadata.name": "kubeflow-user-example-com",
               "app.kubernetes.io/part-of": "kubeflow-profile"}

    def admitted(source: dict[str, str], port: int) -> bool:
        return _admitted(kind_local, "kubeflow", labels, source, port)
    assert admitted(profile, 8887) and not admitted(profile, 8888)
    other = {"kubernetes.io/metadata.name": "default"}
    assert not admitted(other, 8887) and not admitted(other, 8888)
    assert admitted({"kubernetes.io/metadata.name": "kubeflow"}, 8888)


def test_the_profile_hook_reaches_every_port_of_the_store_it_calls(kind_local: Rendered) -> None:
    """The hook makes each namespace's key on SeaweedFS's IAM port and sets its bucket rules on S3:
    where NetworkPolicy is enforced (kind-local's agent), both must be admitted from its namespace."""
    (hook,) = [c for o in kind_local.find("Deployment", "kubeflow-pipelines-profile-controller", "kubeflow")
               for c in _containers(o)]
    urls = [v for k, v in _env(hook).items() if k.endswith("ENDPOINT_URL")]
    (service,) = kind_local.find("Service", "seaweedfs", "kubeflow")
    targets = {p["port"]: p.get("targetPort", p["port"]) for p in service["spec"]["ports"]}
    ports = {targets[int(u.strip().rsplit(":", 1)[1])] for u in urls}
    assert ports == {8111, 8333}
    (store,) = kind_local.find("Deployment", "seaweedfs", "kubeflow")
    labels = store["spec"]["template"]["metadata"]["labels"]
    assert {p: _admitted(kind_local, "kubeflow", labels, "kubeflow", p) for p in ports} == {8111: True, 8333: True}
    # Still closed to a namespace that is not a profile's (upstream's own rule for S3).
    assert not _admitted(kind_local, "kubeflow", labels, "kfstack-gateway", 8333)


@pytest.mark.parametrize(("key", "name"), [("exclude", "pipelines/nope"), ("include", "pipelines/ui")])
def test_an_unknown_part_or_an_included_part_is_refused_with_the_key(key: str, name: str) -> None:
    raw = stack_raw("kflocal")
    raw["kubeflow"][key] = [*raw["kubeflow"].get(key, []), name]
    with pytest.raises(ConfigError, match=rf"kubeflow\.{key}\[\d+\]"):
        parse_stack_config("kind-local", raw, set())


def test_a_part_whose_objects_the_tree_lacks_is_refused_not_kept(tmp_path: Path) -> None:
    cfg = parse_stack_config("kind-local", stack_raw("kflocal"), set())
    rendered = Rendered(objects=[{"kind": "Deployment", "metadata": {"name": "ml-pipeline-ui"}}], release="v1.11.0",
                        components=["pipelines"], tree=tmp_path,
                        left_out={"pipelines/ui": ("Deployment/ml-pipeline-ui", "Service/ml-pipeline-ui")})
    with pytest.raises(UserError, match="pipelines/ui should have Service/ml-pipeline-ui"):
        parts.apply(rendered, cfg)


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return None

    def answer(self, code: int, headers: dict[str, str] | None = None, body: bytes = b"{}") -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _nginx(tmp_path: Path, **layout: Any) -> tuple[Any, int]:
    try:
        nginx = binary("nginx")
    except MissingBinary as exc:
        pytest.skip(f"NOT RUN: nginx is not installed here ({exc})")
    cfg = parse_stack_config("kind-local", stack_raw("kflocal"), set())
    port = free_port()
    base = cluster_layout(cfg, pipelines=True)
    conf = nginx_conf(cfg, dataclasses.replace(
        base, listen=f"127.0.0.1:{port}", dashboard=f"127.0.0.1:{free_port()}", deny=f"127.0.0.1:{free_port()}",
        workdir=str(tmp_path), error_log=str(tmp_path / "error.log"), access_log=str(tmp_path / "access.log"),
        resolver_file=None, token_api_ca="/etc/ssl/certs/ca-certificates.crt", **layout))
    (tmp_path / "nginx.conf").write_text(conf, encoding="utf-8")
    proc = spawn([nginx, "-p", tmp_path, "-c", tmp_path / "nginx.conf", "-e", tmp_path / "error.log",
                  "-g", "daemon off;"])
    wait_until(lambda: (port_open(port), None), timeout=30, interval=0.2, what="nginx to listen")
    return proc, port


def test_pipeline_api_calls_carry_the_sessions_identity_and_tokens_go_on_without_one(tmp_path: Path) -> None:
    """The real nginx with the cluster's configuration: a session's call reaches the API server at
    /apis/ with `kubeflow-userid` from oauth2-proxy, whatever the client sent; a bearer token's call
    carries the token and no identity header; no session is refused before the API server."""
    seen: list[tuple[str, str | None, str | None]] = []

    class OAuth2Proxy(_Quiet):
        def do_GET(self) -> None:
            ok = "_oauth2_proxy=alice" in self.headers.get("Cookie", "")
            self.answer(202 if ok else 401, {"X-Auth-Request-Email": "alice@example.org"} if ok else {})

    class Api(_Quiet):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("kubeflow-userid"), self.headers.get("Authorization")))
            self.answer(200)

    oauth2, api = _serve(OAuth2Proxy), _serve(Api)
    proc, port = _nginx(tmp_path, oauth2_proxy=f"127.0.0.1:{oauth2}", pipelines=f"127.0.0.1:{api}",
                        pipelines_grpc=None, grpc_listen=None)
    try:
        url = f"http://127.0.0.1:{port}/pipeline/apis/v2beta1/runs?namespace=ns&page_size=1"
        forged = {"kubeflow-userid": "admin@example.org"}
        session = requests.get(url, headers={**forged, "Cookie": "_oauth2_proxy=alice"}, timeout=10)
        token = requests.get(url, headers={**forged, "Authorization": "Bearer sa-token"}, timeout=10)
        anonymous = requests.get(url, headers=forged, allow_redirects=False, timeout=10)
        log = (tmp_path / "error.log").read_text()
        assert (session.status_code, token.status_code) == (200, 200), log
        assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/oauth2/start")
        path = "/apis/v2beta1/runs?namespace=ns&page_size=1"
        assert seen == [(path, "alice@example.org", None), (path, None, "Bearer sa-token")]
    finally:
        stop_process(proc)


def test_runs_pods_reach_the_grpc_api_without_an_identity_of_their_own(tmp_path: Path) -> None:
    """The gateway's gRPC port (the runs' driver and launcher call the cache there): the real nginx
    forwards a call to the API server's gRPC port and drops a `kubeflow-userid` the caller set."""
    grpc = pytest.importorskip("grpc", reason="NOT RUN: grpcio is not installed")
    seen: list[dict[str, str]] = []

    def echo(request: bytes, context: Any) -> bytes:
        seen.append(dict(context.invocation_metadata()))
        return request

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler("api.TaskService", {
        "CreateTaskV1": grpc.unary_unary_rpc_method_handler(echo)})
    server.add_generic_rpc_handlers((handler,))
    backend = server.add_insecure_port("127.0.0.1:0")
    server.start()
    grpc_port = free_port()
    proc, _ = _nginx(tmp_path, oauth2_proxy="127.0.0.1:1", pipelines="127.0.0.1:1",
                     pipelines_grpc=f"127.0.0.1:{backend}", grpc_listen=f"127.0.0.1:{grpc_port}")
    try:
        wait_until(lambda: (port_open(grpc_port), None), timeout=30, interval=0.2, what="nginx's gRPC port")
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            call = channel.unary_unary("/api.TaskService/CreateTaskV1")
            answer = call(b"task", metadata=(("kubeflow-userid", "admin@example.org"), ("x-run", "r1")), timeout=10)
        assert answer == b"task", (tmp_path / "error.log").read_text()
        assert seen and seen[0].get("x-run") == "r1" and "kubeflow-userid" not in seen[0]
    finally:
        stop_process(proc)
        server.stop(None)
