"""Logging in through Dex the way a browser does, for both of Kubeflow's auth front ends.

Kubeflow 1.9 and later put oauth2-proxy in front (the gateway answers 302 to /oauth2/start, or
401/403 which a browser turns into /oauth2/start); 1.8 and earlier used oidc-authservice (the
gateway redirects straight to Dex and the callback is /login/oidc). Either way Dex may show a
connector chooser (local and ldap), then its password form, then an approval page (it does when
the scope asks for offline_access, even with skipApprovalScreen). The walk below reacts to what
each response *is*, not to a fixed list of URLs, so both flows and every shape share one loop.
A POST of the password form that is not answered by a redirect means the credentials were refused.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import requests.adapters
from urllib3.util.retry import Retry

SESSION_COOKIES = ("oauth2_proxy_kubeflow", "authservice_session")
FLOW_COOKIES = {"oauth2-proxy": ("oauth2_proxy_kubeflow",), "authservice": ("authservice_session",)}
REDIRECTS = (301, 302, 303, 307, 308)


class LoginFailed(RuntimeError):
    """The login walk did not end in a session; the message lists every step taken."""

    def __init__(self, reason: str, steps: list[str]) -> None:
        self.reason = reason
        self.steps = list(steps)
        trail = "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(steps))
        super().__init__(f"login failed: {reason}\nsteps:\n{trail}")


class BadCredentials(LoginFailed):
    """Dex answered the password POST without redirecting: it refused the credentials."""


@dataclass
class Form:
    action: str | None
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    field_types: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _PageParser(HTMLParser):
    """Collects forms (with hidden fields and named buttons) and links; nothing else matters here."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action") or None, method=(a.get("method") or "get").lower())
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button"):
                self._form.buttons.append((a["name"], a.get("value", "")))
            else:
                self._form.fields[a["name"]] = a.get("value", "")
                self._form.field_types[a["name"]] = kind
        elif tag == "button" and self._form is not None and a.get("name"):
            self._form.buttons.append((a["name"], a.get("value", "")))
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def parse_page(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    return parser


class Page(enum.Enum):
    REDIRECT = "redirect"
    GATEWAY_DENIED = "gateway denied (401/403)"
    CONNECTOR_CHOICE = "Dex connector choice"
    PASSWORD_FORM = "Dex password form"
    APPROVAL = "Dex approval page"
    SIGN_IN = "oauth2-proxy sign-in page"
    APPLICATION = "application page"


def password_form(page: _PageParser) -> Form | None:
    for form in page.forms:
        if form.field_types.get("password") == "password" or "password" in form.fields:
            return form
    return None


def approval_form(page: _PageParser) -> Form | None:
    for form in page.forms:
        if form.fields.get("approval") == "approve" or ("approval", "approve") in form.buttons:
            return form
    return None


def sign_in_form(page: _PageParser) -> Form | None:
    for form in page.forms:
        if form.action and urlsplit(form.action).path.endswith("/oauth2/start"):
            return form
    return None


def classify(resp: requests.Response) -> tuple[Page, _PageParser | None]:
    """What a response is, judged by status and content (URLs vary between releases)."""
    if resp.status_code in REDIRECTS and resp.headers.get("Location"):
        return Page.REDIRECT, None
    ctype = resp.headers.get("Content-Type", "")
    page = parse_page(resp.text) if "html" in ctype or resp.text.lstrip().startswith("<") else None
    if page is not None:
        if password_form(page):
            return Page.PASSWORD_FORM, page
        if approval_form(page):
            return Page.APPROVAL, page
        if sign_in_form(page):
            return Page.SIGN_IN, page
        path = urlsplit(resp.url).path
        if "/dex/" in path and any("/auth/" in urlsplit(link).path for link in page.links):
            return Page.CONNECTOR_CHOICE, page
    if resp.status_code in (401, 403):
        return Page.GATEWAY_DENIED, page
    return Page.APPLICATION, page


@dataclass
class GatewaySession:
    """A logged-in browser session at the gateway: its cookies work for the dashboard, KFP and models."""

    base_url: str
    email: str
    http: requests.Session
    cookie_name: str
    steps: list[str]

    def cookie_header(self) -> str:
        """`name=value` for clients that take a cookie string (kfp.Client(cookies=...))."""
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies if c.name == self.cookie_name)

    def url(self, path: str) -> str:
        return urljoin(self.base_url.rstrip("/") + "/", path.lstrip("/"))


def _field_values(form: Form, extra: dict[str, str]) -> dict[str, str]:
    values = {k: v for k, v in form.fields.items() if form.field_types.get(k) == "hidden"}
    values.update(extra)
    return values


# A GET sent on a kept-alive connection that the far end (a port-forward, the gateway) closed
# just before is answered by nothing ("Remote end closed connection without response"): sent
# again on a new connection, as browsers do. Only idempotent methods; a form POST is never resent.
IDEMPOTENT_RETRIES = Retry(total=2, connect=2, read=2, status=0, redirect=0, backoff_factor=0.2,
                           allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}), raise_on_status=False)


def new_http_session(base_url: str) -> requests.Session:
    """A session that ignores proxy variables for loopback targets (a port-forward or the local
    target) and sends an idempotent request again when a kept-alive connection was dropped."""
    http = requests.Session()
    if urlsplit(base_url).hostname in ("127.0.0.1", "localhost", "::1"):
        http.trust_env = False
    adapter = requests.adapters.HTTPAdapter(max_retries=IDEMPOTENT_RETRIES)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def login(base_url: str, email: str, password: str, *, connector: str = "local", start_path: str = "/",
          http: requests.Session | None = None, timeout: float = 30.0, max_steps: int = 25,
          session_cookies: tuple[str, ...] = SESSION_COOKIES) -> GatewaySession:
    """Walk from `start_path` through the gateway and Dex to a session cookie; raise `LoginFailed`.

    `session_cookies` names the cookies that count as a session (FLOW_COOKIES narrows it to one
    front end, so a stack on the other one fails with a clear message)."""
    http = http or new_http_session(base_url)
    url = urljoin(base_url.rstrip("/") + "/", start_path.lstrip("/"))
    method, data = "GET", None
    steps: list[str] = []
    posted_password = False
    tried_start = False
    for _ in range(max_steps):
        resp = http.request(method, url, data=data, allow_redirects=False, timeout=timeout)
        kind, page = classify(resp)
        shown = urlsplit(resp.url)
        steps.append(f"{method} {shown.path}{'?…' if shown.query else ''} -> {resp.status_code} ({kind.value})")
        if posted_password and kind is not Page.REDIRECT and kind is not Page.APPROVAL \
                and "/dex/" in shown.path:
            raise BadCredentials(f"Dex answered the password POST with {resp.status_code} and no "
                                 "redirect: the credentials were refused", steps)
        method, data = "GET", None
        if kind is Page.REDIRECT:
            url = urljoin(resp.url, resp.headers["Location"])
        elif kind is Page.PASSWORD_FORM:
            assert page is not None
            form = password_form(page)
            assert form is not None
            url = urljoin(resp.url, form.action or resp.url)
            method, data = "POST", _field_values(form, {"login": email, "password": password})
            posted_password = True
        elif kind is Page.APPROVAL:
            assert page is not None
            form = approval_form(page)
            assert form is not None
            url = urljoin(resp.url, form.action or resp.url)
            method, data = "POST", _field_values(form, {"approval": "approve"})
        elif kind is Page.CONNECTOR_CHOICE:
            assert page is not None
            wanted = [link for link in page.links if f"/auth/{connector}" in urlsplit(link).path]
            if not wanted:
                raise LoginFailed(f"Dex offers no {connector!r} connector (links: {page.links})", steps)
            url = urljoin(resp.url, wanted[0])
        elif kind in (Page.GATEWAY_DENIED, Page.SIGN_IN):
            if tried_start:
                raise LoginFailed(f"the gateway denied {shown.path} again after /oauth2/start", steps)
            tried_start = True
            form = sign_in_form(page) if page is not None else None
            rd = form.fields.get("rd", start_path) if form is not None else start_path
            url = urljoin(base_url.rstrip("/") + "/", "oauth2/start") + "?" + urlencode({"rd": rd})
        else:  # an application page
            cookie = next((c for c in session_cookies if c in http.cookies), None)
            if not posted_password:
                raise LoginFailed(f"{shown.path} answered {resp.status_code} before any login: "
                                  "is authentication enabled at this gateway?", steps)
            if resp.status_code != 200:
                raise LoginFailed(f"after login {shown.path} answered {resp.status_code}", steps)
            if cookie is None:
                raise LoginFailed(f"no session cookie ({', '.join(session_cookies)}) after login; "
                                  f"cookies: {sorted(c.name for c in http.cookies)}", steps)
            return GatewaySession(base_url, email, http, cookie, steps)
    raise LoginFailed(f"no session after {max_steps} steps", steps)


def id_token(session: GatewaySession, *, timeout: float = 30.0) -> str:
    """The session's Dex ID token, as oauth2-proxy hands it to nginx's auth_request (or Istio's
    ext_authz) in the Authorization response header of /oauth2/auth."""
    resp = session.http.get(session.url("/oauth2/auth"), allow_redirects=False, timeout=timeout)
    header = resp.headers.get("Authorization", "")
    if resp.status_code != 202 or not header.startswith("Bearer "):  # oauth2-proxy's AuthOnly: 202 Accepted
        raise LoginFailed(f"/oauth2/auth answered {resp.status_code}, bearer token: {bool(header)} "
                          "(oauth2-proxy answers a session 202 with one)", session.steps)
    return header.removeprefix("Bearer ")
