"""Fixtures for the ML Metadata stand-in's tests (tests/test_mlmd_server.py).

The server runs as a subprocess with its own venv (the wheel's protobuf 4 cannot live in this one),
against SQLite and against a PostgreSQL server each test module starts itself (CI starts bare).
The client speaks to it as KFP's Go client does, real protobuf messages on the wire and the gRPC
status code as the answer; the message types come from the wheel's own descriptors, loaded into
this process's protobuf.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from infra.kfp.mlmd_env import SERVER, MlmdEnvError, ensure_mlmd_venv
from infra.kfp.mlmd_server import SERVICE
from smoke_tests.process import free_port, port_open, spawn, stop_process
from smoke_tests.run import CommandError, run
from smoke_tests.wait import WaitTimeout, wait_until

# Run by the stand-in's venv: the service's file descriptor and every file it imports, dependencies first.
_DESCRIPTORS = """
import sys
from google.protobuf import descriptor_pb2
from ml_metadata.proto import metadata_store_service_pb2
files, seen = [], set()
def add(fd):
    if fd.name not in seen:
        seen.add(fd.name)
        for dep in fd.dependencies:
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        files.append(proto)
add(metadata_store_service_pb2.DESCRIPTOR)
sys.stdout.buffer.write(descriptor_pb2.FileDescriptorSet(file=files).SerializeToString())
"""


class MlmdClient:
    """`ml_metadata.MetadataStoreService` over a plain gRPC channel: requests from dicts in the proto's
    field names, responses as messages, errors as `grpc.RpcError` with the status code KFP reads."""

    def __init__(self, channel: grpc.Channel, pool: descriptor_pool.DescriptorPool) -> None:
        self._channel = channel
        self._service = pool.FindServiceByName(SERVICE)

    def call(self, method: str, request: dict[str, Any] | None = None) -> Any:
        desc = self._service.methods_by_name[method]
        request_type = message_factory.GetMessageClass(desc.input_type)
        response_type = message_factory.GetMessageClass(desc.output_type)
        rpc = self._channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=response_type.FromString)
        return rpc(json_format.ParseDict(request or {}, request_type()), timeout=30)

    def error(self, method: str, request: dict[str, Any] | None = None) -> grpc.RpcError:
        """The error a call must fail with; fails the test if it succeeds."""
        try:
            response = self.call(method, request)
        except grpc.RpcError as exc:
            return exc
        raise AssertionError(f"{method} succeeded, expected an error; it returned {response}")


@dataclass
class MlmdServer:
    """One stand-in server process: its port, its log, and a client connected to it."""

    port: int
    log: Path
    process: subprocess.Popen[str]
    client: MlmdClient
    channel: grpc.Channel = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        self.channel.close()
        # SIGTERM, then a kill only if it has not exited in a minute: a loaded machine (CI beside a
        # kind cluster) can take seconds to finish the graceful stop, and a kill fails the exit check.
        return stop_process(self.process, grace=60)


class MlmdServerFactory(Protocol):
    def __call__(self, *flags: str) -> MlmdServer: ...


@pytest.fixture(scope="session")
def mlmd_python() -> Path:
    """The stand-in venv's python (made once in the user cache, reused after)."""
    try:
        return ensure_mlmd_venv()
    except MlmdEnvError as exc:
        pytest.skip(f"NOT RUN: the ml-metadata wheel cannot be installed here: {exc}")


@pytest.fixture(scope="session")
def mlmd_descriptors(mlmd_python: Path) -> descriptor_pool.DescriptorPool:
    """The wheel's message and service definitions, in a descriptor pool of this process's protobuf."""
    out = subprocess.run([str(mlmd_python), "-c", _DESCRIPTORS], capture_output=True, timeout=60, check=True)
    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(out.stdout).file:
        pool.Add(proto)
    return pool


def _await_port(proc: subprocess.Popen[str], port: int, log: Path, *, what: str, timeout: float = 60.0) -> None:
    """Wait until a process we started accepts connections on its port; if it exits first, or the wait
    times out, stop it and fail with its log."""

    def exited(code: int | None) -> str | None:
        return f"it exited with code {code}; its log:\n{log.read_text(encoding='utf-8')[-3000:]}" \
            if code is not None else None

    def serving() -> tuple[bool, int | None]:
        code = proc.poll()
        return (code is None and port_open(port)), code

    try:
        wait_until(serving, timeout=timeout, interval=0.2, what=what, fail_if=exited)
    except Exception:
        stop_process(proc)
        raise


def start_mlmd_server(python: Path, pool: descriptor_pool.DescriptorPool, log: Path, *flags: str,
                      timeout: float = 60.0) -> MlmdServer:
    """Start the stand-in on a free loopback port and wait until it accepts connections; if it exits
    first, fail with its log."""
    port = free_port()
    argv: list[str | Path] = [python, SERVER, f"--grpc_port={port}", "--grpc_listen_address=127.0.0.1", *flags]
    proc = spawn(argv, log=log)
    _await_port(proc, port, log, what=f"the ML Metadata stand-in on port {port}", timeout=timeout)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return MlmdServer(port, log, proc, MlmdClient(channel, pool), channel)


@pytest.fixture
def mlmd_server_factory(mlmd_python: Path, mlmd_descriptors: descriptor_pool.DescriptorPool,
                        tmp_path: Path) -> Iterator[MlmdServerFactory]:
    """Starts stand-in servers with the given flags; stops each one it started."""
    started: list[MlmdServer] = []

    def make(*flags: str) -> MlmdServer:
        server = start_mlmd_server(mlmd_python, mlmd_descriptors, tmp_path / f"mlmd-{len(started)}.log", *flags)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


class DatabaseServer(Protocol):
    """A database server a test module runs for the stand-in: started, stopped and restarted by the test."""

    password: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def restart(self) -> None: ...

    def mlmd_flags(self, database: str) -> list[str]:
        """Upstream's metadata_store_server flags for this server and database."""
        ...

    def source(self, database: str) -> str:
        """How the stand-in names this source in its messages: scheme://user@host:port/database."""
        ...


def _postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (not on PATH there), or pg_ctl's directory on PATH."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _own_directory(prefix: str, *, for_nobody: bool) -> Path:
    """A fresh directory outside pytest's 0700 base, reachable by the user `nobody` when asked."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if for_nobody:
        shutil.chown(root, "nobody", "nogroup")
    return root


@dataclass
class PostgresServer:
    """Debian's PostgreSQL on a loopback port with a password (scram); as the unprivileged user
    `nobody` when the tests run as root, since PostgreSQL refuses to run as root."""

    bin_dir: Path
    root: Path
    port: int
    password: str = field(repr=False)
    user: str = "postgres"

    def _pg(self, tool: str, *args: str) -> None:
        prefix = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        run([*prefix, str(self.bin_dir / tool), *args], timeout=90)

    def _ctl(self, action: str, *args: str) -> None:
        """pg_ctl waits (-w) until the server accepts connections or has stopped."""
        self._pg("pg_ctl", "-D", str(self.root / "data"), "-w", "-t", "60", *args, action)

    def initialise(self) -> None:
        secret = self.root / "password"
        secret.write_text(self.password + "\n", encoding="utf-8")
        self._pg("initdb", "-D", str(self.root / "data"), "-U", self.user, f"--pwfile={secret}", "-E", "UTF8",
                 "--auth-host=scram-sha-256", "--auth-local=trust")
        secret.unlink()
        with (self.root / "data" / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.root}'\nfsync = off\n")

    def start(self) -> None:
        self._ctl("start", "-l", str(self.root / "postgres.log"))

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast", "-l", str(self.root / "postgres.log"))

    def mlmd_flags(self, database: str) -> list[str]:
        """The postgres overlay's flags (applications/pipeline/upstream/base/metadata/overlays/postgres)."""
        return ["--metadata_source_config_type=postgresql", "--postgres_config_host=127.0.0.1",
                f"--postgres_config_port={self.port}", f"--postgres_config_dbname={database}",
                f"--postgres_config_user={self.user}", f"--postgres_config_password={self.password}",
                "--enable_database_upgrade=true"]

    def source(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"


@dataclass
class MariadbServer:
    """Debian's MariaDB (the candidate stand-in for upstream's mysql:8.4) as a child process on a loopback
    port, with a user and password made by an init file at every start."""

    mariadbd: Path
    root: Path
    port: int
    password: str = field(repr=False)
    user: str = "kfp"
    process: subprocess.Popen[str] | None = None

    def initialise(self, install_db: Path) -> None:
        run([install_db, "--no-defaults", f"--datadir={self.root / 'data'}", *self._as_root(),
             "--auth-root-authentication-method=normal", "--skip-test-db"], timeout=180)
        (self.root / "init.sql").write_text(
            f"CREATE USER IF NOT EXISTS '{self.user}'@'127.0.0.1' IDENTIFIED BY '{self.password}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'127.0.0.1';\n", encoding="utf-8")

    @staticmethod
    def _as_root() -> list[str]:
        """mariadbd runs as root only when told to; the tests' root is a throw-away container's."""
        return ["--user=root"] if os.geteuid() == 0 else []

    def start(self) -> None:
        """Start and wait until the port accepts connections; if it exits first, fail with its log."""
        log = self.root / "mariadb.log"
        self.process = spawn([self.mariadbd, "--no-defaults", f"--datadir={self.root / 'data'}", *self._as_root(),
                              "--bind-address=127.0.0.1", f"--port={self.port}", "--skip-name-resolve",
                              f"--socket={self.root / 'mysql.sock'}", f"--pid-file={self.root / 'mariadb.pid'}",
                              f"--init-file={self.root / 'init.sql'}", "--skip-log-bin",
                              "--innodb-buffer-pool-size=32M"], log=log)
        _await_port(self.process, self.port, log, what=f"MariaDB on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=60)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def mlmd_flags(self, database: str) -> list[str]:
        """Upstream's base flags (applications/pipeline/upstream/base/metadata/base)."""
        return ["--mysql_config_host=127.0.0.1", f"--mysql_config_port={self.port}",
                f"--mysql_config_database={database}", f"--mysql_config_user={self.user}",
                f"--mysql_config_password={self.password}", "--enable_database_upgrade=true"]

    def source(self, database: str) -> str:
        return f"mysql://{self.user}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL for one module, in a directory of its own, stopped and removed after."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("NOT RUN: no PostgreSQL server here (Debian: apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("NOT RUN: PostgreSQL refuses root, and runuser (util-linux) is missing to drop to nobody")
    root = _own_directory("kfstack-postgres-", for_nobody=os.geteuid() == 0)
    server = PostgresServer(bin_dir, root, free_port(), secrets.token_urlsafe(12))
    try:
        server.initialise()
        server.start()
    except CommandError as exc:
        log = root / "postgres.log"
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc}\n{log.read_text() if log.exists() else ''}")
    yield server
    with contextlib.suppress(CommandError):  # already stopped by a test that failed half-way
        server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def mariadb_server() -> Iterator[MariadbServer]:
    """Debian's MariaDB for one module, in a directory of its own, stopped and removed after."""
    mariadbd = shutil.which("mariadbd") or next((p for p in ("/usr/sbin/mariadbd",) if Path(p).is_file()), None)
    install_db = shutil.which("mariadb-install-db")
    if mariadbd is None or install_db is None:
        pytest.skip("NOT RUN: no MariaDB server here (Debian: apt-get install mariadb-server-core; "
                    "./scripts/setup does as root)")
    root = _own_directory("kfstack-mariadb-", for_nobody=False)
    server = MariadbServer(Path(mariadbd), root, free_port(), secrets.token_urlsafe(12))
    try:
        server.initialise(Path(install_db))
        server.start()
    except (CommandError, WaitTimeout) as exc:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"MariaDB did not start: {exc}")
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def database_server(request: pytest.FixtureRequest) -> DatabaseServer:
    """Each database server the stand-in is tested on: PostgreSQL (upstream's postgres overlay) and MariaDB
    (for upstream's MySQL)."""
    fixture = {"postgresql": "postgres_server", "mysql": "mariadb_server"}[request.param]
    server: DatabaseServer = request.getfixturevalue(fixture)
    return server
