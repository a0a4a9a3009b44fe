"""The ML Metadata stand-in (infra/kfp/mlmd_server.py).

T0: its flags, in the project's venv, which has no wheel. T2 (`standin`): the server as a subprocess
serving the ml-metadata 1.15.0 wheel's C++ store, on SQLite and on the PostgreSQL 15 and MariaDB 10.11
servers the module starts:
every RPC that KFP 2.15's Go client (backend/src/v2/metadata/client.go) calls, in the order its driver
and launcher call them; the status codes it branches on; a database restart; start-up failures.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool

from infra.kfp.mlmd_env import SERVER
from infra.kfp.mlmd_server import FlagError, main, parse_flags
from smoke_tests.process import free_port
from smoke_tests.wait import WaitTimeout
from tests.helpers import REPO
from tests.mlmd_fixtures import (
    DatabaseServer,
    MlmdClient,
    MlmdServer,
    MlmdServerFactory,
    database_server,  # noqa: F401 - a fixture
    mariadb_server,  # noqa: F401 - a fixture
    mlmd_descriptors,  # noqa: F401 - a fixture
    mlmd_python,  # noqa: F401 - a fixture
    mlmd_server_factory,  # noqa: F401 - a fixture
    postgres_server,  # noqa: F401 - a fixture
    start_mlmd_server,
)

# The RPCs KFP 2.15's Go client calls (`c.svc.<RPC>(` in backend/src/v2/metadata/client.go).
KFP_RPCS = frozenset({
    "GetArtifactType", "GetArtifactsByID", "GetArtifactsByURI", "GetContextByTypeAndName", "GetContextType",
    "GetContextsByArtifact", "GetContextsByExecution", "GetContextsByID", "GetEventsByArtifactIDs",
    "GetEventsByExecutionIDs", "GetExecutionsByContext", "GetExecutionsByID", "GetParentContextsByContext",
    "PutArtifactType", "PutArtifacts", "PutContextType", "PutContexts", "PutExecution", "PutExecutionType",
    "PutParentContexts",
})
KFP_CLIENT = REPO.parent / "shared" / "toolchain" / "sources" / "pipelines-2.15.0" / "backend" / "src" / "v2" / \
    "metadata" / "client.go"
# What upstream's base manifest passes (applications/pipeline/upstream/base/metadata/base).
UPSTREAM_MYSQL_ARGS = ["--grpc_port=8080", "--mysql_config_database=metadb", "--mysql_config_host=mysql",
                       "--mysql_config_port=3306", "--mysql_config_user=root", "--mysql_config_password=pw-42",
                       "--enable_database_upgrade=true", "--grpc_channel_arguments=grpc.max_metadata_size=16384"]


# --- T0: flags ---------------------------------------------------------------------------------------

def test_upstream_base_args_give_a_mysql_source_and_hide_the_password() -> None:
    settings = parse_flags(UPSTREAM_MYSQL_ARGS)
    assert (settings.backend, settings.host, settings.port, settings.database, settings.user) == \
        ("mysql", "mysql", 3306, "metadb", "root")
    assert settings.password == "pw-42"
    assert settings.enable_upgrade is True
    assert settings.channel_arguments == (("grpc.max_metadata_size", 16384),)
    assert settings.describe() == "mysql://root@mysql:3306/metadb"
    assert "pw-42" not in repr(settings)


def test_the_postgres_overlays_args_give_a_postgresql_source() -> None:
    settings = parse_flags(["--grpc_port=8080", "--metadata_source_config_type=postgresql",
                            "--postgres_config_host=postgres-service", "--postgres_config_port=5432",
                            "--postgres_config_dbname=mlmd", "--postgres_config_user=user",
                            "--postgres_config_password=secret", "--enable_database_upgrade=true"])
    assert (settings.backend, settings.host, settings.port, settings.database, settings.user) == \
        ("postgresql", "postgres-service", 5432, "mlmd", "user")
    assert settings.describe() == "postgresql://user@postgres-service:5432/mlmd"


def test_gflags_spellings_are_understood() -> None:
    """gflags takes one dash, a separate value, a bare boolean and `--no<flag>`; manifests may use any."""
    assert parse_flags(["-grpc_port=9090", "--sqlite_filename", "/x.db"]).grpc_port == 9090
    assert parse_flags(["--enable_database_upgrade"]).enable_upgrade is True
    assert parse_flags(["--enable_database_upgrade", "--noenable_database_upgrade"]).enable_upgrade is False
    assert parse_flags([]).backend == "fake"  # upstream's default: an in-memory database, with a warning


@pytest.mark.parametrize(("argv", "named"), [
    (["--grpc_port=0"], "--grpc_port=0: a TCP port is 1 to 65535"),
    (["--mysql_config_host=db"], "--mysql_config_database: required"),
    (["--mysql_config_host=db", "--mysql_config_database=m", "--mysql_config_port=0"], "--mysql_config_port=0"),
    (["--metadata_source_config_type=postgresql"], "--postgres_config_host: required"),
    (["--metadata_source_config_type=postgresql", "--postgres_config_host=h", "--postgres_config_dbname=d",
      "--postgres_config_port=x"], "--postgres_config_port=x"),
    (["--postgres_config_host=h", "--postgres_config_dbname=d"], "need --metadata_source_config_type=postgresql"),
    (["--metadata_source_config_type=sqlite"], "--metadata_source_config_type=sqlite: mysql or postgresql"),
    (["--sqlite_filename=/x.db", "--mysql_config_host=h", "--mysql_config_database=d", "--mysql_config_port=1"],
     "not both"),
    (["--grpc_channel_arguments=grpc.max_metadata_size"], "is not key=value"),
    (["--metadata_store_server_config_file=/etc/grpc/config.proto"], "not supported by this stand-in"),
])
def test_bad_flags_are_each_named(argv: list[str], named: str) -> None:
    with pytest.raises(FlagError) as caught:
        parse_flags(argv)
    assert any(named in problem for problem in caught.value.problems), caught.value.problems


def test_bad_flags_exit_2_with_every_problem_and_an_unknown_flag_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--grpc_port=0", "--mysql_config_host=db", "--mysql_config_password=hunter2"]) == 2
    err = capsys.readouterr().err
    assert "--grpc_port=0" in err and "--mysql_config_database: required" in err and "hunter2" not in err
    with pytest.raises(SystemExit) as caught:
        parse_flags(["--mysql_config_hots=db"])
    assert caught.value.code == 2
    assert "unrecognized arguments: --mysql_config_hots=db" in capsys.readouterr().err


def test_it_imports_without_the_wheel_and_says_so_when_asked_to_serve() -> None:
    """Tooling imports the module in the project's venv, where the wheel cannot be installed."""
    code = ("import sys, infra.kfp.mlmd_server as m; assert 'ml_metadata' not in sys.modules; "
            "sys.exit(m.main(['--sqlite_filename=/nonexistent/x.db']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    try:
        import ml_metadata  # noqa: F401
    except ImportError:
        assert proc.returncode == 1, proc.stderr
        assert "the ml-metadata wheel is not installed in this Python" in proc.stderr
    else:
        pytest.skip("NOT RUN (the exit without the wheel): this venv has ml_metadata installed")


def test_the_rpc_list_is_the_one_kfps_client_calls() -> None:
    if not KFP_CLIENT.is_file():
        pytest.skip(f"NOT RUN: KFP 2.15.0's source is not beside this checkout ({KFP_CLIENT})")
    called = set(re.findall(r"c\.svc\.(\w+)\(", KFP_CLIENT.read_text(encoding="utf-8")))
    assert called == KFP_RPCS


# --- T2: the server on the wheel ----------------------------------------------------------------------

class RecordingClient:
    """The client, with the names of the RPCs called, so a walk can show it covered KFP's list."""

    def __init__(self, client: MlmdClient) -> None:
        self._client = client
        self.called: set[str] = set()

    def call(self, method: str, request: dict[str, Any] | None = None) -> Any:
        self.called.add(method)
        return self._client.call(method, request)

    def error(self, method: str, request: dict[str, Any] | None = None) -> grpc.RpcError:
        self.called.add(method)
        return self._client.error(method, request)


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def backend_server(request: pytest.FixtureRequest, mlmd_python: Path,  # noqa: F811 - a fixture
                   mlmd_descriptors: descriptor_pool.DescriptorPool,  # noqa: F811 - a fixture
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlmdServer]:
    """One stand-in per database for the module's RPC tests (SQLite, PostgreSQL, MariaDB for MySQL);
    each test uses names of its own."""
    work = tmp_path_factory.mktemp(f"mlmd-{request.param}")
    if request.param == "sqlite":
        flags = [f"--sqlite_filename={work / 'metadata.db'}"]
    else:
        db: DatabaseServer = request.getfixturevalue(
            {"postgresql": "postgres_server", "mysql": "mariadb_server"}[request.param])
        flags = db.mlmd_flags("metadb")
    server = start_mlmd_server(mlmd_python, mlmd_descriptors, work / "server.log", *flags)
    yield server
    assert server.stop() == 0, server.log_text()[-3000:]


def _context_type_id(client: RecordingClient, name: str) -> int:
    """KFP's getContextTypeID on a new type: NotFound, then put."""
    assert client.error("GetContextType", {"type_name": name}).code() == grpc.StatusCode.NOT_FOUND
    return int(client.call("PutContextType", {"context_type": {"name": name}}).type_id)


def _get_or_insert_context(client: RecordingClient, type_name: str, type_id: int, name: str,
                           props: dict[str, str]) -> Any:
    """KFP's getOrInsertContext: look up by type and name, else put and look up again."""
    lookup = {"type_name": type_name, "context_name": name}
    assert not client.call("GetContextByTypeAndName", lookup).HasField("context")
    custom = {key: {"string_value": value} for key, value in props.items()}
    client.call("PutContexts", {"contexts": [{"type_id": type_id, "name": name, "custom_properties": custom}]})
    return client.call("GetContextByTypeAndName", lookup).context


@pytest.mark.standin
def test_a_run_as_kfps_driver_and_launcher_record_it(backend_server: MlmdServer) -> None:
    client = RecordingClient(backend_server.client)
    tag = uuid.uuid4().hex[:8]
    # Driver, root DAG: the pipeline and run contexts, the run's parent link.
    pipeline_type = _context_type_id(client, f"system.Pipeline.{tag}")
    run_type = _context_type_id(client, f"system.PipelineRun.{tag}")
    pipeline = _get_or_insert_context(client, f"system.Pipeline.{tag}", pipeline_type, "hello-pipeline", {})
    run = _get_or_insert_context(client, f"system.PipelineRun.{tag}", run_type, f"run-{tag}",
                                 {"namespace": "kubeflow-user", "pipeline_root": f"s3://mlpipeline/v2/{tag}"})
    assert run.custom_properties["namespace"].string_value == "kubeflow-user"
    assert list(client.call("GetParentContextsByContext", {"context_id": run.id}).contexts) == []
    client.call("PutParentContexts", {"parent_contexts": [{"child_id": run.id, "parent_id": pipeline.id}]})
    assert [c.id for c in client.call("GetParentContextsByContext", {"context_id": run.id}).contexts] == \
        [pipeline.id]
    assert client.call("GetContextsByID", {"context_ids": [run.id]}).contexts[0].name == f"run-{tag}"
    contexts = [_as_dict(pipeline), _as_dict(run)]
    dag_type = client.call("PutExecutionType", {"execution_type": {"name": f"system.DAGExecution.{tag}"}}).type_id
    dag_id = client.call("PutExecution", {"execution": {"type_id": dag_type, "last_known_state": "RUNNING"},
                                          "contexts": contexts}).execution_id
    # Driver, a task of the DAG: its execution, tagged with the DAG's id, then the launcher's pod info.
    task_type = client.call("PutExecutionType", {"execution_type": {"name": f"system.ContainerExecution.{tag}"}})
    task = {"type_id": task_type.type_id, "last_known_state": "NEW",
            "custom_properties": {"task_name": {"string_value": "train"},
                                  "parent_dag_id": {"int_value": dag_id}}}
    task_id = client.call("PutExecution", {"execution": task, "contexts": contexts}).execution_id
    task_row = client.call("GetExecutionsByID", {"execution_ids": [task_id]}).executions[0]
    assert task_row.custom_properties["task_name"].string_value == "train"
    task_row.custom_properties["pod_name"].string_value = "train-pod"
    task_row.last_known_state = task_row.RUNNING
    client.call("PutExecution", {"execution": _as_dict(task_row)})
    # Launcher: the output artifact's type (get, else put) and the artifact, then publish with the event.
    artifact_type = f"system.Model.{tag}"
    assert client.error("GetArtifactType", {"type_name": artifact_type}).code() == grpc.StatusCode.NOT_FOUND
    type_id = client.call("PutArtifactType", {"artifact_type": {"name": artifact_type}}).type_id
    assert client.call("GetArtifactType", {"type_name": artifact_type}).artifact_type.id == type_id
    uri = f"s3://mlpipeline/v2/artifacts/hello/{tag}/train/model"
    artifact_ids = client.call("PutArtifacts", {"artifacts": [{
        "type_id": type_id, "uri": uri, "state": "LIVE",
        "custom_properties": {"display_name": {"string_value": "model"}}}]}).artifact_ids
    assert [a.uri for a in client.call("GetArtifactsByID", {"artifact_ids": list(artifact_ids)}).artifacts] == [uri]
    task_row = client.call("GetExecutionsByID", {"execution_ids": [task_id]}).executions[0]
    assert task_row.custom_properties["pod_name"].string_value == "train-pod"
    task_row.last_known_state = task_row.COMPLETE
    output_event = {"artifact_id": artifact_ids[0], "type": "OUTPUT", "path": {"steps": [{"key": "model"}]}}
    client.call("PutExecution", {"execution": _as_dict(task_row), "contexts": contexts,
                                 "artifact_event_pairs": [{"event": output_event}]})
    # The next task's driver: the DAG's tasks (KFP's parent_dag_id filter), their outputs, the artifacts.
    dag_filter = {"context_id": run.id, "options": {
        "filter_query": f"custom_properties.parent_dag_id.int_value = {dag_id}", "next_page_token": ""}}
    in_dag = client.call("GetExecutionsByContext", dag_filter)
    assert [e.id for e in in_dag.executions] == [task_id] and in_dag.next_page_token == ""
    assert in_dag.executions[0].last_known_state == task_row.COMPLETE
    events = client.call("GetEventsByExecutionIDs", {"execution_ids": [task_id]}).events
    assert [(e.artifact_id, e.type, e.path.steps[0].key) for e in events] == \
        [(artifact_ids[0], events[0].OUTPUT, "model")]
    assert [e.execution_id for e in client.call("GetEventsByArtifactIDs", {"artifact_ids": list(artifact_ids)})
            .events] == [task_id]
    # GetExecution's pipeline lookup, and the cache's match of an artifact by URI within the pipeline.
    assert {c.id for c in client.call("GetContextsByExecution", {"execution_id": task_id}).contexts} == \
        {pipeline.id, run.id}
    assert [a.id for a in client.call("GetArtifactsByURI", {"uris": [uri]}).artifacts] == list(artifact_ids)
    assert pipeline.id in {c.id for c in client.call("GetContextsByArtifact",
                                                     {"artifact_id": artifact_ids[0]}).contexts}
    # A repeated put of a type is idempotent (every driver start puts them).
    assert client.call("PutArtifactType", {"artifact_type": {"name": artifact_type}}).type_id == type_id
    assert client.called >= KFP_RPCS, f"not exercised: {sorted(KFP_RPCS - client.called)}"


def _as_dict(message: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True)


@pytest.mark.standin
def test_status_codes_kfp_branches_on_pass_through(backend_server: MlmdServer) -> None:
    """KFP's client tells NotFound and AlreadyExists apart from failures; a wheel's gap says UNIMPLEMENTED."""
    client = backend_server.client
    tag = uuid.uuid4().hex[:8]
    type_id = client.call("PutContextType", {"context_type": {"name": f"system.PipelineRun.{tag}"}}).type_id
    run = {"type_id": type_id, "name": f"run-{tag}"}
    (run_id,) = client.call("PutContexts", {"contexts": [run]}).context_ids
    parent = client.call("PutContexts", {"contexts": [{"type_id": type_id, "name": f"p-{tag}"}]}).context_ids[0]
    link = {"parent_contexts": [{"child_id": run_id, "parent_id": parent}]}
    client.call("PutParentContexts", link)
    cases: list[tuple[str, dict[str, Any], grpc.StatusCode, str]] = [
        ("GetContextType", {"type_name": f"nope.{tag}"}, grpc.StatusCode.NOT_FOUND, "No type found"),
        ("GetContextsByExecution", {"execution_id": 987654321}, grpc.StatusCode.NOT_FOUND, "No contexts found"),
        ("PutContexts", {"contexts": [run]}, grpc.StatusCode.ALREADY_EXISTS, "already exists"),
        ("PutParentContexts", link, grpc.StatusCode.ALREADY_EXISTS, ""),
        ("PutContextType", {"context_type": {}}, grpc.StatusCode.INVALID_ARGUMENT, "No type name"),
        ("PutExecution", {"execution": {"id": 987654321, "type_id": type_id}}, grpc.StatusCode.INVALID_ARGUMENT,
         "Cannot find"),
        ("GetLineageGraph", {}, grpc.StatusCode.UNIMPLEMENTED, "not in the ml-metadata wheel"),
    ]
    for method, request, code, says in cases:
        error = client.error(method, request)
        assert (error.code(), says in (error.details() or "")) == (code, True), (method, error)
    # Reads of ids that do not exist are empty answers, not errors (KFP checks the length).
    assert list(client.call("GetArtifactsByID", {"artifact_ids": [987654321]}).artifacts) == []


@pytest.mark.standin
def test_concurrent_drivers_insert_one_context(backend_server: MlmdServer) -> None:
    """Parallel drivers race to insert the same run context (KFP's GetPipelineConcurrently): one put
    wins, the others get ALREADY_EXISTS, and all then read the same context."""
    client = backend_server.client
    tag = uuid.uuid4().hex[:8]
    type_id = client.call("PutContextType", {"context_type": {"name": f"system.PipelineRun.{tag}"}}).type_id
    put = {"contexts": [{"type_id": type_id, "name": f"run-{tag}"}]}

    def driver(_: int) -> tuple[str, int]:
        try:
            client.call("PutContexts", put)
            outcome = "OK"
        except grpc.RpcError as exc:
            outcome = exc.code().name
        found = client.call("GetContextByTypeAndName", {"type_name": f"system.PipelineRun.{tag}",
                                                         "context_name": f"run-{tag}"})
        return outcome, found.context.id

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(driver, range(8)))
    assert sorted(outcome for outcome, _ in results) == ["ALREADY_EXISTS"] * 7 + ["OK"], results
    assert len({context_id for _, context_id in results}) == 1


@pytest.mark.standin
def test_after_a_database_restart_the_next_rpcs_work(database_server: DatabaseServer,  # noqa: F811
                                                     mlmd_server_factory: MlmdServerFactory) -> None:  # noqa: F811
    """Every worker thread's connection dies with the database; each reopens on its next call. While
    the database is down a call fails UNAVAILABLE, saying where, and the next one after it is back works."""
    server = mlmd_server_factory(*database_server.mlmd_flags("restarts"))
    client = server.client
    type_id = client.call("PutContextType", {"context_type": {"name": "system.PipelineRun"}}).type_id
    read = {"type_name": "system.PipelineRun", "context_name": "before"}

    def burst() -> list[str]:
        """More calls at once than the server has workers, so every worker's connection is exercised."""
        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(lambda _: client.call("GetContextByTypeAndName", read).context.name, range(32)))

    client.call("PutContexts", {"contexts": [{"type_id": type_id, "name": "before"}]})
    assert burst() == ["before"] * 32
    database_server.restart()
    assert burst() == ["before"] * 32
    client.call("PutContexts", {"contexts": [{"type_id": type_id, "name": "after"}]})
    database_server.stop()
    try:
        error = client.error("GetContextByTypeAndName", read)
    finally:
        database_server.start()
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert f"cannot open the metadata store at {database_server.source('restarts')}" in (error.details() or "")
    assert client.call("GetContextByTypeAndName", {**read, "context_name": "after"}).context.name == "after"
    log = server.log_text()
    assert "reopening the store and retrying once" in log
    assert database_server.password not in log


@pytest.mark.standin
@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_start_fails_clearly_when_the_database_is_unreachable(mlmd_python: Path, kind: str) -> None:  # noqa: F811
    port = free_port()  # nothing listens there
    if kind == "postgresql":
        db_flags = ["--metadata_source_config_type=postgresql", "--postgres_config_host=127.0.0.1",
                    f"--postgres_config_port={port}", "--postgres_config_dbname=m", "--postgres_config_user=kfp",
                    "--postgres_config_password=do-not-log-me"]
    else:
        db_flags = ["--mysql_config_host=127.0.0.1", f"--mysql_config_port={port}", "--mysql_config_database=m",
                    "--mysql_config_user=kfp", "--mysql_config_password=do-not-log-me"]
    argv = [str(mlmd_python), str(SERVER), f"--grpc_port={free_port()}", "--grpc_listen_address=127.0.0.1", *db_flags]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot open the metadata store at {kind}://kfp@127.0.0.1:{port}/m" in proc.stderr
    assert "do-not-log-me" not in proc.stderr + proc.stdout


@pytest.mark.standin
def test_a_sqlite_store_persists_and_an_old_schema_needs_the_upgrade_flag(
        mlmd_server_factory: MlmdServerFactory, tmp_path: Path) -> None:  # noqa: F811 - a fixture
    """The data outlives the server; a schema older than the wheel's is refused at start, as upstream
    refuses it, unless --enable_database_upgrade (which upstream's manifests pass)."""
    db = tmp_path / "metadata.db"
    first = mlmd_server_factory(f"--sqlite_filename={db}")
    first.client.call("PutArtifactType", {"artifact_type": {"name": "system.Dataset"}})
    assert first.stop() == 0, first.log_text()[-3000:]
    assert first.log_text().rstrip().endswith("mlmd-server: stopped")
    second = mlmd_server_factory(f"--sqlite_filename={db}")
    assert second.client.call("GetArtifactType", {"type_name": "system.Dataset"}).artifact_type.name == \
        "system.Dataset"
    assert second.stop() == 0, second.log_text()[-3000:]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE MLMDEnv SET schema_version = 7")
    with pytest.raises(WaitTimeout, match="exited with code 1"):
        mlmd_server_factory(f"--sqlite_filename={db}")
    assert "MLMD database version 7 is older than library version" in \
        (tmp_path / "mlmd-2.log").read_text(encoding="utf-8")
