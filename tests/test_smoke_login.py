"""The Dex login walk against a tiny local server that answers in each shape Kubeflow's gateways
and Dex use: oauth2-proxy's 302, 401 and 403 sign-in page, the legacy authservice redirect, Dex's
connector chooser (local and ldap), its password form, and its approval page."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from smoke_tests.login import BadCredentials, LoginFailed, Page, id_token, login, new_http_session

EMAIL = "user@example.com"
PASSWORD = "right-password-1"


@dataclass
class Behaviour:
    front: str = "redirect"  # redirect | 401 | 403-sign-in | authservice | open
    connectors: tuple[str, ...] = ("local",)
    approval: bool = False
    wrong_password_status: int = 401
    events: list[str] = field(default_factory=list)

    @property
    def cookie(self) -> str:
        return "authservice_session" if self.front == "authservice" else "oauth2_proxy_kubeflow"

    @property
    def callback(self) -> str:
        return "/login/oidc" if self.front == "authservice" else "/oauth2/callback"


def make_handler(b: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def send(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def redirect(self, location: str, status: int = 302, headers: dict[str, str] | None = None) -> None:
            self.send(status, "", {"Location": location, **(headers or {})})

        def password_form(self, conn: str, error: str = "") -> str:
            action = html.escape(f"/dex/auth/{conn}/login?back=&state=req1")
            return (f"<html><body>{error}<form method='post' action='{action}'>"
                    "<input type='text' name='login'><input type='password' name='password'>"
                    "<button type='submit'>Login</button></form></body></html>")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            logged_in = f"{b.cookie}=" in (self.headers.get("Cookie") or "")
            if url.path == "/" or url.path.startswith("/api/"):
                if logged_in or b.front == "open":
                    return self.send(200, "<html>dashboard</html>")
                if b.front == "redirect":
                    return self.redirect("/oauth2/start?rd=%2F")
                if b.front == "401":
                    return self.send(401, "Unauthorized")
                if b.front == "403-sign-in":
                    return self.send(403, "<html><form method='GET' action='/oauth2/start'>"
                                          "<input type='hidden' name='rd' value='/'>"
                                          "<button type='submit'>Sign in with Dex</button></form></html>")
                return self.redirect(f"/dex/auth?client_id=kubeflow-oidc-authservice&redirect_uri={b.callback}")
            if url.path == "/oauth2/start":
                b.events.append(f"start rd={parse_qs(url.query).get('rd')}")
                return self.redirect("/dex/auth?client_id=kubeflow-oidc-authservice&state=s1")
            if url.path == "/dex/auth":
                if len(b.connectors) == 1:
                    return self.redirect(f"/dex/auth/{b.connectors[0]}?req=req1")
                links = "".join(f"<li><a href='/dex/auth/{c}?req=req1'>Log in with {c}</a></li>"
                                for c in b.connectors)
                return self.send(200, f"<html><ul>{links}</ul></html>")
            for conn in b.connectors:
                if url.path == f"/dex/auth/{conn}":
                    b.events.append(f"connector {conn}")
                    return self.redirect(f"/dex/auth/{conn}/login?back=&state=req1")
                if url.path == f"/dex/auth/{conn}/login":
                    return self.send(200, self.password_form(conn))
            if url.path == "/dex/approval":
                return self.send(200, "<html>"
                                      "<form method='post'><input type='hidden' name='req' value='req1'>"
                                      "<input type='hidden' name='hmac' value='h1'>"
                                      "<input type='hidden' name='approval' value='approve'>"
                                      "<button type='submit'>Grant Access</button></form>"
                                      "<form method='post'><input type='hidden' name='req' value='req1'>"
                                      "<input type='hidden' name='approval' value='rejected'>"
                                      "<button type='submit'>Cancel</button></form></html>")
            if url.path == b.callback:
                b.events.append("callback")
                return self.redirect("/", headers={"Set-Cookie": f"{b.cookie}=session1; Path=/"})
            if url.path == "/oauth2/auth":
                if logged_in:
                    return self.send(202, "", {"Authorization": "Bearer id.token.value"})
                return self.send(401, "")
            return self.send(404, "not found")

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            for conn in b.connectors:
                if url.path == f"/dex/auth/{conn}/login":
                    if form.get("login") == EMAIL and form.get("password") == PASSWORD:
                        b.events.append(f"password ok via {conn}")
                        target = "/dex/approval?req=req1&hmac=h1" if b.approval else f"{b.callback}?code=c1"
                        return self.redirect(target, status=303)
                    b.events.append("password refused")
                    return self.send(b.wrong_password_status,
                                     self.password_form(conn, "Invalid Email Address and password."))
            if url.path == "/dex/approval":
                b.events.append(f"approval {form}")
                if form.get("approval") == "approve" and form.get("req") == "req1" and form.get("hmac") == "h1":
                    return self.redirect(f"{b.callback}?code=c1", status=303)
                return self.send(400, "bad approval")
            return self.send(404, "not found")

    return Handler


@pytest.fixture
def fake_gateway() -> Iterator[tuple[str, Behaviour]]:
    behaviour = Behaviour()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(behaviour))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", behaviour
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("front", ["redirect", "401", "403-sign-in", "authservice"])
@pytest.mark.parametrize("approval", [False, True])
def test_each_front_end_and_approval_gives_a_session(fake_gateway: tuple[str, Behaviour], front: str,
                                                     approval: bool) -> None:
    url, behaviour = fake_gateway
    behaviour.front, behaviour.approval = front, approval
    session = login(url, EMAIL, PASSWORD)
    assert session.cookie_name == behaviour.cookie
    assert session.cookie_header() == f"{behaviour.cookie}=session1"
    assert session.http.get(session.url("/"), timeout=5).status_code == 200
    approvals = [e for e in behaviour.events if e.startswith("approval")]
    assert approvals == (["approval {'req': 'req1', 'hmac': 'h1', 'approval': 'approve'}"] if approval else [])
    assert behaviour.events[-1] == "callback"


def test_oauth2_proxy_redirect_walk_is_recorded_step_by_step(fake_gateway: tuple[str, Behaviour]) -> None:
    url, behaviour = fake_gateway
    behaviour.approval = True
    session = login(url, EMAIL, PASSWORD)
    assert session.steps == [
        "GET / -> 302 (redirect)",
        "GET /oauth2/start?… -> 302 (redirect)",
        "GET /dex/auth?… -> 302 (redirect)",
        "GET /dex/auth/local?… -> 302 (redirect)",
        f"GET /dex/auth/local/login?… -> 200 ({Page.PASSWORD_FORM.value})",
        "POST /dex/auth/local/login?… -> 303 (redirect)",
        f"GET /dex/approval?… -> 200 ({Page.APPROVAL.value})",
        "POST /dex/approval?… -> 303 (redirect)",
        "GET /oauth2/callback?… -> 302 (redirect)",
        f"GET / -> 200 ({Page.APPLICATION.value})",
    ]


def test_sign_in_page_keeps_its_redirect_target(fake_gateway: tuple[str, Behaviour]) -> None:
    url, behaviour = fake_gateway
    behaviour.front = "403-sign-in"
    login(url, EMAIL, PASSWORD)
    assert behaviour.events[0] == "start rd=['/']"


@pytest.mark.parametrize("connector", ["local", "ldap"])
def test_connector_chooser_picks_the_auth_type(fake_gateway: tuple[str, Behaviour], connector: str) -> None:
    url, behaviour = fake_gateway
    behaviour.connectors = ("local", "ldap")
    login(url, EMAIL, PASSWORD, connector=connector)
    assert f"connector {connector}" in behaviour.events
    assert f"password ok via {connector}" in behaviour.events


def test_missing_connector_is_named(fake_gateway: tuple[str, Behaviour]) -> None:
    url, behaviour = fake_gateway
    behaviour.connectors = ("local", "github")
    with pytest.raises(LoginFailed) as failure:
        login(url, EMAIL, PASSWORD, connector="ldap")
    assert "Dex offers no 'ldap' connector" in failure.value.reason


@pytest.mark.parametrize("status", [200, 401])
def test_wrong_password_is_bad_credentials(fake_gateway: tuple[str, Behaviour], status: int) -> None:
    url, behaviour = fake_gateway
    behaviour.wrong_password_status = status
    with pytest.raises(BadCredentials) as failure:
        login(url, EMAIL, "wrong-password-1")
    assert failure.value.reason == (f"Dex answered the password POST with {status} and no redirect: "
                                    "the credentials were refused")
    assert behaviour.events[-1] == "password refused"
    assert "callback" not in behaviour.events


def test_gateway_without_auth_is_a_failure(fake_gateway: tuple[str, Behaviour]) -> None:
    url, behaviour = fake_gateway
    behaviour.front = "open"
    with pytest.raises(LoginFailed) as failure:
        login(url, EMAIL, PASSWORD)
    assert "before any login" in failure.value.reason


def test_id_token_comes_from_oauth2_proxy_auth_endpoint(fake_gateway: tuple[str, Behaviour]) -> None:
    url, _ = fake_gateway
    assert id_token(login(url, EMAIL, PASSWORD)) == "id.token.value"


def test_declared_flow_must_match_the_session_cookie(fake_gateway: tuple[str, Behaviour]) -> None:
    from smoke_tests.login import FLOW_COOKIES

    url, behaviour = fake_gateway
    behaviour.front = "authservice"
    with pytest.raises(LoginFailed) as failure:
        login(url, EMAIL, PASSWORD, session_cookies=FLOW_COOKIES["oauth2-proxy"])
    assert failure.value.reason == ("no session cookie (oauth2_proxy_kubeflow) after login; "
                                    "cookies: ['authservice_session']")


class DropsKeptAliveConnections(BaseHTTPRequestHandler):
    """Answers the first request on each connection, keeps it open, then drops it unanswered at the
    next request (a port-forward or gateway that closed an idle connection); counts POSTs."""

    protocol_version = "HTTP/1.1"
    posts = 0

    def _answer_once(self) -> None:
        if getattr(self, "answered", False):
            self.close_connection = True
            return
        self.answered = True
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer_once()

    def do_POST(self) -> None:
        type(self).posts += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer_once()

    def log_message(self, *args: object) -> None:
        pass


def test_a_get_on_a_dropped_kept_alive_connection_is_sent_again_and_a_post_is_not() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), DropsKeptAliveConnections)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        http = new_http_session(base)
        assert http.get(base + "/", timeout=10).status_code == 200
        assert http.get(base + "/", timeout=10).status_code == 200  # dropped, then sent on a new connection
        with pytest.raises(requests.ConnectionError):
            http.post(base + "/form", data={"a": "1"}, timeout=10)  # dropped too: not sent again
        assert DropsKeptAliveConnections.posts == 1
    finally:
        server.shutdown()
