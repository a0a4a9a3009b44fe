"""Tenant isolation at the gateway: a token of another namespace is refused with 403 on the user's
model endpoint and pipelines; no token gets a login redirect, 401 or 403; the owner's token works
(so the 403 is authorization, not a broken token). Another namespace's token can neither read nor
start runs in the user's namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from smoke_tests.inference import ModelEndpoint, predict
from smoke_tests.login import new_http_session
from smoke_tests.secret import Secret
from smoke_tests.target import KFP, Target

pytestmark = pytest.mark.isolation



def assert_rejected_without_token(resp: requests.Response) -> None:
    """The stand-in gateway sends a request oauth2-proxy does not accept to /oauth2/start with the
    request's own path (302); behind Istio the answer is oauth2-proxy's (401 on API paths, 403 with its
    sign-in page elsewhere) or the JWT check's (401) for a token it cannot verify."""
    if resp.status_code == 302:
        assert resp.headers["Location"] == f"/oauth2/start?rd={resp.request.path_url}", resp.headers["Location"]
    else:
        assert resp.status_code in (401, 403), (resp.status_code, resp.text[:300])


def test_owner_token_is_accepted(served_models: dict[str, ModelEndpoint], owner_token: Secret) -> None:
    assert predict(served_models["iris"], "v1", token=owner_token.reveal()).status_code == 200


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_foreign_token_is_forbidden_on_model(served_models: dict[str, ModelEndpoint], foreign_token: Secret,
                                             protocol: str) -> None:
    resp = predict(served_models["iris"], protocol, token=foreign_token.reveal())
    assert resp.status_code == 403, resp.text[:300]


def test_no_token_is_rejected_on_model(served_models: dict[str, ModelEndpoint]) -> None:
    assert_rejected_without_token(predict(served_models["iris"], "v1", token=None))


def test_forged_token_is_rejected_on_model(served_models: dict[str, ModelEndpoint]) -> None:
    forged = "eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6InVzZXJAZXhhbXBsZS5jb20ifQ.c2lnbmF0dXJl"
    assert_rejected_without_token(predict(served_models["iris"], "v1", token=forged))


def _runs_url(target: Target) -> str:
    return f"{target.gateway()}/pipeline/apis/v2beta1/runs?namespace={target.user(0).profile}"


def test_foreign_token_is_forbidden_on_pipelines(kf_target: Target, request: pytest.FixtureRequest) -> None:
    kf_target.require(KFP)
    foreign_token: Secret = request.getfixturevalue("foreign_token")
    resp = new_http_session(kf_target.gateway()).get(
        _runs_url(kf_target), headers={"Authorization": f"Bearer {foreign_token.reveal()}"},
        allow_redirects=False, timeout=30)
    assert resp.status_code == 403, resp.text[:300]


def test_no_token_is_rejected_on_pipelines(kf_target: Target) -> None:
    kf_target.require(KFP)
    resp = new_http_session(kf_target.gateway()).get(_runs_url(kf_target), allow_redirects=False, timeout=30)
    assert_rejected_without_token(resp)


def test_foreign_token_cannot_create_runs_in_the_namespace(kf_target: Target, request: pytest.FixtureRequest,
                                                            tmp_path: Path) -> None:
    """Another namespace's token may not start a run in the user's experiment: 403, and no run."""
    kf_target.require(KFP)
    from kfp import compiler

    from smoke_tests.pipelines.hello import hello_pipeline

    foreign_token: Secret = request.getfixturevalue("foreign_token")
    experiment_id = request.getfixturevalue("experiment_factory")("kfstack-smoke-isolation")
    spec = tmp_path / "hello.yaml"
    compiler.Compiler().compile(hello_pipeline, str(spec))
    body = {"display_name": "kfstack-smoke-foreign-run", "experiment_id": experiment_id,
            "pipeline_spec": yaml.safe_load(spec.read_text(encoding="utf-8"))}
    resp = new_http_session(kf_target.gateway()).post(
        f"{kf_target.gateway()}/pipeline/apis/v2beta1/runs", json=body,
        headers={"Authorization": f"Bearer {foreign_token.reveal()}"}, allow_redirects=False, timeout=30)
    assert resp.status_code == 403, resp.text[:300]
