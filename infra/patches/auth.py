"""Auth: Dex's users and OIDC client, and oauth2-proxy's settings, from the one generator.

Upstream keeps the demo user's hash in the `dex-passwords` Secret and the client credentials in
`dex-oidc-client` and the `oauth2-proxy-*` Secret; Dex reads both through `envFrom`. We replace
their contents, and put a checksum of the settings on both Deployments so a change rolls them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from infra.auth.generate import (
    DEX_PATH_PREFIX,
    DEX_SERVICE_URL,
    dex_config,
    in_cluster,
    oauth2_proxy_secret,
    oauth2_proxy_settings,
    oidc_client_environment,
    password_hashes,
    render_oauth2_proxy_cfg,
)
from infra.config import StackConfig
from infra.manifests.objects import Rendered

CHECKSUM_ANNOTATION = "kubeflow-stacks.io/auth-checksum"
Obj = dict[str, Any]


def _set_secret(obj: Obj, data: dict[str, str]) -> None:
    obj.pop("data", None)
    obj["stringData"] = dict(sorted(data.items()))


def _one(rendered: Rendered, kind: str, namespace: str, name: str, *, prefix: bool = False) -> Obj | None:
    found = [o for o in rendered.find(kind, namespace=namespace)
             if o["metadata"]["name"] == name
             or (prefix and o["metadata"]["name"].startswith(name + "-") and kind in ("Secret", "ConfigMap")
                 and len(o["metadata"]["name"]) == len(name) + 11)]
    if len(found) > 1:
        raise ValueError(f"expected one {kind} {namespace}/{name}, found {len(found)}")
    return found[0] if found else None


def checksum(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _annotate(deployment: Obj | None, value: str) -> None:
    if deployment is None:
        return
    meta = deployment["spec"]["template"].setdefault("metadata", {})
    meta.setdefault("annotations", {})[CHECKSUM_ANNOTATION] = value


def _set_token_issuer(rendered: Rendered, issuer: str) -> bool:
    """Istio verifies Dex's tokens at the gateway (RequestAuthentication `dex-jwt`): its rule for
    Dex must name the issuer Dex now puts in tokens; the keys stay at Dex's Service."""
    upstream_issuer = DEX_SERVICE_URL + DEX_PATH_PREFIX
    changed = False
    for obj in rendered.find("RequestAuthentication"):
        for rule in obj.get("spec", {}).get("jwtRules") or []:
            if rule.get("issuer") == upstream_issuer and issuer != upstream_issuer:
                rule["issuer"] = issuer
                rule.setdefault("jwksUri", upstream_issuer + "/keys")
                changed = True
    return changed


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    auth = cfg.auth
    endpoints = in_cluster(auth.issuer)
    changed = _set_token_issuer(rendered, auth.issuer)
    dex_cm = _one(rendered, "ConfigMap", "auth", "dex")
    if dex_cm is not None:
        config = dex_config(auth, endpoints)
        dex_cm["data"]["config.yaml"] = yaml.safe_dump(config, sort_keys=False)
        hashes = password_hashes(auth, cfg.stack)
        client = oidc_client_environment(auth)
        for name, data in (("dex-passwords", hashes), ("dex-oidc-client", client)):
            secret = _one(rendered, "Secret", "auth", name)
            if secret is None:
                raise ValueError(f"upstream Dex no longer has Secret auth/{name}; update infra/patches/auth.py")
            _set_secret(secret, data)
        _annotate(_one(rendered, "Deployment", "auth", "dex"), checksum(config, hashes, client))
        changed = True
    proxy_secret = _one(rendered, "Secret", "oauth2-proxy", "oauth2-proxy", prefix=True)
    proxy_cm = _one(rendered, "ConfigMap", "oauth2-proxy", "oauth2-proxy", prefix=True)
    if proxy_secret is not None and proxy_cm is not None:
        secret_data = oauth2_proxy_secret(auth)
        _set_secret(proxy_secret, secret_data)
        cfg_text = render_oauth2_proxy_cfg(oauth2_proxy_settings(auth, endpoints))
        proxy_cm["data"]["oauth2_proxy.cfg"] = cfg_text
        _annotate(_one(rendered, "Deployment", "oauth2-proxy", "oauth2-proxy"), checksum(cfg_text, secret_data))
        changed = True
    if changed:
        rendered.adjustments.append("auth")
