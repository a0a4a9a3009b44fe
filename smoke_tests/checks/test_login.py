"""Dex login through the gateway: the right password gives a session the dashboard accepts; a wrong
one gives no session and a clear failure."""

from __future__ import annotations

import pytest

from smoke_tests.fixtures.auth import SessionFactory
from smoke_tests.login import SESSION_COOKIES, BadCredentials, GatewaySession, new_http_session
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
    resp = new_http_session(kf_target.gateway()).get(kf_target.gateway() + "/", allow_redirects=False,
                                                       timeout=30)
    if resp.status_code in (301, 302, 303, 307, 308):
        location = resp.headers["Location"]
        assert "/oauth2/start" in location or "/dex/auth" in location, location
    else:
        assert resp.status_code in (401, 403)


def test_second_user_logs_in(dex_session_factory: SessionFactory, kf_target: Target) -> None:
    session = dex_session_factory(1)
    resp = session.http.get(session.url("/api/workgroup/env-info"), allow_redirects=False, timeout=30)
    assert resp.status_code == 200
    assert resp.json()["user"] == kf_target.user(1).email
