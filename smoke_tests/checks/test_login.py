"""Dex login through the gateway: the right password gives a session the dashboard accepts; a wrong
one gives no session and a clear failure."""

from __future__ import annotations

import pytest

from smoke_tests.fixtures.auth import SessionFactory
from smoke_tests.login import SESSION_COOKIES, BadCredentials, GatewaySession, Page, classify, new_http_session
from smoke_tests.target import Target

pytestmark = pytest.mark.login

WRONG_PASSWORD = "not-the-password-0"


def test_login_gives_a_session_the_dashboard_accepts(dex_session: GatewaySession) -> None:
    assert dex_session.cookie_name in SESSION_COOKIES
    resp = dex_session.http.get(dex_session.url("/"), allow_redirects=False, timeout=30)
    assert resp.status_code == 200


def test_dashboard_knows_the_user(dex_session: GatewaySession) -> None:
    resp = dex_session.http.get(dex_session.url("/api/workgroup/env-info"), allow_redirects=False, timeout=30)
    assert resp.status_code == 200
    assert resp.json()["user"] == dex_session.email


def test_wrong_password_gives_no_session(dex_session_factory: SessionFactory, kf_target: Target) -> None:
    with pytest.raises(BadCredentials) as refused:
        dex_session_factory(0, password=WRONG_PASSWORD)
    assert "credentials were refused" in refused.value.reason


def test_no_session_is_sent_to_login(kf_target: Target) -> None:
    """The stand-in gateway (nginx) turns oauth2-proxy's 401 into a 302 to /oauth2/start with the page
    asked for; behind Istio, ext_authz passes on oauth2-proxy's own answer for a page, its sign-in
    page (403, a form to /oauth2/start: Kubeflow sets skip_provider_button false)."""
    resp = new_http_session(kf_target.gateway()).get(kf_target.gateway() + "/", allow_redirects=False,
                                                       timeout=30)
    if resp.status_code == 302:
        assert resp.headers["Location"] == "/oauth2/start?rd=/"
    else:
        assert (resp.status_code, classify(resp)[0]) == (403, Page.SIGN_IN), (resp.status_code, resp.text[:300])


def test_second_user_logs_in(dex_session_factory: SessionFactory, kf_target: Target) -> None:
    session = dex_session_factory(1)
    resp = session.http.get(session.url("/api/workgroup/env-info"), allow_redirects=False, timeout=30)
    assert resp.status_code == 200
    assert resp.json()["user"] == kf_target.user(1).email
