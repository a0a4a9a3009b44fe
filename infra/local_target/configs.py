"""Everything the local target writes to disk, as pure functions of its settings.

Dex's config and oauth2-proxy's settings come from `infra.auth.generate`, the generator that also
writes the stack's ConfigMaps, with only the endpoints (and Dex's storage) changed: the cluster and
the local target cannot drift. The nginx gateway is the stand-in gateway (`infra.gateway.nginx`),
the same configuration a cluster without Istio runs, with 127.0.0.1 addresses.
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
from infra.gateway.nginx import MODEL_DOMAIN, GatewayLayout
from infra.gateway.nginx import nginx_conf as gateway_conf

STACK_NAME = "local"
USER_EMAILS = ("user@example.com", "user2@example.com")


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


def nginx_conf(config: StackConfig, ports: Ports, *, workdir: str, domain: str = MODEL_DOMAIN) -> str:
    """The gateway on 127.0.0.1: the stand-in gateway's configuration with local addresses."""
    local = lambda port: f"127.0.0.1:{port}"  # noqa: E731
    layout = GatewayLayout(listen=local(ports.gateway), dex=local(ports.dex), oauth2_proxy=local(ports.oauth2_proxy),
                           dashboard=local(ports.dashboard), deny=local(ports.deny),
                           models={ns: local(port) for ns, port in ports.models.items()},
                           workdir=f"{workdir}/tmp", error_log=f"{workdir}/logs/nginx-error.log",
                           access_log=f"{workdir}/logs/nginx-access.log")
    return gateway_conf(config, layout, domain=domain)


def profile_for(config: StackConfig, email: str) -> str:
    """The profile namespace a user owns (the config's profiles, one per user by default)."""
    return next(p.name for p in config.profiles if p.owner == email)
