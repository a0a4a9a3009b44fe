"""Constants and builders shared by the project's tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.config import StackConfig

REPO = Path(__file__).resolve().parent.parent
SHARED_MANIFESTS = REPO.parent / "shared" / "kubeflow-manifests" / "v1.11.0"

# Two users with passwords the tests know; values are secret in the stacks that use them.
ALICE = {"email": "alice@example.org", "username": "alice", "password": "alice-Secret-1"}
BOB = {"email": "bob@example.org", "username": "bob", "password": "bob-Secret-22"}
CLIENT_SECRET = "a-test-client-secret-0123456789"


def base_raw(**overrides: Any) -> dict[str, Any]:
    """A valid non-dev stack config with two users, as raw Pulumi config."""
    raw: dict[str, Any] = {
        "cluster": {"provider": "existing", "name": "test",
                    "existing": {"kubeconfig": "/dev/null"}},
        "kubeflow": {"release": "v1.11.0", "components": "full"},
        "storage": {"mode": "existing", "defaultClass": "fast",
                    "claims": {"katib-mysql": {"size": "5Gi"},
                               "mysql-pv-claim": {"size": "7Gi", "storageClass": "premium"}}},
        "auth": {"users": [dict(ALICE), dict(BOB)], "oidcClient": {"secret": CLIENT_SECRET}},
        "profiles": [
            {"owner": ALICE["email"], "quota": {"cpu": "8", "memory": "16Gi", "gpu": "1", "pvcs": 5,
                                                 "storage": "100Gi"}},
            {"owner": BOB["email"]},
        ],
    }
    raw.update(overrides)
    return raw


# Upstream's public example OIDC client secret (tests only: the project refuses it, never ships it).
UPSTREAM_CLIENT_SECRET = "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"


def require_toolchain(*tools: str) -> None:
    """Skip (NOT RUN, with the reason) when a pinned tool is not installed; any other failure of
    the lookup is a bug and fails the test."""
    import pytest

    from infra.toolchain import tool_path
    from infra.toolchain.model import ToolchainError

    try:
        for tool in tools:
            tool_path(tool)
    except ToolchainError as exc:
        pytest.skip(f"NOT RUN: needs the pinned toolchain: {exc}")


def stack_file_config(path: Path) -> StackConfig:
    """A shipped stack file's config, with the secrets a user sets (`auth` users and the OIDC
    client secret) filled with the tests' fixed ones where the stack is not a dev stack."""
    import yaml

    from infra.config import parse_stack_config

    raw = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(path.read_text())["config"].items()}
    secret_keys: set[str] = set()
    if not raw.get("devStack"):
        raw["auth"] = {**raw.get("auth", {}), "users": [ALICE], "oidcClient": {"secret": "s" * 24}}
        secret_keys = {"auth"}
    return parse_stack_config(path.name.split(".")[1], raw, secret_keys)
