"""The local conformance target: its configs come from the stack's generators and hold no secrets,
its gateway config is valid nginx, and `kfstack local up|status|down` starts and stops it cleanly."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
import requests

from infra.auth.generate import oauth2_proxy_settings, render_oauth2_proxy_cfg
from infra.local_target import configs
from infra.local_target.binaries import MissingBinary, binary, env_override
from infra.process import pid_alive
from infra.run import run

CREDS = configs.new_credentials()
CONFIG = configs.stack_config(CREDS)
PORTS = configs.Ports(gateway=18000, dex=18001, oauth2_proxy=18002, dashboard=18003, deny=18004,
                      models={"kubeflow-user-example-com": 18010, "kubeflow-user2-example-com": 18011})


def _binary_or_skip(name: str) -> Path:
    try:
        return binary(name)
    except MissingBinary as exc:
        pytest.skip(f"{name} is not installed here ({exc})")


def test_users_and_profiles_are_validated_by_the_stack_parser() -> None:
    assert [u.email for u in CONFIG.auth.users] == ["user@example.com", "user2@example.com"]
    assert [(p.name, p.owner) for p in CONFIG.profiles] == [
        ("kubeflow-user-example-com", "user@example.com"), ("kubeflow-user2-example-com", "user2@example.com")]


def test_dex_config_is_the_generators_with_local_endpoints() -> None:
    dex, env = configs.dex_files(CONFIG, PORTS)
    assert dex["issuer"] == "http://127.0.0.1:18000/dex"
    assert dex["web"] == {"http": "127.0.0.1:18001"}
    assert dex["storage"] == {"type": "memory"}
    assert [p["hashFromEnv"] for p in dex["staticPasswords"]] == ["DEX_USER_PASSWORD", "DEX_USER_PASSWORD_1"]
    assert sorted(env) == ["DEX_USER_PASSWORD", "DEX_USER_PASSWORD_1", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"]
    text = json.dumps(dex)
    assert all(secret not in text for secret in CREDS.values())


def test_oauth2_proxy_file_is_the_generators_and_secrets_go_by_environment() -> None:
    cfg, flags, env = configs.oauth2_proxy_files(CONFIG, PORTS)
    assert cfg == render_oauth2_proxy_cfg(oauth2_proxy_settings(CONFIG.auth, configs.endpoints(PORTS)))
    assert flags == ["--http-address=127.0.0.1:18002", "--reverse-proxy=true", "--skip-jwt-bearer-tokens=true"]
    assert env["OAUTH2_PROXY_CLIENT_SECRET"] == CREDS["client_secret"]
    assert env["OAUTH2_PROXY_COOKIE_SECRET"] == CREDS["cookie_secret"]
    assert all(secret not in cfg for secret in CREDS.values())


def test_gateway_routes_each_namespace_only_for_its_owner() -> None:
    conf = configs.nginx_conf(CONFIG, PORTS, workdir="/w")
    assert '"kubeflow-user-example-com|user@example.com" 127.0.0.1:18010;' in conf
    assert '"kubeflow-user2-example-com|user2@example.com" 127.0.0.1:18011;' in conf
    assert "default 127.0.0.1:18004;" in conf
    assert r'server_name "~^(?<isvc>[a-z0-9-]+)\.(?<profile_ns>[a-z0-9-]+)\.example\.com$";' in conf
    assert conf.count("auth_request /oauth2/auth;") == 2


def test_gateway_config_is_valid_nginx(tmp_path: Path) -> None:
    nginx = _binary_or_skip("nginx")
    for sub in ("logs", "run", "tmp"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(configs.nginx_conf(CONFIG, PORTS, workdir=str(tmp_path)), encoding="utf-8")
    result = run([nginx, "-t", "-p", tmp_path, "-c", conf, "-e", tmp_path / "logs" / "error.log"], timeout=30)
    assert "test is successful" in result.stderr


def test_binary_honours_the_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "dex"
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setitem(__import__("sys").modules, "infra.toolchain", None)  # as if not installed
    monkeypatch.setenv(env_override("dex"), str(fake))
    assert env_override("oauth2-proxy") == "KFSTACK_BIN_OAUTH2_PROXY"
    assert binary("dex") == fake


@pytest.mark.slow
def test_cli_up_status_down(tmp_path: Path) -> None:
    for name in ("dex", "oauth2-proxy", "nginx"):
        _binary_or_skip(name)
    workdir = tmp_path / "target"

    def kfstack(*args: str) -> int:
        # A process of its own, as a user runs it: `up` returns while what it started keeps running.
        result = run([sys.executable, "-m", "infra.cli", *args, "--dir", workdir], timeout=300, check=False)
        outputs.append(result.stdout + result.stderr)
        return result.returncode

    outputs: list[str] = []
    try:
        assert kfstack("local", "up") == 0, outputs[-1]
        state = json.loads((workdir / "state.json").read_text())
        assert stat.S_IMODE((workdir / "state.json").stat().st_mode) == 0o600
        assert all(u["password"] not in outputs[-1] for u in state["users"])
        http = requests.Session()
        http.trust_env = False
        discovery = http.get(state["gateway_url"] + "/dex/.well-known/openid-configuration", timeout=10)
        assert discovery.status_code == 200
        assert discovery.json()["issuer"] == state["gateway_url"] + "/dex"
        assert kfstack("local", "status") == 0
    finally:
        assert kfstack("local", "down") == 0
    assert not (workdir / "state.json").exists()
    assert [pid for pid in state["processes"].values() if pid_alive(pid)] == []
    assert (workdir / "logs" / "dex.log").stat().st_size > 0
    assert kfstack("local", "status") == 1


def test_down_never_stops_a_process_it_did_not_start(tmp_path: Path) -> None:
    """A stale state file's pid may belong to someone else by now: only commands naming this
    target's working directory are stopped."""
    import subprocess

    from infra.local_target.target import LocalState, LocalTarget

    stranger = subprocess.Popen(["sleep", "60"])
    try:
        LocalState(workdir=str(tmp_path), started="", gateway_url="", model_domain="", ports={},
                   processes={"dex": stranger.pid}, users=[], models={}, mnist_samples="",
                   mnist_source="digits").save(tmp_path / "state.json")
        target = LocalTarget(tmp_path)
        assert target.running_state() is None
        assert target.down() == []
        assert stranger.poll() is None
        assert not (tmp_path / "state.json").exists()
    finally:
        stranger.kill()
        stranger.wait()
