"""The ML Metadata gRPC server stand-in: `ml_metadata.MetadataStoreService` served from the wheel.

Why: Kubeflow Pipelines' driver and launcher keep their runs' lineage in ML Metadata over gRPC, and
upstream's server (`/bin/metadata_store_server`) is a C++ binary that cannot be built here. The
`ml-metadata` wheel carries the same C++ store behind a module that takes and returns serialized
protobufs, so this server hands each request's bytes to it unparsed and returns its bytes: queries,
filters and errors are the C++ store's own, not a re-implementation. The store's status codes are
gRPC's (absl and gRPC share the numbering), so NotFound and AlreadyExists reach KFP as it expects.

It takes upstream's flags, so the manifests' args work unchanged (plus `--sqlite_filename` for tests),
and stands alone: the standard library and grpcio at import time, the wheel only when it serves. So
the image copies this one file, and tooling imports it in the project's venv, where the wheel's
protobuf 4 cannot be installed beside kfp's protobuf 6 (`mlmd-requirements.txt`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc

SERVICE = "ml_metadata.MetadataStoreService"
# gRPC worker threads; on MySQL and PostgreSQL each holds one database connection once it has served.
WORKERS = 8
log = logging.getLogger("mlmd-server")

Backend = Literal["mysql", "postgresql", "sqlite", "fake"]
# Codes that answer the request (the store worked and said no): passed on as they are.
ANSWER_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                          grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION,
                          grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.ABORTED,
                          grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED})
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# Upstream flags this stand-in does not implement: refused by name rather than silently ignored.
UNSUPPORTED = {
    "metadata_store_server_config_file": "a TLS/text-proto server config is not supported by this stand-in: "
                                         "pass the --mysql_config_* or --postgres_config_* flags (plain gRPC)",
    "downgrade_db_schema_version": "schema downgrades are not supported by this stand-in",
}


class FlagError(ValueError):
    """Bad flags: every problem at once, each naming the flag and what would fix it."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("bad flags:\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclass(frozen=True)
class ServerSettings:
    """What the flags ask for; the password never appears in its repr or description."""

    grpc_port: int
    listen_address: str
    channel_arguments: tuple[tuple[str, int | str], ...]
    backend: Backend
    host: str = ""
    port: int = 0
    database: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    skip_db_creation: bool = False
    sqlite_filename: str = ""
    enable_upgrade: bool = False

    def describe(self) -> str:
        """The metadata source for a log line: where, as whom, never the password."""
        if self.backend in ("mysql", "postgresql"):
            user = f"{self.user}@" if self.user else ""
            return f"{self.backend}://{user}{self.host}:{self.port}/{self.database}"
        if self.backend == "sqlite":
            return f"sqlite file {self.sqlite_filename}"
        return "an in-memory fake database: nothing persists"

    @property
    def shares_one_store(self) -> bool:
        """SQLite and the fake database keep one store behind a lock: separate connections would each
        see their own in-memory fake, or contend for SQLite's file lock."""
        return self.backend in ("sqlite", "fake")


def _gflags_bool(text: str) -> bool:
    """gflags' spellings of a boolean value (`--enable_database_upgrade=true`)."""
    value = text.strip().lower()
    if value in ("true", "t", "yes", "y", "1"):
        return True
    if value in ("false", "f", "no", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true or false)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metadata_store_server", allow_abbrev=False,
        description="ML Metadata gRPC server (a stand-in serving the ml-metadata wheel's C++ store).")
    parser.add_argument("--grpc_port", type=int, default=8080)
    parser.add_argument("--grpc_channel_arguments", default="",
                        help="comma-separated key=value gRPC server arguments, e.g. grpc.max_metadata_size=16384")
    parser.add_argument("--grpc_listen_address", default="0.0.0.0", help="(this stand-in's) address to bind")
    parser.add_argument("--metadata_source_config_type", default="mysql", help="mysql or postgresql")
    parser.add_argument("--mysql_config_host", default="")
    parser.add_argument("--mysql_config_port", type=int, default=0)
    parser.add_argument("--mysql_config_database", default="")
    parser.add_argument("--mysql_config_user", default="")
    parser.add_argument("--mysql_config_password", default="")
    parser.add_argument("--postgres_config_host", default="")
    parser.add_argument("--postgres_config_port", default="5432")
    parser.add_argument("--postgres_config_dbname", default="")
    parser.add_argument("--postgres_config_user", default="")
    parser.add_argument("--postgres_config_password", default="")
    for flag in ("--enable_database_upgrade", "--mysql_config_skip_db_creation",
                 "--postgres_config_skip_db_creation"):
        parser.add_argument(flag, type=_gflags_bool, nargs="?", const=True, default=False)
    parser.add_argument("--sqlite_filename", default="", help="(this stand-in's) SQLite file, for tests")
    for name in UNSUPPORTED:
        parser.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)
    return parser


def _gflags_spelling(argv: Sequence[str], known: set[str]) -> list[str]:
    """gflags' forms that argparse does not take: `-flag=v` with one dash, and `--noflag` for false."""
    out: list[str] = []
    for arg in argv:
        name, eq, _ = arg.lstrip("-").partition("=")
        if arg.startswith("-") and not arg.startswith("--") and name in known:
            arg = "-" + arg
        if arg.startswith("--no") and not eq and name[2:] in known:
            arg = f"--{name[2:]}=false"
        out.append(arg)
    return out


def _channel_arguments(text: str, problems: list[str]) -> tuple[tuple[str, int | str], ...]:
    """Upstream's comma-separated key=value list; an integer value is passed as an integer."""
    parsed: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, eq, value = item.partition("=")
        if not (key and eq and value):
            problems.append(f"--grpc_channel_arguments: {item!r} is not key=value (e.g. grpc.max_metadata_size=16384)")
            continue
        parsed.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return tuple(parsed)


def _port(flag: str, value: int | str, problems: list[str]) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        problems.append(f"{flag}={value}: a TCP port is 1 to 65535")
    return port


# A database server's flag prefix and the name of its database flag, upstream's spellings.
_SERVER_FLAGS: dict[Backend, tuple[str, str]] = {"mysql": ("mysql_config", "database"),
                                                 "postgresql": ("postgres_config", "dbname")}


def _server_source(args: argparse.Namespace, backend: Backend, why: str, problems: list[str],
                   common: dict[str, Any]) -> ServerSettings:
    """Settings for a MySQL or PostgreSQL server from its flags; host and database are required."""
    prefix, database = _SERVER_FLAGS[backend]

    def flag(name: str) -> Any:
        return getattr(args, f"{prefix}_{name}")

    for name in ("host", database):
        if not flag(name):
            problems.append(f"--{prefix}_{name}: required {why}")
    return ServerSettings(backend=backend, host=flag("host"), port=_port(f"--{prefix}_port", flag("port"), problems),
                          database=flag(database), user=flag("user"), password=flag("password"),
                          skip_db_creation=flag("skip_db_creation"), **common)


def parse_flags(argv: Sequence[str]) -> ServerSettings:
    """Upstream's flags as settings; `FlagError` lists every problem (argparse exits on a malformed one)."""
    parser = _parser()
    known = set(vars(parser.parse_args([])))
    args = parser.parse_args(_gflags_spelling(argv, known))
    problems = [f"--{name}: {why}" for name, why in UNSUPPORTED.items() if getattr(args, name) is not None]
    grpc_port = _port("--grpc_port", args.grpc_port, problems)
    channel = _channel_arguments(args.grpc_channel_arguments, problems)
    common: dict[str, Any] = {"grpc_port": grpc_port, "listen_address": args.grpc_listen_address,
                              "channel_arguments": channel, "enable_upgrade": args.enable_database_upgrade}
    mysql_given = bool(args.mysql_config_host or args.mysql_config_database or args.mysql_config_port)
    postgres_given = bool(args.postgres_config_host or args.postgres_config_dbname)
    kind = args.metadata_source_config_type
    settings: ServerSettings
    if kind not in ("mysql", "postgresql"):
        problems.append(f"--metadata_source_config_type={kind}: mysql or postgresql")
    if args.sqlite_filename and (mysql_given or postgres_given):
        problems.append("--sqlite_filename: a SQLite file or a MySQL/PostgreSQL server, not both")
    if kind == "postgresql":
        if mysql_given:
            problems.append("--mysql_config_*: given with --metadata_source_config_type=postgresql; use the "
                            "--postgres_config_* flags")
        settings = _server_source(args, "postgresql", "with --metadata_source_config_type=postgresql", problems,
                                  common)
    elif mysql_given:
        if postgres_given:
            problems.append("--postgres_config_*: need --metadata_source_config_type=postgresql")
        settings = _server_source(args, "mysql", "with the other --mysql_config_* flags", problems, common)
    elif postgres_given:
        problems.append("--postgres_config_*: need --metadata_source_config_type=postgresql")
        settings = ServerSettings(backend="fake", **common)
    elif args.sqlite_filename:
        settings = ServerSettings(backend="sqlite", sqlite_filename=args.sqlite_filename, **common)
    else:
        settings = ServerSettings(backend="fake", **common)
    if problems:
        raise FlagError(problems)
    return settings


def connection_config(settings: ServerSettings) -> Any:
    """The wheel's `ConnectionConfig` for these settings (imports the wheel)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    if settings.backend == "mysql":
        return pb.ConnectionConfig(mysql=pb.MySQLDatabaseConfig(
            host=settings.host, port=settings.port, database=settings.database, user=settings.user,
            password=settings.password, skip_db_creation=settings.skip_db_creation))
    if settings.backend == "postgresql":
        return pb.ConnectionConfig(postgresql=pb.PostgreSQLDatabaseConfig(
            host=settings.host, port=str(settings.port), dbname=settings.database, user=settings.user,
            password=settings.password, skip_db_creation=settings.skip_db_creation))
    if settings.backend == "sqlite":
        return pb.ConnectionConfig(sqlite=pb.SqliteMetadataSourceConfig(
            filename_uri=settings.sqlite_filename,
            connection_mode=pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE))
    return pb.ConnectionConfig(fake_database=pb.FakeDatabaseConfig())


StoreMethod = Callable[[Any, bytes], tuple[bytes, bytes, int]]


class StoreError(RuntimeError):
    """The C++ store could not be opened (database unreachable, refused login, bad schema)."""


class StorePool:
    """The C++ stores that serve requests, and their reopening after the database drops them.

    A store's database connection does not survive a database restart (or MySQL's idle timeout):
    every later call fails with INTERNAL. So a call that fails with a code that is not an answer
    (INTERNAL, UNAVAILABLE, UNKNOWN) reopens its store and is retried once; if the database is still
    unreachable the caller gets UNAVAILABLE. A write that failed that way did not commit, its
    connection being gone, unless the connection broke between the commit and its answer: then the
    retry meets its own first write (AlreadyExists, or the same update again).
    """

    def __init__(self, open_store: Callable[[], Any], *, shared: bool) -> None:
        self._open = open_store
        self._local = threading.local()
        self._lock: threading.Lock | None = threading.Lock() if shared else None
        self._shared: Any = None

    def open_first(self) -> None:
        """Open one store now, so the schema is created or upgraded before the port opens (as upstream).
        With a connection per thread it is closed again: the worker threads open their own."""
        store = self._open()
        if self._lock is not None:
            self._shared = store

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        if self._lock is None:
            yield
        else:
            with self._lock:
                yield

    def _current(self) -> Any:
        if self._lock is not None:
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self._open()
        return store

    def _reopen(self) -> Any:
        if self._lock is not None:
            self._shared = None
        else:
            self._local.store = None
        return self._current()

    def call(self, name: str, method: StoreMethod, request: bytes) -> tuple[bytes, grpc.StatusCode, str]:
        """Run one RPC on a store; returns the response bytes, the status code and the store's message."""
        with self._guard():
            try:
                response, message, number = method(self._current(), request)
            except StoreError as exc:
                return b"", grpc.StatusCode.UNAVAILABLE, f"metadata database unreachable: {exc}"
            code = _BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)
            if code is grpc.StatusCode.OK or code in ANSWER_CODES:
                return response, code, message.decode("utf-8", "replace")
            log.warning("%s failed with %s (%s); reopening the store and retrying once", name, code.name,
                        _first_line(message.decode("utf-8", "replace")))
            try:
                response, message, number = method(self._reopen(), request)
            except StoreError as exc:
                return b"", grpc.StatusCode.UNAVAILABLE, f"metadata database unreachable: {exc}"
            return response, _BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN), message.decode("utf-8", "replace")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no message"


def store_opener(settings: ServerSettings) -> Callable[[], Any]:
    """A function that opens one C++ store (a database connection); raises `StoreError` with the cause."""
    from ml_metadata.metadata_store.pywrap.metadata_store_extension import metadata_store as cc
    from ml_metadata.proto import metadata_store_pb2 as pb

    config = connection_config(settings).SerializeToString()
    migration = pb.MigrationOptions(enable_upgrade_migration=settings.enable_upgrade).SerializeToString()
    where = settings.describe()

    def open_store() -> Any:
        try:
            return cc.CreateMetadataStore(config, migration)
        except RuntimeError as exc:
            raise StoreError(f"cannot open the metadata store at {where}: {exc}".strip()) from exc

    return open_store


def _handler(pool: StorePool, name: str, method: StoreMethod | None) -> Any:
    """A bytes-in, bytes-out unary handler: no (de)serializers, so the wheel parses the request itself."""

    def unary(request: bytes, context: Any) -> bytes:
        if method is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not in the ml-metadata wheel's store")
            return b""  # not reached: abort raises
        response, code, message = pool.call(name, method, request)
        if code is grpc.StatusCode.OK:
            return response
        level = logging.INFO if code in ANSWER_CODES else logging.WARNING
        log.log(level, "%s: %s: %s", name, code.name, _first_line(message))
        context.abort(code, message)
        return b""  # not reached: abort raises

    return grpc.unary_unary_rpc_method_handler(unary)


def service_methods() -> list[str]:
    """The RPC names of `ml_metadata.MetadataStoreService`, from the wheel's own service descriptor."""
    from ml_metadata.proto import metadata_store_service_pb2

    service = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]
    return [method.name for method in service.methods]


def build_server(settings: ServerSettings, pool: StorePool) -> tuple[Any, list[str]]:
    """The gRPC server with every service method registered; also the methods the wheel lacks."""
    from ml_metadata.metadata_store.pywrap.metadata_store_extension import metadata_store as cc

    names = service_methods()
    handlers = {name: _handler(pool, name, getattr(cc, name, None)) for name in names}
    missing = [name for name in names if not hasattr(cc, name)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="rpc"),
                         options=list(settings.channel_arguments))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"{settings.listen_address}:{settings.grpc_port}")
    return server, missing


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for dist in ("ml-metadata", "grpcio", "protobuf"):
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    return ", ".join([*found, f"Python {platform.python_version()}"])


def serve(settings: ServerSettings, stop: threading.Event) -> int:
    """Open the store, serve until `stop` is set, then drain; returns the exit code."""
    log.info("ML Metadata stand-in starting: %s", _versions())
    mode = "one store behind a lock" if settings.shares_one_store else \
        f"one connection per worker thread (up to {WORKERS}), reopened after the database drops it"
    log.info("metadata source: %s (schema upgrade: %s; %s)", settings.describe(),
             "on" if settings.enable_upgrade else "off", mode)
    if settings.backend == "fake":
        log.warning("no --mysql_config_*, --postgres_config_* or --sqlite_filename given: metadata will not persist")
    started = time.monotonic()
    pool = StorePool(store_opener(settings), shared=settings.shares_one_store)
    try:
        pool.open_first()
    except StoreError as exc:
        log.error("%s (the database's own message is in the log line above)", exc)
        return 1
    log.info("store open, schema ready, in %.2f s", time.monotonic() - started)
    server, missing = build_server(settings, pool)
    if settings.channel_arguments:
        log.info("gRPC channel arguments: %s", ", ".join(f"{k}={v}" for k, v in settings.channel_arguments))
    server.start()
    log.info("serving %s on %s:%d; %s", SERVICE, settings.listen_address, settings.grpc_port,
             f"not in the wheel, answered UNIMPLEMENTED: {', '.join(missing)}" if missing else "every RPC")
    stop.wait()
    log.info("stopping: finishing the requests in flight (up to 5 s)")
    server.stop(5).wait()
    log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point with upstream's flags: 2 for bad flags, 1 when the store cannot open, 0 after SIGTERM."""
    try:
        settings = parse_flags(sys.argv[1:] if argv is None else argv)
    except FlagError as exc:
        print(f"metadata_store_server: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s mlmd-server: %(message)s")
    try:
        import ml_metadata  # noqa: F401 - present only in the stand-in's own environment
    except ImportError as exc:
        log.error("the ml-metadata wheel is not installed in this Python (%s): install infra/kfp/"
                  "mlmd-requirements.txt into a venv of its own and run this file with that venv's python",
                  exc)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return serve(settings, stop)


def exit_now(code: int) -> None:
    """Leave without the interpreter's teardown: the wheel's C++ store and gRPC's threads can still
    be finalising then, and a teardown racing them can end a clean stop with a crash signal."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
