"""Everything the local target writes to disk, as pure functions of its settings.

Dex's config and oauth2-proxy's settings come from `infra.auth.generate`, the generator that also
writes the stack's ConfigMaps, with only the endpoints (and Dex's storage) changed: the cluster and
the local target cannot drift. The nginx gateway plays Istio's ingress gateway: /dex goes to Dex
unauthenticated, everything else is checked with oauth2-proxy (auth_request standing in for
Istio's ext_authz), and model hostnames `<isvc>.<namespace>.<domain>` are routed to that
namespace's model server only when the caller is the namespace's owner, as Kubeflow's per-profile
AuthorizationPolicies do; anyone else gets Istio's answer, 403 "RBAC: access denied".
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from infra.auth.generate import (
    Endpoints,
    dex_config,
    dex_environment,
    oauth2_proxy_secret,
    oauth2_proxy_settings,
    render_oauth2_proxy_cfg,
)
from infra.config import StackConfig, parse_stack_config

STACK_NAME = "local"
MODEL_DOMAIN = "example.com"
USER_EMAILS = ("user@example.com", "user2@example.com")
DENY_BODY = "RBAC: access denied"


@dataclass(frozen=True)
class Ports:
    gateway: int
    dex: int
    oauth2_proxy: int
    dashboard: int
    deny: int
    models: Mapping[str, int]  # profile namespace -> its model server's port


def new_credentials() -> dict[str, str]:
    """Fresh random secrets for one run of the target: nothing fixed, nothing public."""
    creds = {f"password:{email}": secrets.token_urlsafe(15) for email in USER_EMAILS}
    creds["client_secret"] = secrets.token_urlsafe(24)
    creds["cookie_secret"] = secrets.token_hex(16)  # 32 characters, as oauth2-proxy wants
    return creds


def stack_config(creds: Mapping[str, str]) -> StackConfig:
    """The local target's users and OIDC client, validated by the same parser as any stack."""
    raw = {
        "cluster": {"provider": "sim"},
        "auth": {
            "users": [{"email": e, "password": creds[f"password:{e}"]} for e in USER_EMAILS],
            "oidcClient": {"secret": creds["client_secret"]},
            "cookieSecret": creds["cookie_secret"],
        },
    }
    return parse_stack_config(STACK_NAME, raw, secret_keys={"auth"})


def endpoints(ports: Ports) -> Endpoints:
    return Endpoints(issuer=f"http://127.0.0.1:{ports.gateway}/dex",
                     dex_listen=f"127.0.0.1:{ports.dex}", login_url="/dex/auth")


def dex_files(config: StackConfig, ports: Ports) -> tuple[dict[str, object], dict[str, str]]:
    """Dex's config (memory storage: the target is thrown away) and its secret environment."""
    return (dex_config(config.auth, endpoints(ports), storage={"type": "memory"}),
            dex_environment(config.auth, config.stack))


def oauth2_proxy_files(config: StackConfig, ports: Ports) -> tuple[str, list[str], dict[str, str]]:
    """oauth2-proxy's config file, its command-line flags and its secret environment.

    The flags are what Kubeflow's Deployment adds to the generated file: the listen address, and
    bearer tokens accepted (upstream's ENABLE_M2M_TOKENS parameter), here for Dex's own ID tokens.
    """
    cfg = render_oauth2_proxy_cfg(oauth2_proxy_settings(config.auth, endpoints(ports)))
    flags = [f"--http-address=127.0.0.1:{ports.oauth2_proxy}", "--reverse-proxy=true",
             "--skip-jwt-bearer-tokens=true"]
    secret = oauth2_proxy_secret(config.auth)
    env = {"OAUTH2_PROXY_CLIENT_ID": secret["client-id"],
           "OAUTH2_PROXY_CLIENT_SECRET": secret["client-secret"],
           "OAUTH2_PROXY_COOKIE_SECRET": secret["cookie-secret"]}
    return cfg, flags, env


def _auth_locations(ports: Ports) -> str:
    """oauth2-proxy's endpoints on every gateway host, and the login redirect for 401s."""
    return f"""
        location /oauth2/ {{
            proxy_pass http://127.0.0.1:{ports.oauth2_proxy};
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
        }}
        location = /oauth2/auth {{
            proxy_pass http://127.0.0.1:{ports.oauth2_proxy};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header Content-Length "";
            proxy_pass_request_body off;
        }}
        location @login {{
            return 302 /oauth2/start?rd=$request_uri;
        }}"""


def _checked(upstream: str) -> str:
    """A location body that lets a request through only with an oauth2-proxy session or token."""
    return f"""
            auth_request /oauth2/auth;
            error_page 401 = @login;
            auth_request_set $auth_email $upstream_http_x_auth_request_email;
            proxy_set_header kubeflow-userid $auth_email;
            proxy_pass {upstream};"""


def nginx_conf(config: StackConfig, ports: Ports, *, workdir: str, domain: str = MODEL_DOMAIN) -> str:
    """The gateway. The namespace check is a map from (namespace, caller's e-mail) to an upstream:
    the owner's pair leads to the namespace's model server, every other pair to the deny server."""
    owners = {p.name: p.owner for p in config.profiles}
    routes = "\n".join(f'        "{ns}|{owners[ns]}" 127.0.0.1:{port};'
                       for ns, port in sorted(ports.models.items()))
    auth = _auth_locations(ports)
    host_pattern = r"~^(?<isvc>[a-z0-9-]+)\.(?<profile_ns>[a-z0-9-]+)\." + domain.replace(".", r"\.") + "$"
    return f"""# Generated by kfstack local up: the local target's gateway (Istio's role in a cluster).
worker_processes 1;
pid {workdir}/run/nginx.pid;
error_log {workdir}/logs/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/logs/nginx-access.log;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    # Bodies and answers stay in memory: workers may not be able to write the temp paths.
    client_max_body_size 16m;
    client_body_buffer_size 16m;
    proxy_buffer_size 64k;
    proxy_buffers 64 64k;
    proxy_max_temp_file_size 0;

    map "$profile_ns|$auth_email" $model_upstream {{
        default 127.0.0.1:{ports.deny};
{routes}
    }}

    server {{  # the Central Dashboard's stand-in: says who the gateway says you are
        listen 127.0.0.1:{ports.dashboard};
        location = /api/workgroup/env-info {{
            default_type application/json;
            return 200 '{{"user": "$http_kubeflow_userid", "platform": {{"provider": "local-target"}}}}';
        }}
        location / {{
            default_type text/html;
            return 200 '<html><body><h1>Kubeflow (local target)</h1><p>$http_kubeflow_userid</p></body></html>';
        }}
    }}

    server {{  # what Istio answers when no AuthorizationPolicy allows a request
        listen 127.0.0.1:{ports.deny};
        location / {{
            default_type text/plain;
            return 403 '{DENY_BODY}';
        }}
    }}

    server {{  # the gateway's default host: Dex, oauth2-proxy and the dashboard
        listen 127.0.0.1:{ports.gateway} default_server;
        server_name _;
{auth}
        location /dex/ {{
            proxy_pass http://127.0.0.1:{ports.dex};
            proxy_set_header Host $http_host;
        }}
        location / {{{_checked(f"http://127.0.0.1:{ports.dashboard}")}
        }}
    }}

    server {{  # InferenceService hosts: <isvc>.<namespace>.{domain}
        listen 127.0.0.1:{ports.gateway};
        server_name "{host_pattern}";
{auth}
        location / {{{_checked("http://$model_upstream")}
        }}
    }}
}}
"""


def profile_for(config: StackConfig, email: str) -> str:
    """The profile namespace a user owns (the config's profiles, one per user by default)."""
    return next(p.name for p in config.profiles if p.owner == email)
