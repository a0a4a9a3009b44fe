"""The local conformance target: its configs come from the stack's generators and hold no secrets,
its gateway config is valid nginx, and `kfstack local up|status|down` starts and stops it cleanly."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.auth.generate import oauth2_proxy_settings, render_oauth2_proxy_cfg
from infra.local_target import configs
from infra.toolchain import ToolMissingError as MissingBinary
from infra.toolchain import find_binary as binary
from infra.toolchain.locate import override_variable as env_override
from smoke_tests.process import pid_alive
from smoke_tests.run import run

CREDS = configs.new_credentials()
CONFIG = configs.stack_config(CREDS)
PORTS = configs.Ports(gateway=18000, dex=18001, oauth2_proxy=18002, dashboard=18003, deny=18004,
                      models={"kubeflow-user-example-com": 18010, "kubeflow-user2-example-com": 18011})


def _binary_or_skip(name: str) -> Path:
    try:
        return binary(name)
    except MissingBinary as exc:
        pytest.skip(f"NOT RUN: {name} is not installed here ({exc})")


def test_users_and_profiles_are_validated_by_the_stack_parser() -> None:
    assert [u.email for u in CONFIG.auth.users] == ["user@example.com", "user2@example.com"]
    assert [(p.name, p.owner) for p in CONFIG.profiles] == [
        ("kubeflow-user-example-com", "user@example.com"), ("kubeflow-user2-example-com", "user2@example.com")]


def test_dex_config_is_the_generators_with_local_endpoints() -> None:
    dex, env = configs.dex_files(CONFIG, PORTS)
    assert isinstance(dex["staticPasswords"], list)
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
    assert '"kubeflow-user-example-com|user@example.com|" 127.0.0.1:18010;' in conf
    assert '"kubeflow-user2-example-com|user2@example.com|" 127.0.0.1:18011;' in conf
    assert "default 127.0.0.1:18004;" in conf
    assert (r'server_name "~^(?<isvc>[a-z0-9-]+)\.(?<profile_ns>[a-z0-9-]+)\.example\.com$" '
            r'"~^(?<isvc>[a-z0-9-]+)-(?<profile_ns>kubeflow-user-example-com|kubeflow-user2-example-com)'
            r'\.example\.com$";') in conf
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
    monkeypatch.setenv("KFSTACK_CACHE", str(tmp_path / "empty-cache"))  # as if nothing were installed
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
        # The store serves what kfp.local wrote into the first namespace's root, to that namespace's key.
        from infra.config import Secret
        from smoke_tests.fixtures.storage import ArtifactStore, pipeline_root_of

        store, namespace = state["object_store"], state["users"][0]["profile"]
        key = store["keys"][namespace]
        artifacts = ArtifactStore(
            _client_for(store["endpoint"], key["accesskey"], key["secretkey"]),
            pipeline_root_of(store["launchers"][namespace]["data"]), namespace, Secret(key["accesskey"]),
            Secret(key["secretkey"]), store["endpoint"])
        assert artifacts.find(state["runs"]["iris"], "model/model.joblib").startswith(
            f"private-artifacts/{namespace}/v2/artifacts/kfstack-smoke-iris-")
        assert all(key["secretkey"] not in out for out in outputs)
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

    from infra.local_target.target import LocalTarget
    from smoke_tests.local import LocalState

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


# --- the artifact store: Kubeflow's multi-user layout and per-namespace keys ------------------------

NS1, NS2 = "kubeflow-user-example-com", "kubeflow-user2-example-com"
KEYS = {NS1: ("KFSTACKNS1", "ns1-secret-0123456789abcdef"), NS2: ("KFSTACKNS2", "ns2-secret-0123456789abcdef")}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The local target's S3 server on a free port, with a key per namespace; one iris run of NS1
    written where kfp.local writes it (the namespace's pipeline root)."""
    import threading

    from infra.local_target.object_store import BUCKET, Identity, namespace_grants, serve
    from smoke_tests.process import free_port

    (tmp_path / BUCKET).mkdir()
    run_dir = tmp_path / BUCKET / "private-artifacts" / NS1 / "v2" / "artifacts" / "kfstack-smoke-iris-2026-1"
    (run_dir / "train-iris" / "model").mkdir(parents=True)
    (run_dir / "train-iris" / "model" / "model.joblib").write_bytes(b"a model")
    port = free_port()
    server = serve(tmp_path, port, {a: Identity(ns, s, namespace_grants(ns)) for ns, (a, s) in KEYS.items()})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def _client_for(endpoint: str, access: str, secret: str) -> Any:
    from minio import Minio

    return Minio(endpoint, access_key=access, secret_key=secret, secure=False, region="us-east-1")


def _client(endpoint: str, namespace: str, secret: str | None = None) -> Any:
    access, real_secret = KEYS[namespace]
    return _client_for(endpoint, access, secret or real_secret)


def _artifact_store(endpoint: str, namespace: str) -> Any:
    """What the smoke suite's artifact_store fixture builds: the root from the namespace's
    kfp-launcher ConfigMap, the namespace's own key."""
    from infra.config import Secret
    from infra.local_target.object_store import launcher_configmap
    from smoke_tests.fixtures.storage import ArtifactStore, pipeline_root_of

    access, secret = KEYS[namespace]
    root = pipeline_root_of(launcher_configmap(namespace)["data"])
    return ArtifactStore(_client(endpoint, namespace), root, namespace, Secret(access), Secret(secret), endpoint)


def test_smoke_artifact_store_finds_a_run_under_the_namespace_root(store: tuple[str, Path]) -> None:
    """Defect 5's check at the local tier: the suite lists the namespace's root with its own key."""
    endpoint, _ = store
    artifacts = _artifact_store(endpoint, NS1)
    key = artifacts.find("kfstack-smoke-iris-2026-1", "model/model.joblib")
    assert key == f"private-artifacts/{NS1}/v2/artifacts/kfstack-smoke-iris-2026-1/train-iris/model/model.joblib"
    assert artifacts.read(key) == b"a model"
    assert artifacts.uri(key) == f"s3://mlpipeline/{key}"


def test_store_refuses_what_the_namespace_key_does_not_cover(store: tuple[str, Path]) -> None:
    """The old hard-coded `v2/artifacts/` listing, the whole bucket and another namespace's root
    are refused, as on a cluster; the shared prefixes are not."""
    from minio.error import S3Error

    endpoint, _ = store
    ns1 = _client(endpoint, NS1)
    for prefix in ("v2/artifacts/", "", f"private-artifacts/{NS2}/", "private-artifacts/"):
        with pytest.raises(S3Error) as refused:
            list(ns1.list_objects("mlpipeline", prefix=prefix, recursive=True))
        assert refused.value.code == "AccessDenied", prefix
    ns2 = _client(endpoint, NS2)
    own = f"private-artifacts/{NS1}/v2/artifacts/kfstack-smoke-iris-2026-1/train-iris/model/model.joblib"
    with pytest.raises(S3Error) as refused:
        ns2.get_object("mlpipeline", own)
    assert refused.value.code == "AccessDenied"
    assert list(ns2.list_objects("mlpipeline", prefix="shared/")) == []
    assert list(ns2.list_objects("mlpipeline", prefix=f"private-artifacts/{NS2}/")) == []


def test_store_checks_signatures(store: tuple[str, Path]) -> None:
    from minio.error import S3Error

    endpoint, _ = store
    with pytest.raises(S3Error) as refused:
        list(_client(endpoint, NS1, secret="not-the-secret").list_objects(
            "mlpipeline", prefix=f"private-artifacts/{NS1}/"))
    assert refused.value.code == "SignatureDoesNotMatch"
    http = requests.Session()
    http.trust_env = False
    anonymous = http.get(f"http://{endpoint}/mlpipeline?list-type=2&prefix=shared/", timeout=10)
    assert anonymous.status_code == 403
    assert "<Code>AccessDenied</Code>" in anonymous.text


def test_store_writes_only_where_the_key_may(store: tuple[str, Path]) -> None:
    import io

    from minio.error import S3Error

    endpoint, root = store
    ns2 = _client(endpoint, NS2)
    ns2.put_object("mlpipeline", f"private/{NS2}/note.txt", io.BytesIO(b"mine"), 4)
    assert (root / "mlpipeline" / "private" / NS2 / "note.txt").read_bytes() == b"mine"
    with pytest.raises(S3Error) as refused:
        ns2.put_object("mlpipeline", f"private/{NS1}/note.txt", io.BytesIO(b"theirs"), 6)
    assert refused.value.code == "AccessDenied"
    assert not (root / "mlpipeline" / "private" / NS1).exists()


KFP_LOCAL_IRIS = """
import sys
from kfp import local
from smoke_tests.pipelines.common import LOCAL_PACKAGES
from smoke_tests.pipelines.iris import build_iris_pipeline

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1], raise_on_error=False)
build_iris_pipeline(list(LOCAL_PACKAGES))(max_iter=int(sys.argv[2]))
"""


@pytest.mark.slow
def test_local_sample_run_outcome_is_read_from_what_kfp_local_wrote(store: tuple[str, Path]) -> None:
    """At the local target the smoke suite's sample runs are the kfp.local runs of its start-up: their
    state is what they left in the namespace's pipeline root, read with the namespace's key. A run
    whose step failed (LogisticRegression refuses max_iter=-1) is FAILED, naming the step."""
    from smoke_tests.fixtures.models import kfp_local_run
    from smoke_tests.pipelines.common import LOCAL_PACKAGES
    from smoke_tests.pipelines.iris import build_iris_pipeline

    endpoint, root = store
    pipeline_root = root / "mlpipeline" / "private-artifacts" / NS1 / "v2" / "artifacts"
    before = {p.name for p in pipeline_root.iterdir()}
    runs: dict[str, Any] = {}
    for outcome, max_iter in (("good", 1000), ("bad", -1)):
        run([sys.executable, "-c", KFP_LOCAL_IRIS, str(pipeline_root), str(max_iter)], timeout=300)
        (runs[outcome],) = {p.name for p in pipeline_root.iterdir()} - before - set(runs.values())
    artifacts = _artifact_store(endpoint, NS1)
    iris = build_iris_pipeline(list(LOCAL_PACKAGES))

    good = kfp_local_run(artifacts, runs["good"], iris)
    assert (good.state, good.succeeded, good.failed_steps) == ("SUCCEEDED", True, ()), good.describe()
    unfinished = ("train-iris: no executor_output.json, the step did not finish (the local target's "
                  "logs/pipelines.log says why)",)
    nothing = f"the run wrote nothing under minio://mlpipeline/private-artifacts/{NS1}/v2/artifacts"
    bad = kfp_local_run(artifacts, runs["bad"], iris)
    assert (bad.state, bad.succeeded, bad.failed_steps, bad.error) == ("FAILED", False, unfinished, nothing)
    never = kfp_local_run(artifacts, "kfstack-smoke-iris-never-ran", iris)
    assert (never.state, never.failed_steps, never.error) == ("FAILED", unfinished, nothing)


@pytest.mark.parametrize(("data", "uri", "bucket", "prefix"), [
    ({"defaultPipelineRoot": f"minio://mlpipeline/private-artifacts/{NS1}/v2/artifacts"},
     f"minio://mlpipeline/private-artifacts/{NS1}/v2/artifacts", "mlpipeline", f"private-artifacts/{NS1}/v2/artifacts"),
    (None, "minio://mlpipeline/v2/artifacts", "mlpipeline", "v2/artifacts"),  # no kfp-launcher: KFP's default
    ({"defaultPipelineRoot": "s3://team-bucket/kfp/"}, "s3://team-bucket/kfp/", "team-bucket", "kfp"),
])
def test_pipeline_root_comes_from_the_launcher_configmap(data: dict[str, str] | None, uri: str, bucket: str,
                                                        prefix: str) -> None:
    from smoke_tests.fixtures.storage import pipeline_root_of

    root = pipeline_root_of(data)
    assert (root.uri, root.bucket, root.prefix, root.list_prefix) == (uri, bucket, prefix, prefix + "/")


def test_local_target_keys_carry_the_profile_controllers_grants(tmp_path: Path) -> None:
    """Every namespace gets its own key, scoped exactly as upstream's pipelines profile controller
    scopes it, and its kfp-launcher ConfigMap names its private root."""
    from infra.local_target.target import LocalTarget

    files = LocalTarget(tmp_path)._object_store_files([NS1, NS2], port=9)
    identities = json.loads(Path(files["identities"]).read_text())
    assert stat.S_IMODE(Path(files["identities"]).stat().st_mode) == 0o600
    assert sorted(i["name"] for i in identities.values()) == [NS1, NS2]
    grants = {i["name"]: i["grants"] for i in identities.values()}
    assert grants[NS1] == ["mlpipeline/artifacts/*", f"mlpipeline/private-artifacts/{NS1}/*",
                           f"mlpipeline/private/{NS1}/*", "mlpipeline/shared/*"]
    assert files["launchers"][NS2]["data"] == {
        "defaultPipelineRoot": f"minio://mlpipeline/private-artifacts/{NS2}/v2/artifacts"}
    assert files["pipeline_roots"][NS1] == f"mlpipeline/private-artifacts/{NS1}/v2/artifacts"
    assert files["keys"][NS1]["accesskey"] != files["keys"][NS2]["accesskey"]
