"""Who signs in and where they work: Dex's users and connectors, the OIDC client, and the profiles
(one namespace each) with their owners and quotas."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from infra.settings.fields import (
    DNS_LABEL,
    Problem,
    Quantity,
    Secret,
    Section,
    Text,
    Whole,
    _text,
    fail,
    listing,
    matches,
)
from smoke_tests.profiles import profile_name_for

# The upstream example's credentials. They are public, so only dev stacks may use them.
UPSTREAM_DEFAULT_PASSWORD = "12341234"
# SHA-256 of upstream's public example OIDC client secret: recognised and refused, never shipped.
UPSTREAM_CLIENT_SECRET_SHA256 = "462a0aa7e3ad7e72bcc06fd22a504044f4a4c79033231b9dc8900ad84fbe29b9"
UPSTREAM_DEFAULT_CLIENT_ID = "kubeflow-oidc-authservice"
CONNECTOR_TYPES = ("ldap", "github", "oidc")
# Shorter client secrets are guessable; upstream's example is 34 characters, `openssl rand -hex 16` 32.
MIN_CLIENT_SECRET = 16

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BCRYPT = re.compile(r"^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def is_upstream_client_secret(value: str) -> bool:
    return hashlib.sha256(value.encode()).hexdigest() == UPSTREAM_CLIENT_SECRET_SHA256


def dev_client_secret(stack: str) -> str:
    """A dev stack's OIDC client secret when none is set: stable per stack (so updates change
    nothing), not upstream's public one. Dev stacks only: anyone can derive it."""
    return hashlib.sha256(f"kubeflow-stacks/dev-oidc-client/{stack}".encode()).hexdigest()[:32]


def _stable_user_id(email: str) -> str:
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:12], 16))


class DexUser(Section):
    not_a_map: ClassVar[str] = "must be a map with email, username and password"

    email: Annotated[str, BeforeValidator(_text), matches(_EMAIL, "must be an e-mail address")]
    username: Text = Field(default="", description="default: the e-mail's local part")
    user_id: Text = Field(default="", alias="userID", description="default: a number derived from the e-mail")
    password: Secret | None = None
    password_hash: Secret | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_email(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("email"), str):
            data = dict(data)
            email = data["email"]
            for key, alias, default in (("username", "username", email.split("@")[0]),
                                        ("user_id", "userID", _stable_user_id(email))):
                if data.get(alias) is None and data.get(key) is None:
                    data[alias] = default
        return data

    def problems(self, where: str, dev: bool) -> Iterator[Problem]:
        if self.password is None and self.password_hash is None:
            yield Problem(f"{where}.password", None, "set a password with `pulumi config set --secret "
                          f"--path '{where}.password' <password>` (or passwordHash with a bcrypt hash)")
        if self.password is not None and self.password_hash is not None:
            yield Problem(f"{where}.passwordHash", "****", "set password or passwordHash, not both")
        if self.password_hash is not None and not _BCRYPT.match(self.password_hash.reveal()):
            yield Problem(f"{where}.passwordHash", "****", "must be a bcrypt hash ($2y$10$...)")
        if self.password is not None and not dev and self.password.reveal() == UPSTREAM_DEFAULT_PASSWORD:
            yield Problem(f"{where}.password", "****", "is the public upstream default; choose another "
                          "(it is allowed only on stacks with devStack: true)")
        if self.password is not None and len(self.password.reveal()) < 8:
            yield Problem(f"{where}.password", "****", "must be at least 8 characters")


# The upstream example user, so `pulumi up -s dev` works with no secrets set.
DEMO_USER = DexUser.model_validate({"email": "user@example.com", "username": "user", "userID": "15841185641784",
                                    "password": UPSTREAM_DEFAULT_PASSWORD})


def _redirect(uri: Any) -> str:
    if not isinstance(uri, str) or not (uri.startswith("/") or _URL.match(uri)):
        raise fail("must be a path on the gateway (/oauth2/callback) or an http(s) URL")
    return uri


def _redirects(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise fail("must be a non-empty list of URIs")
    return value


class OidcClient(Section):
    id: Text = UPSTREAM_DEFAULT_CLIENT_ID
    # Unset: a dev stack's is derived from the stack's name (dev_client_secret); others must set one.
    secret: Secret | None = None
    redirect_uris: Annotated[tuple[Annotated[str, BeforeValidator(_redirect)], ...], BeforeValidator(_redirects)] = \
        Field(default=("/oauth2/callback",), alias="redirectURIs")


def _connector(conn: Any) -> Mapping[str, Any]:
    if not isinstance(conn, Mapping) or conn.get("type") not in CONNECTOR_TYPES:
        raise fail(f"must be one of: {', '.join(CONNECTOR_TYPES)}", at=("type",),
                   value=conn.get("type") if isinstance(conn, Mapping) else conn)
    if "id" not in conn or "name" not in conn:
        raise fail("needs id and name", value=conn.get("id"))
    return conn


_CONNECTOR_SCHEMA = {"type": "object", "required": ["type", "id", "name"],
                     "properties": {"type": {"enum": list(CONNECTOR_TYPES)}, "id": {"type": "string"},
                                    "name": {"type": "string"}, "config": {"type": "object"}}}


def _issuer(value: str) -> str:
    issuer = value.rstrip("/")
    parsed = urlparse(issuer)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise fail("must be an http(s) URL such as https://kubeflow.example.com/dex", value=issuer)
    if parsed.path.rstrip("/") != "/dex" or parsed.query or parsed.fragment:
        raise fail("must end in /dex, the path the gateway routes to Dex "
                   "(such as https://kubeflow.example.com/dex)", value=issuer)
    return issuer


class AuthConfig(Section):
    # Unset: a dev stack gets upstream's demo user; other stacks must list theirs.
    users: Annotated[tuple[DexUser, ...], listing("must be a list of users")] = ()
    oidc_client: OidcClient = OidcClient()
    issuer: Annotated[str, BeforeValidator(_text), AfterValidator(_issuer)] = \
        "http://dex.auth.svc.cluster.local:5556/dex"
    connectors: Annotated[tuple[Annotated[Mapping[str, Any], BeforeValidator(_connector)], ...],
                          listing("must be a list of Dex connectors"),
                          WithJsonSchema({"type": "array", "items": _CONNECTOR_SCHEMA})] = ()
    # Unset: derived from the client secret (see cookie_secret).
    cookie: Secret | None = Field(default=None, alias="cookieSecret")

    @property
    def client_id(self) -> str:
        return self.oidc_client.id

    @property
    def client_secret(self) -> Secret:
        """Set, or a dev stack's own (`resolved`); parse_stack_config refuses a stack without one."""
        return self.oidc_client.secret or Secret("")

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        return self.oidc_client.redirect_uris

    @property
    def cookie_secret(self) -> Secret:
        # oauth2-proxy needs 16, 24 or 32 bytes; one derived from the client secret is stable across
        # updates (a random one would change on every `pulumi up`).
        return self.cookie or Secret(hashlib.sha256(b"cookie:" + self.client_secret.reveal().encode()).hexdigest()[:32])

    def resolved(self, dev: bool, stack: str) -> AuthConfig:
        """A dev stack's defaults filled in: upstream's demo user and a client secret of its own."""
        if not dev:
            return self
        users = self.users if "users" in self.model_fields_set else (DEMO_USER,)
        secret = self.oidc_client.secret or Secret(dev_client_secret(stack))
        return self.model_copy(update={"users": users,
                                       "oidc_client": self.oidc_client.model_copy(update={"secret": secret})})

    def problems(self, dev: bool, secrets_hidden: bool) -> list[Problem]:
        """What needs the whole section or the stack: users, secrets and the dev stack's allowances."""
        found: list[Problem] = []
        if not secrets_hidden:
            found += [Problem(key, "****", f"is stored as plain text; set it as a secret with "
                              f"`pulumi config set --secret --path '{key}' <value>`") for key in self._secret_keys()]
        if "users" not in self.model_fields_set and not dev:
            found.append(Problem("auth.users", None, "list at least one user: `pulumi config set --path "
                                 "'auth.users[0].email' you@example.com` and `pulumi config set --secret --path "
                                 "'auth.users[0].password' <password>`"))
        seen: set[str] = set()
        for i, user in enumerate(self.users):
            if user.email in seen:
                found.append(Problem(f"auth.users[{i}].email", user.email,
                                     "appears twice; each user needs a distinct e-mail"))
            seen.add(user.email)
            found += user.problems(f"auth.users[{i}]", dev)
        secret = self.oidc_client.secret
        if secret is None and not dev:
            found.append(Problem("auth.oidcClient.secret", None, "set one with `pulumi config set --secret --path "
                                 "'auth.oidcClient.secret' \"$(openssl rand -base64 24)\"`"))
        elif secret is not None and not dev and is_upstream_client_secret(secret.reveal()):
            found.append(Problem("auth.oidcClient.secret", "****", "is the public upstream default; generate "
                                 "another (allowed only on stacks with devStack: true)"))
        elif secret is not None and not dev and len(secret.reveal()) < MIN_CLIENT_SECRET:
            found.append(Problem("auth.oidcClient.secret", "****", f"must be at least {MIN_CLIENT_SECRET} "
                                 "characters; generate one with `openssl rand -hex 16`"))
        if self.cookie is not None and len(self.cookie.reveal()) not in (16, 24, 32):
            found.append(Problem("auth.cookieSecret", "****", "must be 16, 24 or 32 characters long"))
        return found

    def _secret_keys(self) -> Iterator[str]:
        for i, user in enumerate(self.users):
            for name, value in (("password", user.password), ("passwordHash", user.password_hash)):
                if value is not None:
                    yield f"auth.users[{i}].{name}"
        if self.oidc_client.secret is not None:
            yield "auth.oidcClient.secret"
        if self.cookie is not None:
            yield "auth.cookieSecret"


class Quota(Section):
    cpu: Quantity | None = None
    memory: Quantity | None = None
    gpu: Quantity | None = None
    pvcs: Whole | None = None
    storage: Quantity | None = None


def _name_optional(schema: dict[str, Any]) -> None:
    schema["required"] = [key for key in schema.get("required", []) if key != "name"]  # named after the owner


class ProfileConfig(Section):
    model_config = ConfigDict(json_schema_extra=_name_optional)
    not_a_map: ClassVar[str] = "must be a map with name and owner"

    name: Annotated[str, BeforeValidator(_text),
                    matches(DNS_LABEL, "must be a DNS label (it becomes a namespace)")] = \
        Field(description="default: kubeflow- and the owner's e-mail, as upstream names profiles")
    owner: Text
    owner_kind: Annotated[Literal["User", "Group"], BeforeValidator(_text)] = "User"
    quota: Quota | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_from_owner(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("name") is None and isinstance(data.get("owner"), str) \
                and data["owner"]:
            data = {**data, "name": profile_name_for(data["owner"])}
        return data


def _profiles(value: Any) -> Any:
    if not isinstance(value, list):
        raise fail("must be a list of profiles")
    return value


Profiles = Annotated[tuple[ProfileConfig, ...], BeforeValidator(_profiles)]


def profile_problems(profiles: tuple[ProfileConfig, ...], auth: AuthConfig | None) -> list[Problem]:
    """Names given twice, and owners no one can sign in as: with only the stack's own Dex users
    (no connector that brings others), a user owner must be one of them."""
    found: list[Problem] = []
    names: set[str] = set()
    emails = [u.email for u in auth.users] if auth is not None else []
    for i, profile in enumerate(profiles):
        if profile.name in names:
            found.append(Problem(f"profiles[{i}].name", profile.name, "appears twice"))
        names.add(profile.name)
        if auth is None or profile.owner_kind != "User" or auth.connectors or not emails or profile.owner in emails:
            continue
        found.append(Problem(f"profiles[{i}].owner", profile.owner, "not a user of this stack's Dex, so no one "
                             f"can sign in as the owner; users are: {', '.join(emails)}; add them to auth.users, "
                             "or add a connector (auth.connectors) that signs them in"))
    return found
