"""One generator for Dex's config and oauth2-proxy's, so their shared settings cannot drift.

The same `AuthSettings` feeds the in-cluster objects (ConfigMaps and Secrets patched into the
rendered manifests) and the local conformance target (files and environment for the real
binaries). Only the endpoints differ between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.auth.passwords import user_hash
from infra.config import AuthConfig

DEX_PATH_PREFIX = "/dex"
# Upstream's scope; clients still handle Dex's approval page, which offline_access would bring.
SCOPES = ("profile", "email", "groups", "openid")


@dataclass(frozen=True)
class Endpoints:
    """Where Dex lives as seen by oauth2-proxy (internal) and by browsers (issuer, login path)."""

    issuer: str  # Dex's issuer URL: the `iss` of its tokens, which every verifier compares
    dex_listen: str = "0.0.0.0:5556"
    login_url: str = "/dex/auth"  # relative, so the browser stays on the gateway
    cookie_secure: bool = False
    # Where oauth2-proxy reaches Dex's token and keys endpoints, when not under the issuer (a
    # public issuer URL, while oauth2-proxy talks to Dex's Service inside the cluster).
    internal: str | None = None

    @property
    def token_url(self) -> str:
        return f"{self.internal or self.issuer}/token"

    @property
    def keys_url(self) -> str:
        return f"{self.internal or self.issuer}/keys"


DEX_SERVICE_URL = "http://dex.auth.svc.cluster.local:5556"


def in_cluster(issuer: str) -> Endpoints:
    """Endpoints inside the cluster for a stack's issuer (`auth.issuer`): Dex serves under the
    issuer's path, which the gateway routes to it, so its Service answers at that path too."""
    return Endpoints(issuer=issuer, internal=DEX_SERVICE_URL + DEX_PATH_PREFIX)


def password_env_name(index: int) -> str:
    """Environment variable that carries user `index`'s hash into Dex (upstream's name first)."""
    return "DEX_USER_PASSWORD" if index == 0 else f"DEX_USER_PASSWORD_{index}"


def dex_config(auth: AuthConfig, endpoints: Endpoints, *, storage: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
    """Dex's config.yaml. Holds no secrets: hashes and the client secret come from environment."""
    config: dict[str, Any] = {
        "issuer": endpoints.issuer,
        "storage": dict(storage) if storage else {"type": "kubernetes", "config": {"inCluster": True}},
        "web": {"http": endpoints.dex_listen},
        "logger": {"level": "info", "format": "text"},
        # Kubeflow asks for offline_access, so Dex still shows its approval page; clients handle it.
        "oauth2": {"skipApprovalScreen": True},
        "enablePasswordDB": True,
        "staticPasswords": [
            {"email": u.email, "hashFromEnv": password_env_name(i), "username": u.username,
             "userID": u.user_id}
            for i, u in enumerate(auth.users)
        ],
        "staticClients": [
            {"idEnv": "OIDC_CLIENT_ID", "secretEnv": "OIDC_CLIENT_SECRET",
             "redirectURIs": list(auth.redirect_uris), "name": "Kubeflow"},
        ],
    }
    if auth.connectors:
        config["connectors"] = [dict(c) for c in auth.connectors]
    return config


def dex_environment(auth: AuthConfig, stack: str) -> dict[str, str]:
    """Secret environment for Dex: every user's bcrypt hash and the OIDC client's credentials."""
    env = {password_env_name(i): user_hash(u, stack).reveal() for i, u in enumerate(auth.users)}
    env.update(oidc_client_environment(auth))
    return env


def password_hashes(auth: AuthConfig, stack: str) -> dict[str, str]:
    """The `dex-passwords` Secret's data: one hash per user, keyed by its environment name."""
    return {password_env_name(i): user_hash(u, stack).reveal() for i, u in enumerate(auth.users)}


def oidc_client_environment(auth: AuthConfig) -> dict[str, str]:
    return {"OIDC_CLIENT_ID": auth.client_id, "OIDC_CLIENT_SECRET": auth.client_secret.reveal()}


def oauth2_proxy_secret(auth: AuthConfig) -> dict[str, str]:
    """The oauth2-proxy Secret's data, in upstream's key names."""
    return {"client-id": auth.client_id, "client-secret": auth.client_secret.reveal(),
            "cookie-secret": auth.cookie_secret.reveal()}


def oauth2_proxy_settings(auth: AuthConfig, endpoints: Endpoints) -> dict[str, Any]:
    """oauth2-proxy's settings (no secrets: those are passed as flags or environment)."""
    return {
        "provider": "oidc",
        "oidc_issuer_url": endpoints.issuer,
        "scope": " ".join(SCOPES),
        "email_domains": ["*"],
        "upstreams": ["static://200"],
        "skip_auth_routes": [f"^{DEX_PATH_PREFIX}/"],
        "api_routes": ["/api/", "/apis/", "^/ml_metadata"],
        # Skipping discovery lets the login URL stay relative to the gateway, as upstream does.
        "skip_oidc_discovery": True,
        "login_url": endpoints.login_url,
        "redeem_url": endpoints.token_url,
        "oidc_jwks_url": endpoints.keys_url,
        "skip_provider_button": False,
        "provider_display_name": "Dex",
        "prompt": "none",
        "set_authorization_header": True,
        "set_xauthrequest": True,
        "cookie_name": "oauth2_proxy_kubeflow",
        "cookie_expire": "24h",
        "cookie_refresh": 0,
        "cookie_secure": endpoints.cookie_secure,
        "code_challenge_method": "S256",
        "redirect_url": auth.redirect_uris[0],
        "relative_redirect_url": True,
    }


def render_oauth2_proxy_cfg(settings: Mapping[str, Any]) -> str:
    """oauth2-proxy's config file format: one `key = value` per line, TOML-style values."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list | tuple):
            return "[ " + ", ".join(value(x) for x in v) + " ]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f"{k} = {value(v)}\n" for k, v in settings.items())
