"""nginx configuration of the stand-in gateway, for the local target and for clusters alike.

It plays Istio's ingress gateway as Kubeflow configures it: /dex goes to Dex unauthenticated, every
other request is checked with oauth2-proxy (auth_request standing in for Istio's ext_authz), and
model hostnames `<isvc>.<namespace>.<domain>` reach that namespace's model server only when the
caller is the namespace's owner, as Kubeflow's per-profile AuthorizationPolicies do; anyone else
gets Istio's answer, 403 "RBAC: access denied". Upstreams are held in variables so that nginx
resolves them per request: in a cluster, Services that do not exist yet (an InferenceService's)
must not stop the gateway from starting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.config import StackConfig

MODEL_DOMAIN = "example.com"
DENY_BODY = "RBAC: access denied"


@dataclass(frozen=True)
class GatewayLayout:
    """Where the gateway listens, where it forwards, and where nginx keeps its files."""

    listen: str  # "127.0.0.1:18000" locally, "8080" in a pod
    dex: str  # host:port
    oauth2_proxy: str  # host:port
    dashboard: str  # listen address of the dashboard stand-in inside the gateway
    deny: str  # listen address of the deny server inside the gateway
    models: Mapping[str, str]  # profile namespace -> its model server, host:port (may use $isvc)
    workdir: str  # pid file and temporary bodies
    error_log: str
    access_log: str
    resolver_file: str | None = None  # a file holding a `resolver` line, where upstreams are names
    platform: str = "local-target"  # what the dashboard stand-in reports as the platform
    # In a cluster, bearer tokens on model hosts are ServiceAccount tokens (Kubeflow's machine
    # clients): the API server at this host:port decides whether one may use the namespace
    # (may it read the namespace's InferenceServices?), as Istio's per-namespace policies decide.
    token_api: str | None = None
    token_api_ca: str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    token_api_name: str = "kubernetes.default.svc"
    # Kubeflow Pipelines' API server, where it is deployed: its REST port (/pipeline/apis/ goes
    # there, as upstream's UI forwards it) and its gRPC port, which the gateway serves at
    # `grpc_listen` for the runs' pods with the identity header stripped.
    pipelines: str | None = None
    pipelines_grpc: str | None = None
    grpc_listen: str | None = None


def _auth_locations(layout: GatewayLayout) -> str:
    """oauth2-proxy's endpoints on every gateway host, and the login redirect for 401s."""
    return f"""
        location /oauth2/ {{
            set $oauth2_upstream {layout.oauth2_proxy};
            proxy_pass http://$oauth2_upstream;
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
        }}
        location = /oauth2/auth {{
            set $oauth2_upstream {layout.oauth2_proxy};
            proxy_pass http://$oauth2_upstream;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header Content-Length "";
            proxy_pass_request_body off;
        }}
        location @login {{
            return 302 /oauth2/start?rd=$request_uri;
        }}
        location @deny {{
            default_type text/plain;
            return 403 '{DENY_BODY}';
        }}"""


def _checked(upstream: str, check: str = "/oauth2/auth") -> str:
    """A location body that lets a request through only with an oauth2-proxy session or token (or,
    with the token check, a ServiceAccount token the API server accepts for the namespace)."""
    return f"""
            auth_request {check};
            error_page 401 = @login;
            error_page 403 = @deny;
            auth_request_set $auth_email $upstream_http_x_auth_request_email;
            auth_request_set $token_checked $upstream_http_audit_id;
            proxy_set_header kubeflow-userid $auth_email;
            proxy_pass {upstream};"""


def _token_locations(layout: GatewayLayout) -> str:
    """Bearer tokens to the API server, everything else to oauth2-proxy. A ServiceAccount token is
    asked, with its own rights, to list the namespace's InferenceServices: 200 lets it through (the
    API server's answer carries an Audit-Id, which the route map reads), 403 is Istio's RBAC denial,
    401 a token the cluster does not know."""
    if not layout.token_api:
        return ""
    return f"""
        location = /_kfstack/auth {{
            internal;
            if ($http_authorization ~* "^Bearer ") {{
                rewrite ^ /_kfstack/token last;
            }}
            rewrite ^ /oauth2/auth last;
        }}
        location = /_kfstack/token {{
            internal;
            set $token_api {layout.token_api};
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Accept "application/json";
            proxy_ssl_trusted_certificate {layout.token_api_ca};
            proxy_ssl_verify on;
            proxy_ssl_server_name on;
            proxy_ssl_name {layout.token_api_name};
            proxy_pass https://$token_api/apis/serving.kserve.io/v1beta1/namespaces/$profile_ns/inferenceservices?limit=1;
        }}"""


def _pipeline_locations(layout: GatewayLayout) -> str:
    """/pipeline/apis/ to KFP's API server at /apis/, as kfp.Client(host=<gateway>/pipeline) calls it.
    A session gets `kubeflow-userid` from oauth2-proxy's identity; a bearer token goes on without it
    (any client copy is dropped either way), for the API server's own TokenReview to identify."""
    if not layout.pipelines:
        return ""
    return f"""
        location /pipeline/apis/ {{
            if ($http_authorization ~* "^Bearer ") {{
                rewrite ^ /_kfstack/pipeline-token$uri last;
            }}
            set $kfp_upstream {layout.pipelines};
            rewrite ^/pipeline(/apis/.*)$ $1 break;{_checked("http://$kfp_upstream")}
        }}
        location /_kfstack/pipeline-token/ {{
            internal;
            set $kfp_upstream {layout.pipelines};
            rewrite ^/_kfstack/pipeline-token/pipeline(/apis/.*)$ $1 break;
            proxy_set_header kubeflow-userid "";
            proxy_pass http://$kfp_upstream;
        }}"""


def _pipeline_grpc_server(layout: GatewayLayout) -> str:
    """The API server's gRPC port for the runs' drivers and launchers (the cache), header stripped."""
    if not (layout.pipelines_grpc and layout.grpc_listen):
        return ""
    return f"""
    server {{  # Kubeflow Pipelines' gRPC API for the runs' pods: no caller names its own identity
        listen {layout.grpc_listen} http2;
        location / {{
            set $kfp_grpc_upstream {layout.pipelines_grpc};
            grpc_set_header kubeflow-userid "";
            grpc_pass grpc://$kfp_grpc_upstream;
        }}
    }}
"""


def nginx_conf(config: StackConfig, layout: GatewayLayout, *, domain: str = MODEL_DOMAIN) -> str:
    """The gateway. The namespace check is a map from (namespace, caller's e-mail) to an upstream:
    the owner's pair leads to the namespace's model server, every other pair to the deny server."""
    owners = {p.name: p.owner for p in config.profiles}
    # (namespace, caller's e-mail, whether the API server accepted a token for the namespace)
    routes = "\n".join(f'        "{ns}|{owners[ns]}|" {upstream};\n'
                       f'        "~^{ns}\\|[^|]*\\|.+$" {upstream};'
                       for ns, upstream in sorted(layout.models.items()) if ns in owners)
    auth = _auth_locations(layout)
    work = layout.workdir
    resolver = f"    include {layout.resolver_file};\n" if layout.resolver_file else ""
    dom = domain.replace(".", r"\.")
    # Knative's hosts (<isvc>.<namespace>.<domain>) and KServe raw mode's (<isvc>-<namespace>.<domain>,
    # its default domainTemplate), the latter split at a profile namespace's name.
    host_pattern = r"~^(?<isvc>[a-z0-9-]+)\.(?<profile_ns>[a-z0-9-]+)\." + dom + "$"
    names = "|".join(sorted(owners)) or "-"
    raw_pattern = r"~^(?<isvc>[a-z0-9-]+)-(?<profile_ns>" + names + r")\." + dom + "$"
    return f"""# Generated by kubeflow-stacks: the stand-in gateway (Istio's ingress gateway's role).
worker_processes 1;
pid {work}/nginx.pid;
error_log {layout.error_log} info;
events {{ worker_connections 256; }}
http {{
    access_log {layout.access_log};
{resolver}    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    # Redirects stay relative: behind a port-forward the client's port is not the one nginx listens on.
    absolute_redirect off;
    # Bodies and answers stay in memory: workers may not be able to write the temp paths.
    client_max_body_size 16m;
    client_body_buffer_size 16m;
    proxy_buffer_size 64k;
    proxy_buffers 64 64k;
    proxy_max_temp_file_size 0;

    map "$profile_ns|$auth_email|$token_checked" $model_upstream {{
        default {layout.deny};
{routes}
    }}

    server {{  # the Central Dashboard's stand-in: says who the gateway says you are
        listen {layout.dashboard};
        location = /api/workgroup/env-info {{
            default_type application/json;
            return 200 '{{"user": "$http_kubeflow_userid", "platform": {{"provider": "{layout.platform}"}}}}';
        }}
        location / {{
            default_type text/html;
            return 200 '<html><body><h1>Kubeflow ({layout.platform})</h1><p>$http_kubeflow_userid</p></body></html>';
        }}
    }}

    server {{  # what Istio answers when no AuthorizationPolicy allows a request
        listen {layout.deny};
        location / {{
            default_type text/plain;
            return 403 '{DENY_BODY}';
        }}
    }}

    server {{  # the gateway's default host: Dex, oauth2-proxy and the dashboard
        listen {layout.listen} default_server;
        server_name _;
{auth}
        location /dex/ {{
            set $dex_upstream {layout.dex};
            proxy_pass http://$dex_upstream;
            proxy_set_header Host $http_host;
        }}
{_pipeline_locations(layout)}
        location / {{{_checked(f"http://{layout.dashboard}")}
        }}
    }}
{_pipeline_grpc_server(layout)}
    server {{  # InferenceService hosts: <isvc>.<namespace>.{domain} and <isvc>-<namespace>.{domain}
        listen {layout.listen};
        server_name "{host_pattern}" "{raw_pattern}";
{auth}
{_token_locations(layout)}
        location / {{{_checked("http://$model_upstream", "/_kfstack/auth" if layout.token_api else "/oauth2/auth")}
        }}
    }}
}}
"""
