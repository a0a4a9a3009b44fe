"""T3 here: the images of a Kubeflow Pipelines v2 run, built by `kfstack nodeimage components`, start
and answer as their pods need, in containers on a network of the test's own (no cluster).

The KFP API server creates its schema on the mysql:8.4 stand-in (MariaDB) as the manifests run both,
then stops at the Kubernetes client; the ML Metadata stand-in answers the wheel's own gRPC client on
the same database; SeaweedFS serves S3 and IAM after the manifests' postStart steps, called from the
profile hook's image with botocore; KFP's own hook (from the rendered manifests) runs in that image
and gives a namespace a key for its prefix only; the launcher copies itself as KFP's init container
asks; Argo's binaries report v3.7.3 and run as upstream's users; the sample step runs in the
component runtime as KFP compiles it, with nothing installed at run time.
NOT RUN (skipped with the reason) where no container runtime can run or the images cannot be built.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from infra.names import unique_name
from infra.runtime import docker
from smoke_tests.run import CommandError, run
from smoke_tests.wait import wait_until
from tests.live_fixtures import container_runtime  # noqa: F401 - a fixture

pytestmark = [pytest.mark.live, pytest.mark.slow]
API = "ghcr.io/kubeflow/kfp-api-server:2.15.0"
AGENT = "ghcr.io/kubeflow/kfp-persistence-agent:2.15.0"
DRIVER = "ghcr.io/kubeflow/kfp-driver:2.15.0"
LAUNCHER = "ghcr.io/kubeflow/kfp-launcher:2.15.0"
CONTROLLER = "quay.io/argoproj/workflow-controller:v3.7.3"
EXECUTOR = "quay.io/argoproj/argoexec:v3.7.3"
SEAWEEDFS = "chrislusf/seaweedfs:4.00"
METACONTROLLER = "ghcr.io/metacontroller/metacontroller:v4.11.22"
MYSQL = "mysql:8.4"
MLMD = "gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0"
HOOK = "docker.io/alpine/k8s:1.32.3"
RUNTIME = "kfstack/kfp-runtime:py3.11-kfp2.15.0"
ALL = [API, AGENT, DRIVER, LAUNCHER, CONTROLLER, EXECUTOR, SEAWEEDFS, METACONTROLLER, MYSQL, MLMD, HOOK, RUNTIME]
# How the manifests run the database (applications/pipeline/upstream/third-party/mysql).
MYSQL_ARGS = ["--datadir", "/var/lib/mysql", "--authentication-policy=mysql_native_password",
              "--mysql-native-password=ON", "--disable-log-bin"]


def _quiet(_line: str) -> None:
    return None


@dataclass
class Net:
    """A docker network and the containers a test starts on it, all removed afterwards."""

    cli: str
    name: str = field(default_factory=lambda: unique_name("kfstack-kfp-test"))
    containers: list[str] = field(default_factory=list)

    def start(self, alias: str, image: str, *args: str, env: dict[str, str] | None = None,
              user: str = "", flags: list[str] | None = None) -> str:
        name = f"{self.name}-{alias}"
        flags = [*(flags or []), *(["--user", user] if user else [])]
        for key, value in (env or {}).items():
            flags += ["-e", f"{key}={value}"]
        run([self.cli, "run", "-d", "--name", name, "--network", self.name, "--network-alias", alias, *flags, image,
             *args], timeout=120)
        self.containers.append(name)
        return name

    def once(self, image: str, *args: str, entrypoint: str = "", user: str = "", timeout: float = 180) -> str:
        """Run a container on the network to its end; its output (stdout and stderr)."""
        flags = (["--entrypoint", entrypoint] if entrypoint else []) + (["--user", user] if user else [])
        out = run([self.cli, "run", "--rm", "--network", self.name, *flags, image, *args], timeout=timeout)
        return out.stdout + out.stderr

    def logs(self, name: str) -> str:
        out = run([self.cli, "logs", name], timeout=60, check=False)
        return out.stdout + out.stderr

    def wait_log(self, name: str, text: str, what: str, timeout: float = 120) -> str:
        def seen() -> tuple[bool, str]:
            logs = self.logs(name)
            return text in logs, logs[-2000:]

        wait_until(seen, timeout=timeout, interval=1, what=what)
        return self.logs(name)


@pytest.fixture(scope="module")
def cli(container_runtime: docker.RuntimeState) -> str:  # noqa: F811 - the shared fixture
    from infra.nodeimage.build import NodeImageError
    from infra.nodeimage.components import build_component_images
    from infra.toolchain.model import ToolchainError

    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("NOT RUN: the recipe images' Debian base needs root and debootstrap")
    try:
        build_component_images(ALL, say=_quiet)  # cached after ./scripts/setup
    except (NodeImageError, ToolchainError, CommandError) as exc:
        pytest.skip(f"NOT RUN: the KFP images cannot be built here: {exc}")
    found = shutil.which("docker")
    assert found is not None
    return found


@pytest.fixture
def net(cli: str) -> Iterator[Net]:
    network = Net(cli)
    run([cli, "network", "create", network.name], timeout=60)
    try:
        yield network
    finally:
        for name in network.containers:
            run([cli, "rm", "-f", "-v", name], timeout=120, check=False)
        run([cli, "network", "rm", network.name], timeout=60, check=False)


def _mysql(net: Net) -> Callable[[str], str]:
    """The stand-in as the manifests run it; returns a function running SQL in it as root over TCP."""
    name = net.start("mysql", MYSQL, *MYSQL_ARGS, env={"MYSQL_ALLOW_EMPTY_PASSWORD": "true"}, user="999:999")

    def sql(query: str) -> str:
        return run([net.cli, "exec", name, "mariadb", "-uroot", "-h127.0.0.1", "-N", "-e", query], timeout=60).stdout

    def answers() -> tuple[bool, str]:  # over TCP: the first start's own server listens on no port
        try:
            return sql("SELECT 1").strip() == "1", ""
        except CommandError as exc:
            return False, f"{exc.stderr.strip()[-300:]}; log: {net.logs(name)[-500:]}"

    wait_until(answers, timeout=120, interval=1, what="the mysql:8.4 stand-in to accept connections")
    return sql


def test_the_api_server_creates_its_schema_on_the_mysql_stand_in(net: Net) -> None:
    sql = _mysql(net)
    assert sql("SELECT @@character_set_server").strip() == "utf8mb4"
    env = {"DBCONFIG_MYSQLCONFIG_HOST": "mysql", "DBCONFIG_MYSQLCONFIG_PORT": "3306",
           "DBCONFIG_MYSQLCONFIG_USER": "root", "DBCONFIG_MYSQLCONFIG_PASSWORD": "",
           "DBCONFIG_MYSQLCONFIG_DBNAME": "mlpipeline", "MULTIUSER": "true",
           "KUBEFLOW_USERID_HEADER": "kubeflow-userid", "KUBEFLOW_USERID_PREFIX": "", "POD_NAMESPACE": "kubeflow",
           "OBJECTSTORECONFIG_HOST": "minio-service.kubeflow", "OBJECTSTORECONFIG_PORT": "9000",
           "INITCONNECTIONTIMEOUT": "60s"}
    api = net.start("ml-pipeline", API, env=env, user="1000:0")  # the manifests' securityContext
    logs = net.wait_log(api, "DB client initialized successfully", "the API server's database setup")
    assert "Failed to load samples" not in logs
    tables = set(sql("SHOW TABLES FROM mlpipeline").split())
    assert {"experiments", "pipelines", "pipeline_versions", "run_details", "tasks", "default_experiments"} <= tables


def test_the_mlmd_stand_in_answers_the_wheels_client_on_the_mysql_stand_in(net: Net) -> None:
    _mysql(net)
    flags = ["--grpc_port=8080", "--mysql_config_database=metadb", "--mysql_config_host=mysql",
             "--mysql_config_port=3306", "--mysql_config_user=root", "--mysql_config_password=",
             "--enable_database_upgrade=true", "--grpc_channel_arguments=grpc.max_metadata_size=16384"]
    server = net.start("metadata-grpc-service", MLMD, *flags, user="1000:0")
    net.wait_log(server, "serving ml_metadata.MetadataStoreService", "the ML Metadata stand-in to serve")
    client = ("from ml_metadata.metadata_store import metadata_store\n"
              "from ml_metadata.proto import metadata_store_pb2 as pb\n"
              "store = metadata_store.MetadataStore(pb.MetadataStoreClientConfig(host='metadata-grpc-service', "
              "port=8080))\n"
              "store.put_context_type(pb.ContextType(name='system.PipelineRun'))\n"
              "print(sorted(t.name for t in store.get_context_types()))\n")
    out = net.once(MLMD, "-c", client, entrypoint="/opt/mlmd/venv/bin/python", user="1000:0")
    assert "['system.PipelineRun']" in out


def _seaweedfs(net: Net) -> None:
    """SeaweedFS as the manifests run it, after their postStart steps (admin key minio/minio123)."""
    # /data on a tmpfs: SeaweedFS turns read-only below 1% free disk, which says nothing of the image.
    server = net.start("seaweedfs", SEAWEEDFS, "server", "-dir=/data", "-s3", "-iam", "-filer",
                       "-master.volumePreallocate=false", user="1000:1000",
                       flags=["--tmpfs", "/data:rw,size=512m,uid=1000,gid=1000,mode=0755"])
    # What the manifests' postStart runs, with their tools (sh, seq, wget, weed shell); here the wait
    # must end by its wget's success (the manifests' loop would go on after 4 minutes without one).
    post_start = ("up=\nfor i in $(seq 1 90); do wget -q --spider http://127.0.0.1:8333/status && up=1 && break; "
                  "sleep 2; done\n[ -n \"$up\" ]\n"
                  'echo "s3.bucket.create --name mlpipeline" | /usr/bin/weed shell || true\n'
                  'echo "s3.configure -user kubeflow-admin -access_key minio -secret_key minio123 -actions Admin '
                  '-apply" | /usr/bin/weed shell\n')
    run([net.cli, "exec", server, "/bin/sh", "-ec", post_start], timeout=300)


def test_seaweedfs_serves_s3_and_iam_after_the_manifests_post_start_steps(net: Net) -> None:
    _seaweedfs(net)
    client = ("import botocore.session\n"
              "s = botocore.session.get_session()\n"
              "kw = dict(region_name='us-east-1', aws_access_key_id='minio', aws_secret_access_key='minio123')\n"
              "s3 = s.create_client('s3', endpoint_url='http://seaweedfs:8333', **kw)\n"
              "s3.put_object(Bucket='mlpipeline', Key='private-artifacts/ns1/x.txt', Body=b'hello')\n"
              "print(s3.get_object(Bucket='mlpipeline', Key='private-artifacts/ns1/x.txt')['Body'].read())\n"
              "iam = s.create_client('iam', endpoint_url='http://seaweedfs:8111', **kw)\n"
              "print(iam.create_access_key(UserName='ns1')['AccessKey']['UserName'])\n")

    def answers() -> tuple[bool, str]:
        try:
            out = net.once(HOOK, "python", "-c", client, user="1000:0")
        except CommandError as exc:
            return False, str(exc)[-500:]
        return True, out

    out = wait_until(answers, timeout=120, interval=3, what="SeaweedFS's S3 and IAM from the hook's image")
    assert "b'hello'" in out and "ns1" in out


def test_the_launcher_copies_itself_as_kfps_init_container_runs_it(cli: str, tmp_path: Path) -> None:
    """`launcher-v2 --copy /kfp-launcher/launch` into the pod's shared volume, as upstream's user."""
    shared = tmp_path / "kfp-launcher"
    shared.mkdir()
    shared.chmod(0o777)
    run([cli, "run", "--rm", "-v", f"{shared}:/kfp-launcher", "--entrypoint", "launcher-v2", LAUNCHER, "--copy",
         "/kfp-launcher/launch"], timeout=120)
    copied = shared / "launch"
    assert copied.is_file() and os.access(copied, os.X_OK)
    assert copied.stat().st_size > 1_000_000 and copied.stat().st_uid == 100


HOOK_CLIENT = """\
import base64, json, urllib.request, botocore.exceptions, botocore.session
body = json.dumps({"object": {"metadata": {"name": "ns1", "labels": {"pipelines.kubeflow.org/enabled": "true"}}},
                   "attachments": {"Secret.v1": {}, "ConfigMap.v1": {}}}).encode()
answer = json.load(urllib.request.urlopen(urllib.request.Request("http://hook:8080/sync", data=body)))
print(sorted((a["kind"], a["metadata"]["name"]) for a in answer["attachments"]))
[secret] = [a for a in answer["attachments"] if a["kind"] == "Secret"]
keys = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
s3 = botocore.session.get_session().create_client("s3", endpoint_url="http://seaweedfs:8333", region_name="us-east-1",
                                                  aws_access_key_id=keys["accesskey"],
                                                  aws_secret_access_key=keys["secretkey"])
s3.put_object(Bucket="mlpipeline", Key="private-artifacts/ns1/own.txt", Body=b"x")
print("own prefix: written")
try:
    s3.put_object(Bucket="mlpipeline", Key="private-artifacts/ns2/other.txt", Body=b"x")
    print("other prefix: written")
except botocore.exceptions.ClientError as exc:
    print("other prefix:", exc.response["Error"]["Code"])
"""


def _hook_script(manifests_tree: Path, tmp_path: Path) -> Path:
    """KFP's profile-controller hook as the v1.11.0 multi-user env ships it (its ConfigMap)."""
    from infra.toolchain.locate import tool_path

    env = manifests_tree / "applications/pipeline/upstream/env/cert-manager/platform-agnostic-multi-user"
    out = run([str(tool_path("kustomize")), "build", str(env)], timeout=300).stdout
    [code] = [d["data"]["sync.py"] for d in yaml.safe_load_all(out)
              if d and d["kind"] == "ConfigMap" and "sync.py" in d.get("data", {})]
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sync.py").write_text(code)
    hooks.chmod(0o755)
    (hooks / "sync.py").chmod(0o644)
    return hooks


def test_kfps_hook_runs_in_its_image_and_gives_a_key_for_the_namespaces_prefix_only(
        net: Net, manifests_tree: Path, tmp_path: Path) -> None:
    """Upstream's hook (`python /hooks/sync.py`, as the manifests run it) makes the namespace's objects
    and its SeaweedFS key through IAM; that key writes its own prefix and is refused another's."""
    hooks = _hook_script(manifests_tree, tmp_path)
    _seaweedfs(net)
    env = {"KFP_VERSION": "2.15.0", "AWS_ENDPOINT_URL": "http://seaweedfs:8111",
           "S3_ENDPOINT_URL": "http://seaweedfs:8333", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "minio",
           "AWS_SECRET_ACCESS_KEY": "minio123", "ARTIFACTS_PROXY_ENABLED": "false", "ARTIFACT_RETENTION_DAYS": "-1"}
    net.start("hook", HOOK, "python", "/hooks/sync.py", env=env, user="1000:0",
              flags=["-v", f"{hooks}:/hooks:ro"])

    def answers() -> tuple[bool, str]:
        try:
            return True, net.once(HOOK, "python", "-c", HOOK_CLIENT, user="1000:0")
        except CommandError as exc:
            return False, str(exc)[-800:]

    out = wait_until(answers, timeout=120, interval=3, what="KFP's profile hook to answer a sync")
    for name in ("mlpipeline-minio-artifact", "kfp-launcher", "metadata-grpc-configmap", "artifact-repositories"):
        assert name in out
    assert "own prefix: written" in out and "other prefix: AccessDenied" in out


def test_the_go_images_start_as_their_manifests_run_them(cli: str) -> None:
    def inspect(image: str) -> dict[str, object]:
        config: dict[str, object] = json.loads(run([cli, "image", "inspect", image], timeout=60).stdout)[0]["Config"]
        return config

    def output(image: str, *args: str, entrypoint: str = "") -> str:
        flags = ["--entrypoint", entrypoint] if entrypoint else []
        out = run([cli, "run", "--rm", *flags, image, *args], timeout=120, check=False)
        return out.stdout + out.stderr

    assert "v3.7.3" in output(EXECUTOR, "version")
    assert "v3.7.3" in output(CONTROLLER, "version", entrypoint="workflow-controller")
    assert (inspect(CONTROLLER)["User"], inspect(EXECUTOR)["User"]) == ("8737", "0")
    assert "-discovery-interval" in output(METACONTROLLER, "--help", entrypoint="/usr/bin/metacontroller")
    assert "-copy" in output(LAUNCHER, "--help", entrypoint="launcher-v2")  # by name, as KFP's pods call it
    assert "-mlmd_server_address" in output(DRIVER, "--help", entrypoint="driver")
    assert "-numWorker" in output(AGENT, "--help", entrypoint="/bin/persistence_agent")


def test_the_sample_step_runs_in_the_runtime_image_as_compiled(cli: str, tmp_path: Path) -> None:
    """The iris step compiled for the runtime image, with no packages and no kfp install, trains and
    writes its model: everything it imports is in the image."""
    from kfp import compiler, dsl

    from smoke_tests.pipelines.iris import train_iris

    step = dsl.component(train_iris, base_image=RUNTIME, install_kfp_package=False)
    compiler.Compiler().compile(step, str(tmp_path / "step.yaml"))
    [container] = [e["container"] for e in yaml.safe_load((tmp_path / "step.yaml").read_text())
                   ["deploymentSpec"]["executors"].values()]
    assert "pip install" not in json.dumps(container)
    executor_input = {"inputs": {"parameterValues": {"max_iter": 1000}}, "outputs": {
        "artifacts": {name: {"artifacts": [{"type": {"schemaTitle": f"system.{kind}"},
                                            "uri": f"minio://mlpipeline/test/{name}", "metadata": {}}]}
                      for name, kind in (("model", "Model"), ("metrics", "Metrics"))},
        "outputFile": "/tmp/outputs/executor_output.json"}}
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
    check = "ls /minio/mlpipeline/test/model && cat /tmp/outputs/executor_output.json"
    script = '"$@" && ' + check
    out = run([cli, "run", "--rm", "--network", "none", "--entrypoint", "sh", RUNTIME, "-c", script, "step",
               *container["command"], *args], timeout=300)
    assert "model.joblib" in out.stdout
    assert "iris test accuracy" in out.stdout + out.stderr
